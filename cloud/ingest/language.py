"""Offline English detection from function words: no model file, no PyPI detector.

Why this is enough: the question is only "is this posting English prose?", and on postings of a
few hundred words the share of function words answers it. English postings score 0.2-0.5 on
English stop words (shared.stopwords); list-like English postings can drop to ~0.1, so the ratio
alone is not a safe cut. Each text is therefore also scored against the most frequent, unambiguous
function words of the other languages the scraped sources carry (Dutch, German, French, Spanish,
Italian, Portuguese); a text is non-English when another language out-scores English.
Texts under MIN_WORDS words are "undetermined" and kept.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.stopwords import STOP_WORDS
from shared.text import words

MIN_WORDS = 30

# Top function words per language, minus any that are also English words ("in", "die", "a", ...).
FOREIGN_FUNCTION_WORDS: dict[str, frozenset[str]] = {
    language: frozenset(text.split())
    for language, text in {
        "nl": "het een van voor met zijn naar wij jij je ons onze bij ook niet zijn worden wordt als "
        "aan maar dat deze voor en te op",
        "de": "der und den das ist mit sich des auf für nicht eine einer eines dem wir sie ihr ihre "
        "oder auch bei werden zu von",
        "fr": "le la les des et est une du pour dans qui sur avec vous nous pas sont au aux ce cette vos votre",
        "es": "el los las del y es una por para que su sus se al lo como más nuestro",
        "it": "il della di che è del una sono gli nel alla nostro le",
        "pt": "os das dos em um uma para com não são ao pela pelo você nossa",
    }.items()
}


@dataclass(frozen=True)
class LanguageGuess:
    language: str  # "en", a foreign code, or "und" (too short to tell)
    english_ratio: float
    word_count: int

    @property
    def is_english(self) -> bool:
        return self.language in ("en", "und")


def guess_language(text: str) -> LanguageGuess:
    tokens = [token for token in words(text) if token.isalpha()]
    if len(tokens) < MIN_WORDS:
        return LanguageGuess("und", _ratio(tokens, STOP_WORDS), len(tokens))
    english = _ratio(tokens, STOP_WORDS)
    foreign_language, foreign = max(
        ((code, _ratio(tokens, vocabulary)) for code, vocabulary in FOREIGN_FUNCTION_WORDS.items()),
        key=lambda pair: pair[1],
    )
    return LanguageGuess(foreign_language if foreign > english else "en", english, len(tokens))


def _ratio(tokens: list[str], vocabulary: frozenset[str]) -> float:
    return sum(token in vocabulary for token in tokens) / len(tokens) if tokens else 0.0
