"""EGG-ZERO/da-job-radar layout: postings merged from public job APIs (arbeitnow, himalayas, remoteok,
jobicy, ...), one record per job with the day the scraper first saw it.

`source` names the API; its `source_id` is unique within that API, so the posting's id is
`<api>:<source_id>`. `first_seen_raw_file` (the arrival day) is kept in `extra` as `first_seen`:
it is what the weekly replay groups by (`published_at` is the employer's date, often weeks older).
"""

from __future__ import annotations

from cloud.ingest.sources.base import MalformedRecord, SourceMapper, canonical_url, iso_date, text_of
from shared.posting import JobPosting

SOURCE_PREFIX = "job_radar"


class JobRadar2026(SourceMapper):
    name = "job_radar_2026"
    signature_fields = frozenset({"source", "source_id", "title", "description", "first_seen_raw_file"})

    def to_posting(self, record: dict) -> JobPosting:
        api = text_of(record.get("source")).lower()
        job_id = text_of(record.get("source_id"))
        if not api or not job_id:
            raise MalformedRecord("missing source or source_id")
        url = text_of(record.get("url"))
        tags = record.get("tags") if isinstance(record.get("tags"), list) else []
        return self.build(
            f"{SOURCE_PREFIX}_{api}",
            f"{api}:{job_id}",
            record.get("title"),
            record.get("description"),
            company=record.get("company"),
            location=record.get("location"),
            url=url,
            posted_date=iso_date(record.get("published_at")),
            extra={
                "canonical_url": canonical_url(url),
                "first_seen": iso_date(record.get("first_seen_raw_file")),
                "tags": [text_of(tag) for tag in tags][:20],
            },
        )
