"""Text cleaning shared by training and serving.

The trainer and the device call exactly these functions, so what the model saw at training time
is what it sees on the Pi. Nothing here imports torch, transformers or anything heavy.
"""

from __future__ import annotations

import bisect
import functools
import html
import itertools
import re
import unicodedata
from pathlib import Path

from shared.casefold import fold
from shared.stopwords import STOP_WORDS

URL_TOKEN = "[url]"
EMAIL_TOKEN = "[email]"

_TAG = re.compile(r"<[^>]+>")
_BLOCK_TAG = re.compile(r"</?(p|div|br|li|ul|ol|h[1-6]|tr|td|section|article)\b[^>]*>", re.I)
_SCRIPT_STYLE = re.compile(r"<(script|style)\b.*?</\1\s*>", re.I | re.S)
_URL = re.compile(r"(https?://|www\.)\S+", re.I)
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(\.[\w-]+)+\b")
# Runs of these fold to one space. Only runs that change are matched (two or more, or one that is not a
# plain space): the same result as matching every run, without a substitution per space of the text.
_SPACES = re.compile(r"[ \t\f\v\u00a0]{2,}|[\t\f\v\u00a0]")
_DOUBLE_SPACES = re.compile(r"  +")
_WORD = re.compile(r"[a-z0-9][a-z0-9+#.\-]*[a-z0-9+#]|[a-z0-9]", re.I)

# Mojibake seen in the 2025 CSV (UTF-8 bytes decoded as cp1252 upstream, e.g. "â€“").
_MOJIBAKE_MARKERS = ("â€", "Ã©", "Ã¨", "Â ")


def repair_mojibake(text: str) -> str:
    """Undo one round of UTF-8-read-as-cp1252 damage, but only when it round-trips cleanly."""
    if not any(marker in text for marker in _MOJIBAKE_MARKERS):
        return text
    try:
        return text.encode("cp1252").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text


def strip_html(text: str) -> str:
    """Drop scripts, styles and tags (block tags become line breaks), then decode entities."""
    text = _SCRIPT_STYLE.sub(" ", text)
    text = _BLOCK_TAG.sub("\n", text)
    text = _TAG.sub(" ", text)
    return html.unescape(text)


def storable_text(text: str) -> tuple[str, list[str]]:
    """`text` as every store on its way can hold it, and what was changed (for the caller to report).

    The device's SQLite and the collector's PostgreSQL store what the user typed, and the MQTT contract
    refuses what PostgreSQL cannot hold. Lone surrogates (undecodable command-line bytes, PEP 383; JSON
    "\\ud800") cannot be encoded as UTF-8: they become U+FFFD. U+0000 is removed rather than replaced: a
    UTF-16 file read as UTF-8 has one after every ASCII character, and removing them gives the words back
    (clean_text drops U+0000 too, so what the model reads does not change).
    """
    changes: list[str] = []
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        changes.append("invalid UTF-8; undecodable bytes were replaced with U+FFFD")
        try:
            raw = text.encode("utf-8", errors="surrogateescape")
        except UnicodeEncodeError:  # lone surrogates that are not escaped bytes (e.g. JSON "\\ud800")
            raw = text.encode("utf-8", errors="replace")
        text = raw.decode("utf-8", errors="replace")
    if "\x00" in text:
        count = text.count("\x00")
        changes.append(f"{count:,} NUL character{'s' if count > 1 else ''} (U+0000) removed")
        text = text.replace("\x00", "")
    return text, changes


def clean_text(text: str) -> str:
    """Canonical cleaning: HTML and entities out, NFKC, URLs/emails masked, whitespace folded, each line
    stripped and blank lines dropped.

    Case is kept: the tokenizer lower-cases for uncased encoders, and the skill matcher wants the
    original spelling for display. Each step first checks, with a C-speed test, whether it can change
    the text at all (a URL needs "http" or "www.", an e-mail "@", ...): the device runs this for every
    posting, and most steps find nothing to do.
    """
    text = repair_mojibake(text)
    text = strip_html(text)
    text = unicodedata.normalize("NFKC", text)
    text = _drop_control_characters(text)
    lowered = text.lower()  # re.I patterns below can only match where these lower-cased literals occur
    if "http" in lowered or "www." in lowered:
        text = _URL.sub(URL_TOKEN, text)
    if "@" in text:
        text = _EMAIL.sub(EMAIL_TOKEN, text)
    if "\t" in text or "\f" in text or "\v" in text or "\u00a0" in text:
        text = _SPACES.sub(" ", text)
    elif "  " in text:  # only spaces can form a run: the same substitution, found by its literal prefix
        text = _DOUBLE_SPACES.sub(" ", text)
    # Every whitespace run that holds a line break becomes one line break, and the ends are stripped:
    # i.e. each line stripped, blank lines dropped (str.strip() and the regex \s are the same set).
    return "\n".join(line for line in (raw.strip() for raw in text.split("\n")) if line)


