"""Bright Data's LinkedIn job listings dataset (`gd_lpfll7v5hcqtkxl6l`), both record layouts.

* 2024 layout (26 fields, e.g. luminati-io samples scraped 2024-12): has `timestamp` and `input`.
* 2025-26 layout (27 fields): adds `job_base_pay_range`, `salary_standards`, `is_easy_apply`,
  drops `timestamp` and `input`.

The description is `job_description_formatted` (HTML, cleaned by shared.text) with `job_summary`
(plain text, often truncated) as the fallback. With `include_errors=true` a snapshot can hold error
rows (`error`, `error_code`, `input`): those are quarantined with the scraper's reason.
"""

from __future__ import annotations

from cloud.ingest.sources.base import MalformedRecord, SourceMapper, canonical_url, iso_date, text_of
from shared.posting import JobPosting

LAYOUT_2025_FIELDS = frozenset({"job_base_pay_range", "salary_standards", "is_easy_apply"})


def layout_of(record: dict) -> str:
    return "2025" if LAYOUT_2025_FIELDS & record.keys() else "2024"


class BrightDataLinkedIn(SourceMapper):
    name = "brightdata_linkedin"
    signature_fields = frozenset({"job_posting_id"})

    def matches(self, record: dict) -> bool:
        # Error rows carry only the input plus the error, still with a LinkedIn-shaped input.
        return "job_posting_id" in record or ("error" in record and "input" in record)

    def to_posting(self, record: dict) -> JobPosting:
        if record.get("error") or record.get("error_code"):
            code = text_of(record.get("error_code")) or "error"
            raise MalformedRecord(f"scraper error row ({code}): {text_of(record.get('error'))[:160]}")
        job_id = text_of(record.get("job_posting_id"))
        if not job_id:
            raise MalformedRecord("missing job_posting_id")
        description = text_of(record.get("job_description_formatted")) or text_of(record.get("job_summary"))
        return self.build(
            self.name,
            job_id,
            record.get("job_title"),
            description,
            company=record.get("company_name"),
            location=record.get("job_location"),
            url=record.get("url"),
            posted_date=iso_date(record.get("job_posted_date")),
            employment_type=record.get("job_employment_type"),
            extra={
                "layout": layout_of(record),
                "canonical_url": canonical_url(text_of(record.get("url"))),
                "seniority": text_of(record.get("job_seniority_level")),
                "function": text_of(record.get("job_function")),
                "industries": text_of(record.get("job_industries")),
                "country_code": text_of(record.get("country_code")),
                "base_pay_range": record.get("job_base_pay_range"),
            },
        )
