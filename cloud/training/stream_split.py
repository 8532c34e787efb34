"""The 2026 evaluation split: held out from the pseudo-label pool by a stable hash of source_id.

Stable means a posting lands on the same side every week, whatever else was scraped, so Model B
never trains on a posting it is later scored on, and week-to-week figures stay comparable.
Evaluation labels come from the title taxonomy (`shared.labels`), the same rule that labelled 2025;
postings whose title it cannot place are counted, not guessed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from shared.errors import UserError
from shared.labels import classify_title
from shared.posting import JobPosting

SALT = "careeredge/eval-2026"
EVAL_FRACTION = 0.3  # params.yaml `pseudo_label.eval_fraction` when it is unset
STREAM_EXCLUDED_SOURCES = frozenset({"kaggle_2025"})  # the 2025 data is A's, never the "new" stream


def stable_unit(key: str) -> float:
    """A number in [0, 1) fixed by `key` alone (the first 8 bytes of its sha256)."""
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") / 2**64


def eval_bucket(source_id: str) -> float:
    """A number in [0, 1) fixed by the id alone."""
    return stable_unit(f"{SALT}:{source_id}")


def is_eval_posting(posting: JobPosting, eval_fraction: float) -> bool:
    return eval_bucket(posting.source_id) < eval_fraction


@dataclass
class StreamSplit:
    pool: list[JobPosting] = field(default_factory=list)  # pseudo-label candidates
    evaluation: list[JobPosting] = field(default_factory=list)  # held out, taxonomy-labelled
    eval_labels: list[int] = field(default_factory=list)
    eval_unlabelled: int = 0  # held out but no taxonomy label

    def summary(self) -> dict:
        return {
            "pool": len(self.pool),
            "eval_labelled": len(self.evaluation),
            "eval_unlabelled": self.eval_unlabelled,
            "eval_class_counts": {str(k): self.eval_labels.count(k) for k in sorted(set(self.eval_labels))},
        }


def split_stream(postings: list[JobPosting], eval_fraction: float) -> StreamSplit:
    if not 0.0 < eval_fraction < 1.0:
        raise ValueError(f"eval_fraction must be in (0, 1), got {eval_fraction}")
    split = StreamSplit()
    for posting in postings:
        if posting.source in STREAM_EXCLUDED_SOURCES:
            continue
        if not is_eval_posting(posting, eval_fraction):
            split.pool.append(posting)
            continue
        label = classify_title(posting.title)
        if label is None:
            split.eval_unlabelled += 1
        else:
            split.evaluation.append(posting)
            split.eval_labels.append(label)
    return split


def eval_fraction_setting(params: dict):
    """`pseudo_label.eval_fraction` of params.yaml: the share of the 2026 stream held out for evaluation."""
    return (params.get("pseudo_label") or {}).get("eval_fraction", EVAL_FRACTION)


def load_stream(normalized: Path, params: dict, hint: str) -> StreamSplit:
    """The normalized 2026 stream split into pool and evaluation split, read once. A missing
    `postings.jsonl` is one UserError; `hint` says what else the user can do about it."""
    from cloud.ingest.normalized import load_postings

    if not (normalized / "postings.jsonl").is_file():
        raise UserError(f"{normalized / 'postings.jsonl'} not found (run `careeredge-cloud normalize` first{hint})")
    return split_stream(load_postings(normalized), eval_fraction_setting(params))
