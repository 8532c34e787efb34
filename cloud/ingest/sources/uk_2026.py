"""MartaDataUK/job_tracker (MIT): UK LinkedIn and Adzuna postings, May-June 2026, one shared layout.

`platform` tells the two apart. LinkedIn ids come from `/jobs/view/<id>`, Adzuna ids from
`/details/<id>` or `/land/ad/<id>`. Adzuna keeps its creation timestamp in `job_maturity`
(LinkedIn rows just say "Recent"), so that is the posted date when `job_posted_date` is empty.
"""

from __future__ import annotations

import re

from cloud.ingest.sources.base import SourceMapper, canonical_url, iso_date, text_of, url_id
from shared.posting import JobPosting

_JOB_ID = re.compile(r"/(?:jobs/view|details|land/ad)/(?:[^/?#]*-)?(\d{6,})")
SOURCES_BY_PLATFORM = {"linkedin": "linkedin_uk_2026", "adzuna": "adzuna_uk_2026"}


class UkJobTracker2026(SourceMapper):
    name = "uk_job_tracker_2026"
    signature_fields = frozenset({"job_link", "platform", "job_title", "job_description"})

    def to_posting(self, record: dict) -> JobPosting:
        url = text_of(record.get("job_link"))
        platform = text_of(record.get("platform")).lower()
        match = _JOB_ID.search(url)
        return self.build(
            SOURCES_BY_PLATFORM.get(platform, f"{platform or 'unknown'}_uk_2026"),
            match.group(1) if match else url_id(url),
            record.get("job_title"),
            record.get("job_description"),
            company=record.get("employer_name"),
            location=record.get("location"),
            url=url,
            posted_date=iso_date(record.get("job_posted_date")) or iso_date(record.get("job_maturity")),
            employment_type=record.get("job_employment_type"),
            extra={
                "canonical_url": canonical_url(url),
                "platform": text_of(record.get("platform")),
                "salary_min": text_of(record.get("job_min_salary")),
                "salary_max": text_of(record.get("job_max_salary")),
                "salary_period": text_of(record.get("job_salary_period")),
            },
        )
