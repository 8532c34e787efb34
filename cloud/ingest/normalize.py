"""Normalisation: raw batches from any source -> de-duplicated `JobPosting`s, plus a quarantine.

Every input record ends up in exactly one place, so `kept + quarantined == seen` always holds:
* kept: mapped, English (or too short to tell), and not seen before;
* quarantined, with a reason: malformed (missing title / description, scraper error row, unknown
  layout), non-English, or a duplicate (by source id, then canonical URL, then content hash).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from cloud.ingest.language import guess_language
from cloud.ingest.sources import MalformedRecord, SourceMapper, detect_source
from cloud.ingest.sources.base import canonical_url
from shared.posting import JobPosting


@dataclass
class Batch:
    name: str  # e.g. the raw snapshot's file stem
    records: list[dict]
    mapper: SourceMapper | None = None  # None: detect per record


@dataclass
class NormalizeResult:
    postings: list[JobPosting] = field(default_factory=list)
    quarantine: list[dict] = field(default_factory=list)
    seen: Counter = field(default_factory=Counter)  # per batch
    kept_by_source: Counter = field(default_factory=Counter)
    quarantined_by_reason: Counter = field(default_factory=Counter)
    languages: Counter = field(default_factory=Counter)

    def report(self) -> dict:
        return {
            "records_seen": sum(self.seen.values()),
            "kept": len(self.postings),
            "quarantined": len(self.quarantine),
            "seen_by_batch": dict(self.seen),
            "kept_by_source": dict(self.kept_by_source),
            "quarantined_by_reason": dict(self.quarantined_by_reason),
            "non_english": sum(n for lang, n in self.languages.items() if lang not in ("en", "und")),
            "languages": dict(self.languages),
        }


class Deduplicator:
    """Remembers source ids, canonical URLs and content hashes; names the first rule that fires."""

    def __init__(self) -> None:
        self._keys: dict[str, dict[str, str]] = {"source_id": {}, "url": {}, "content": {}}

    def duplicate_of(self, posting: JobPosting) -> tuple[str, str] | None:
        for rule, key in self._keys_of(posting):
            if key and key in self._keys[rule]:
                return rule, self._keys[rule][key]
        return None

    def remember(self, posting: JobPosting) -> None:
        ident = f"{posting.source}:{posting.source_id}"
        for rule, key in self._keys_of(posting):
            if key:
                self._keys[rule].setdefault(key, ident)

    @staticmethod
    def _keys_of(posting: JobPosting) -> list[tuple[str, str]]:
        return [
            ("source_id", f"{posting.source}:{posting.source_id}"),
            ("url", canonical_url(posting.url)),
            ("content", posting.content_hash),
        ]


def normalize(batches: Iterable[Batch], on_batch=None) -> NormalizeResult:
    result = NormalizeResult()
    dedup = Deduplicator()
    for batch in batches:
        for position, record in enumerate(batch.records, 1):
            result.seen[batch.name] += 1
            posting, reason = _map(batch, record)
            if posting is not None:
                language = guess_language(posting.description)
                result.languages[language.language] += 1
                if not language.is_english:
                    posting, reason = None, f"non-English ({language.language})"
                elif (duplicate := dedup.duplicate_of(posting)) is not None:
                    posting, reason = None, f"duplicate by {duplicate[0]} of {duplicate[1]}"
            if posting is None:
                _quarantine(result, batch.name, position, record, reason)
                continue
            posting.extra.update(batch=batch.name, language=language.language)
            dedup.remember(posting)
            result.postings.append(posting)
            result.kept_by_source[posting.source] += 1
        if on_batch:
            on_batch(batch)
    return result


def _map(batch: Batch, record: dict) -> tuple[JobPosting | None, str]:
    mapper = batch.mapper or detect_source(record)
    if mapper is None:
        return None, "unknown layout (fields: " + ", ".join(sorted(record)[:8]) + ")"
    try:
        return mapper.to_posting(record), ""
    except MalformedRecord as exc:
        return None, exc.reason


def _quarantine(result: NormalizeResult, batch: str, position: int, record: dict, reason: str) -> None:
    # The reason family ("duplicate by url", "missing title", ...) is what the counts group by.
    family = reason.split(" of ")[0].split(" (")[0].split(":")[0]
    result.quarantined_by_reason[family] += 1
    result.quarantine.append({"batch": batch, "position": position, "reason": reason, "record": record})
