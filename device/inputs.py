"""Turning whatever a user hands the device (CLI args, files, stdin, HTTP bodies) into posting text.

Problems a user can fix are `UserError`s (one line, exit 2). Problems we can work around (a 5 MB
paste, bytes that are not UTF-8) are repaired and reported as notes, so the caller can still answer
and tell the user exactly what was changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.errors import UserError
from shared.text import storable_text

# The model reads at most max_length word pieces (192 on the device, 256 for Model A), about 1-2 KB of
# text. 100k characters keeps every skill a long posting mentions (for the explanation) while bounding
# cleaning/tokenising cost.
MAX_CHARS = 100_000


@dataclass
class PreparedText:
    text: str
    notes: list[str] = field(default_factory=list)


def prepare_text(raw: str | bytes, max_chars: int = MAX_CHARS, source: str = "input") -> PreparedText:
    """Decode, check and bound one posting. `source` names it in messages ("line 3", "--file x")."""
    notes: list[str] = []
    if isinstance(raw, (bytes, bytearray)):
        try:
            text = bytes(raw).decode("utf-8")
        except UnicodeDecodeError as exc:
            text = bytes(raw).decode("utf-8", errors="replace")
            notes.append(f"{source}: invalid UTF-8 at byte {exc.start}; undecodable bytes were replaced with U+FFFD")
        if text.startswith("\ufeff"):
            text = text[1:]  # a BOM from Windows editors is not content
    else:
        text = raw
    text, changes = storable_text(text)  # what the store and the collector's database can hold
    notes.extend(f"{source}: {change}" for change in changes)
    if not text or not text.strip():
        raise UserError(f"{source}: {'empty' if not text else 'whitespace-only'} text, nothing to classify")
    if len(text) > max_chars:
        notes.append(
            f"{source}: {len(text):,} characters, truncated to the first {max_chars:,} "
            "(the model reads only the beginning of a posting)"
        )
        text = text[:max_chars]
    return PreparedText(text=text, notes=notes)
