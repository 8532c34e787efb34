"""The LLM's answer must be strict JSON: one object, `{"label": 0}` or `{"label": 1}`, nothing else.

Anything else (prose, a code fence, a label of "1" as a string, a third key) is *unparseable*: counted, scored
as a wrong answer, never guessed at. A production caller would have to handle those answers too, so they are
part of the LLM's measured accuracy, not noise to clean up.
"""

from __future__ import annotations

import json

LABELS = (0, 1)


def parse_label(content: str | None) -> int | None:
    """The label in a strict-JSON answer, or None when the answer is unparseable."""
    if not isinstance(content, str):
        return None
    try:
        answer = json.loads(content.strip())
    except ValueError:
        return None
    if not isinstance(answer, dict) or set(answer) != {"label"}:
        return None
    label = answer["label"]
    if isinstance(label, bool) or not isinstance(label, int) or label not in LABELS:
        return None
    return label