def _drop_control_characters(text: str) -> str:
    """Remove Unicode category C (controls, format, private use, unassigned), keeping newline and tab.

    Every category-C character is non-printable, so a text that is printable apart from its newlines
    and tabs (almost every posting) is returned as is without a per-character category lookup.
    """
    if text.replace("\n", "").replace("\t", "").isprintable():
        return text
    return "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch)[0] != "C")


def remove_stop_words(text: str) -> str:
    """Keep only non-stop-word tokens (lower-cased). Used by the TF-IDF baseline and keyword stats.

    The transformer gets the cleaned text *with* stop words: it was pretrained on natural sentences.
    """
    return " ".join(w for w in _WORD.findall(text.lower()) if w not in STOP_WORDS)


def words(text: str) -> list[str]:
    """Lower-cased word tokens of cleaned text (technical tokens such as c++, c#, node.js survive)."""
    return _WORD.findall(text.lower())


def load_tokenizer(path: str | Path, max_length: int):
    """Load a fast tokenizer from `tokenizer.json` with truncation and padding fixed for the model.

    Both the trainer and the device runtime tokenize through this, so ids match byte for byte.
    """
    from tokenizers import Tokenizer  # light: the Rust tokenizers wheel, no transformers

    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.enable_truncation(max_length=max_length)
    pad_id = tokenizer.token_to_id("[PAD]")
    tokenizer.enable_padding(pad_id=0 if pad_id is None else pad_id, pad_token="[PAD]")
    return tokenizer


# How raw posting text becomes model input. The chosen style is recorded in the model's train log and
# in the bundle manifest (`preprocessing`), and the device applies the same function before tokenizing.
#
# Why "skills_first": a posting is ~5,000 characters (~1,100 word pieces) but the encoder reads 256, and
# the head of a posting is mostly the company blurb. Moving the lines that name skills to the front (in
# their original order) and dropping EEO/benefits/pay boilerplate puts the requirements in the window.
# Measured on the 2025 rows with frozen MiniLM features + logistic regression, 5-fold CV: head of the
# clean text 0.859, stop words removed 0.875, skills_first 0.898 (docs/studies/2026-11-27-model-input-screen.md).
PREPROCESSING_STYLES = ("clean", "clean_no_stopwords", "skills_first", "skills_first_no_stopwords")

# A line holding one of these (in any case) is dropped. Lower case (a test checks): they are searched for
# in `shared.casefold.fold`ed text, which compares like re.IGNORECASE.
BOILERPLATE_PHRASES = (
    "equal employment opportunit",
    "equal opportunit",
    "without regard to",
    "disabilit",
    "veteran status",
    "reasonable accommodation",
    "401k",
    "401(k",
    "paid time off",
    "health insurance",
    "dental",
    "pay range",
    "salary range",
    "base pay",
    "base salary",
    "compensation package",
    "compensation range",
    "e-verify",
    "background check",
    "privacy notice",
    "privacy policy",
)


def skills_first(text: str) -> str:
    """Lines naming a skill first, then the other lines, each group in original order; boilerplate dropped."""
    from shared.skills import lines_mentioning_skills  # shared.skills has no heavy imports; local: no cycle

    lines, folded = text.split("\n"), fold(text)  # one fold for both scans
    boilerplate = _boilerplate_lines(lines, folded)
    with_skills, without = [], []
    for index, (line, mentions) in enumerate(zip(lines, lines_mentioning_skills(text, folded))):
        if line.strip() and index not in boilerplate:
            (with_skills if mentions else without).append(line)
    return "\n".join(with_skills + without)


def _boilerplate_lines(lines: list[str], folded: str) -> set[int]:
    """Indices of the `lines` holding a boilerplate phrase, from one Aho-Corasick scan of their text folded
    (`fold`): a phrase never spans a line break, so each line with one holds the start of a match."""
    starts = list(itertools.accumulate((len(line) + 1 for line in lines[:-1]), initial=0))
    found = _boilerplate_automaton().find_matches_as_indexes(folded)
    return {bisect.bisect_right(starts, start) - 1 for _, start, _ in found}


@functools.lru_cache(maxsize=1)
def _boilerplate_automaton():
    import ahocorasick_rs  # Rust extension, wheels for x86-64 and aarch64

    return ahocorasick_rs.AhoCorasick(list(BOILERPLATE_PHRASES))


def model_input(text: str, preprocessing: str = "clean") -> str:
    """The exact string the tokenizer sees, for training and for serving."""
    cleaned = clean_text(text)
    if preprocessing == "clean":
        return cleaned
    if preprocessing == "clean_no_stopwords":
        return remove_stop_words(cleaned)
    if preprocessing == "skills_first":
        return skills_first(cleaned)
    if preprocessing == "skills_first_no_stopwords":
        return remove_stop_words(skills_first(cleaned))
    raise ValueError(f"unknown preprocessing {preprocessing!r}; expected one of {PREPROCESSING_STYLES}")
