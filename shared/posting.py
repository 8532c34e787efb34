"""The canonical job-posting record every source is normalised into (Kaggle 2025, Bright Data
LinkedIn layouts, the 2026 UK CSVs, file drops). Training, pseudo-labelling and drift all read this.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field, fields

from shared.text import clean_text


@dataclass
class JobPosting:
    source: str  # e.g. "kaggle_2025", "brightdata", "linkedin_uk_2026", "adzuna_uk_2026"
    source_id: str  # stable id within the source (job id, url hash, row key)
    title: str
    description: str  # cleaned with shared.text.clean_text
    company: str = ""
    location: str = ""
    url: str = ""
    posted_date: str = ""  # ISO date when the source has one, else ""
    employment_type: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def content_hash(self) -> str:
        """Hash of what the model sees, for de-duplication across sources."""
        key = f"{self.title.strip().lower()}\n{self.description.strip().lower()}"
        return hashlib.sha256(key.encode("utf-8")).hexdigest()

    def to_record(self) -> dict:
        record = asdict(self)
        record["content_hash"] = self.content_hash
        return record

    @classmethod
    def from_record(cls, record: dict) -> JobPosting:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in record.items() if k in names})


def make_posting(source: str, source_id: str, title: str, description: str, **kwargs) -> JobPosting:
    """Build a JobPosting with the title and description cleaned the one canonical way."""
    return JobPosting(
        source=source,
        source_id=str(source_id),
        title=clean_text(title or ""),
        description=clean_text(description or ""),
        **kwargs,
    )
