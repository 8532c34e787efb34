"""What every source mapper shares: the contract and the few field conventions all sources use."""

from __future__ import annotations

import hashlib
import re
from abc import ABC, abstractmethod
from typing import ClassVar
from urllib.parse import parse_qsl, urlencode, urlsplit

from shared.posting import JobPosting, make_posting


class MalformedRecord(ValueError):
    """The record belongs to this source but cannot become a posting; `reason` says why."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class SourceMapper(ABC):
    name: ClassVar[str]
    signature_fields: ClassVar[frozenset[str]]  # all present -> this mapper owns the record

    def matches(self, record: dict) -> bool:
        return self.signature_fields <= record.keys()

    @abstractmethod
    def to_posting(self, record: dict) -> JobPosting: ...

    @staticmethod
    def build(source: str, source_id: str, title, description, **fields) -> JobPosting:
        """make_posting plus the checks every source needs (title and description must survive cleaning)."""
        posting = make_posting(
            source,
            source_id,
            text_of(title),
            text_of(description),
            **{key: value if key == "extra" else text_of(value) for key, value in fields.items()},
        )
        if not posting.title:
            raise MalformedRecord("missing title")
        if not posting.description:
            raise MalformedRecord("missing description")
        return posting


def text_of(value) -> str:
    """CSV cells, JSON nulls and NaN all become a clean str."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return str(value).strip()


ID_QUERY_KEYS = frozenset({"jk", "vjk", "gh_jid", "jobid", "job_id", "id", "currentjobid"})
_LINKEDIN_JOB_ID = re.compile(r"/jobs/view/(?:[^/?#]*-)?(\d{6,})")


def canonical_url(url: str) -> str:
    """Scheme-less, query-less URL so the same job scraped twice compares equal.

    LinkedIn serves one job under many slugs (`/jobs/view/4073552631`,
    `/jobs/view/data-engineer-at-x-4073552631?lg=en`): both map to `linkedin.com/jobs/view/<id>`.
    """
    url = text_of(url)
    if not url:
        return ""
    match = _LINKEDIN_JOB_ID.search(url)
    if "linkedin." in url and match:
        return f"linkedin.com/jobs/view/{match.group(1)}"
    parts = urlsplit(url if "//" in url else f"//{url}")
    host = parts.netloc.lower().removeprefix("www.")
    # Keep only query keys that identify the job (Indeed's `jk`, Greenhouse's `gh_jid`, ...);
    # the rest is tracking (utm_*, trk, se, v, ...) that differs between two scrapes of one job.
    ids = sorted((k, v) for k, v in parse_qsl(parts.query) if k.lower() in ID_QUERY_KEYS)
    return f"{host}{parts.path.rstrip('/')}" + (f"?{urlencode(ids)}" if ids else "")


def iso_date(value) -> str:
    """'2024-11-22T09:41:10.107Z' -> '2024-11-22'; anything that is not a date -> ''."""
    value = text_of(value)
    return value[:10] if re.match(r"\d{4}-\d{2}-\d{2}", value) else ""


def url_id(url: str) -> str:
    return hashlib.sha1(canonical_url(url).encode("utf-8")).hexdigest()[:16]
