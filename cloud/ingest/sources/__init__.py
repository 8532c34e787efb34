"""One mapper per source layout: raw record (dict) -> `shared.posting.JobPosting`.

A mapper raises `MalformedRecord(reason)` for a record it recognises but cannot use (no title, no
description, a scraper error row); `normalize` sends those to quarantine with the reason.
`detect_source` picks the mapper from a record's field names, so a file drop needs no flag.
"""

from __future__ import annotations

from cloud.ingest.sources.base import MalformedRecord, SourceMapper
from cloud.ingest.sources.brightdata import BrightDataLinkedIn
from cloud.ingest.sources.job_radar_2026 import JobRadar2026
from cloud.ingest.sources.kaggle_2025 import Kaggle2025
from cloud.ingest.sources.uk_2026 import UkJobTracker2026

MAPPERS: dict[str, SourceMapper] = {
    mapper.name: mapper
    for mapper in (
        BrightDataLinkedIn(),
        Kaggle2025(),
        UkJobTracker2026(),
        JobRadar2026(),
    )
}


def detect_source(record: dict) -> SourceMapper | None:
    for mapper in MAPPERS.values():
        if mapper.matches(record):
            return mapper
    return None


def get_mapper(name: str) -> SourceMapper:
    try:
        return MAPPERS[name]
    except KeyError:
        from shared.errors import UserError

        raise UserError(f"unknown source {name!r}; known: {', '.join(sorted(MAPPERS))}") from None


__all__ = ["MAPPERS", "MalformedRecord", "SourceMapper", "detect_source", "get_mapper"]
