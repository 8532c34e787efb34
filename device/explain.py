"""Which terms drove a prediction: occlusion over the posting's skill keywords.

Method (cheap and honest): find the skills the posting mentions (`shared.skills.find_skills`), delete
every mention of one skill at a time, and re-run the model. A term's score is how much the predicted
class's probability drops without it (positive = it pushed toward the prediction, negative = it
pushed the other way). All occluded variants run as one batch, so a posting with k skills costs
k + 1 inferences in ceil((k + 1) / batch) runs. Mentions past the model's max_length are skipped:
the model never read them, so deleting them cannot change anything.

Limits, stated in the CLI help too: only skill keywords are candidates (not every word), and
deleting a term measures its marginal effect given the rest of the posting, not an attribution that
sums to the probability.
"""

from __future__ import annotations

from collections.abc import Callable

from shared.skills import find_skills
from shared.text import clean_text

MAX_CANDIDATES = 16


def driving_terms(
    backend, text: str, top_k: int = 5, predict: Callable[[list[str]], list] | None = None
) -> list[tuple[str, float]]:
    """[(skill name, probability drop of the predicted class when it is removed)], largest |drop| first.

    `predict` runs the variants (default: `backend.predict`); the daemon passes its inference worker,
    so an explanation's inferences queue with everyone else's instead of running beside them."""
    cleaned = clean_text(text)
    spans_by_skill = _skill_spans_read_by_model(backend, cleaned)
    if not spans_by_skill:
        return []
    names = list(spans_by_skill)[:MAX_CANDIDATES]
    variants = [cleaned] + [_delete_spans(cleaned, spans_by_skill[name]) for name in names]
    original, *occluded = (predict or backend.predict)(variants)
    label = original.label
    scores = [(name, original.probabilities[label] - p.probabilities[label]) for name, p in zip(names, occluded)]
    scores.sort(key=lambda item: -abs(item[1]))
    return [(name, round(score, 4)) for name, score in scores[:top_k]]


def _skill_spans_read_by_model(backend, cleaned: str) -> dict[str, list[tuple[int, int]]]:
    from shared.reading import posting_windows

    windows = posting_windows(backend.tokenizer.encode(cleaned), backend.windows)
    offsets = [
        end
        for window in windows
        for (start, end), special in zip(window.offsets, window.special_tokens_mask)
        if not special
    ]
    read_until = max(offsets, default=0)  # the end of the last window the model reads
    spans: dict[str, list[tuple[int, int]]] = {}
    for match in find_skills(cleaned):
        if match.start < read_until:
            spans.setdefault(match.name, []).append((match.start, match.end))
    return spans


def _delete_spans(text: str, spans: list[tuple[int, int]]) -> str:
    for start, end in sorted(spans, reverse=True):
        text = text[:start] + " " + text[end:]
    return text
