"""Kaggle "700+ JOBs Data of AI & Data Fields | 2025" (Indeed, via Apify's scraper): the Model A data.

No id column: the Indeed job key (`jk=` in `url`) is the stable id, else a hash of the URL.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from cloud.ingest.sources.base import SourceMapper, canonical_url, text_of, url_id
from shared.posting import JobPosting


def indeed_job_key(url: str) -> str:
    return (parse_qs(urlsplit(url).query).get("jk") or [""])[0]


class Kaggle2025(SourceMapper):
    name = "kaggle_2025"
    signature_fields = frozenset({"positionName", "description", "url"})

    def to_posting(self, record: dict) -> JobPosting:
        url = text_of(record.get("url"))
        job_types = [text_of(record.get(f"jobType/{i}")) for i in range(4)]
        return self.build(
            self.name,
            indeed_job_key(url) or url_id(url),
            record.get("positionName"),
            record.get("description"),
            company=record.get("company"),
            location=record.get("location"),
            url=url,
            employment_type=", ".join(t for t in job_types if t),
            extra={"canonical_url": canonical_url(url), "salary": text_of(record.get("salary"))},
        )
