"""Text cleaning shared by training and serving.

The trainer and the device call exactly these functions, so what the model saw at training time
is what it sees on the Pi. Nothing here imports torch, transformers or anything heavy.
"""

from __future__ import annotations

import html
import re
import unicodedata
from pathlib import Path

from shared.stopwords import STOP_WORDS

URL_TOKEN = "[url]"
EMAIL_TOKEN = "[email]"

_TAG = re.compile(r"<[^>]+>")
_BLOCK_TAG = re.compile(r"</?(p|div|br|li|ul|ol|h[1-6]|tr|td|section|article)\b[^>]*>", re.I)
_SCRIPT_STYLE = re.compile(r"<(script|style)\b.*?</\1\s*>", re.I | re.S)
_URL = re.compile(r"(https?://|www\.)\S+", re.I)
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(\.[\w-]+)+\b")
_SPACES = re.compile(r"[ \t\f\v\u00a0]+")
_NEWLINES = re.compile(r"\s*\n\s*")
_LAYOUT_CHARACTERS = str.maketrans("", "", "\n\t")  # kept by clean_text; removed only for the printable check
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
    """Canonical cleaning: HTML and entities out, NFKC, URLs/emails masked, whitespace folded.

    Case is kept: the tokenizer lower-cases for uncased encoders, and the skill matcher wants the
    original spelling for display.
    """
    text = repair_mojibake(text)
    text = strip_html(text)
    text = unicodedata.normalize("NFKC", text)
    text = _drop_control_characters(text)
    text = _URL.sub(URL_TOKEN, text)
    text = _EMAIL.sub(EMAIL_TOKEN, text)
    text = _SPACES.sub(" ", text)
    text = _NEWLINES.sub("\n", text)
    return text.strip()


def _drop_control_characters(text: str) -> str:
    """Remove Unicode category C (controls, format, private use, unassigned), keeping newline and tab.

    Every category-C character is non-printable, so a text that is printable apart from its newlines
    and tabs (almost every posting) is returned as is without a per-character category lookup, which
    was the single most expensive step of `model_input` on the device.
    """
    if text.translate(_LAYOUT_CHARACTERS).isprintable():
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

_BOILERPLATE_LINE = re.compile(
    r"equal (employment )?opportunit|without regard to|disabilit|veteran status|reasonable accommodation|"
    r"401\(?k\)?|paid time off|health insurance|dental|pay range|salary range|base (pay|salary)|"
    r"compensation (package|range)|e-verify|background check|privacy (notice|policy)",
    re.I,
)


def skills_first(text: str) -> str:
    """Lines naming a skill first, then the other lines, each group in original order; boilerplate dropped."""
    from shared.skills import mentions_skill  # shared.skills has no heavy imports; kept local to avoid a cycle

    with_skills, without = [], []
    for line in text.split("\n"):
        if line.strip() and not _BOILERPLATE_LINE.search(line):
            (with_skills if mentions_skill(line) else without).append(line)
    return "\n".join(with_skills + without)


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
