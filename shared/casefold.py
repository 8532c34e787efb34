"""Lower-casing that agrees with `re.IGNORECASE` for ASCII patterns, position for position.

The skill matcher and the boilerplate filter search lower-cased text with fast literal scanners (an
Aho-Corasick automaton, a case-sensitive regex) instead of running `re.IGNORECASE` patterns, which
Python's `re` cannot prefix-scan. That is only the same search if, for every character c of the text
and every ASCII character p of a pattern, `re.IGNORECASE` matches c to p exactly when the folded c is
p, and if folding keeps every character at its position (the matches' spans are used on the text).

`str.lower()` does both, except for three characters: "İ" lower-cases to two characters, and "ı" and
"ſ" match "i" and "s" under `re.IGNORECASE` (Python's `re` treats them as case variants) while
`lower()` leaves them as they are. Texts containing one of them (rare: Turkish, old typography) take
a character-by-character fold that maps them to "i", "i" and "s"; tests/foundation/test_casefold.py
checks the claim against `re` for every Unicode character.
"""

from __future__ import annotations

# re.IGNORECASE matches these to an ASCII letter although str.lower() does not map them to it.
SPECIAL = {"\u0130": "i", "\u0131": "i", "\u017f": "s"}


def fold(text: str) -> str:
    """`text` lower-cased, the same length, each character folded as `re.IGNORECASE` compares it to ASCII."""
    lowered = text.lower()
    if len(lowered) == len(text) and "\u0131" not in text and "\u017f" not in text:
        return lowered
    return "".join(SPECIAL.get(ch) or (low if len(low := ch.lower()) == 1 else ch) for ch in text)
