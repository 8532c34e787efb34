"""prepare_text: each bad input is a clear message or a repaired text with a note."""

from __future__ import annotations

import pytest

from device.inputs import MAX_CHARS, prepare_text
from shared.errors import UserError


@pytest.mark.parametrize(
    "raw, kind", [("", "empty"), (b"", "empty"), (" \n\t ", "whitespace-only"), (b"\xef\xbb\xbf  ", "whitespace-only")]
)
def test_empty_and_whitespace_are_user_errors(raw, kind):
    with pytest.raises(UserError, match=f"line 7: {kind} text, nothing to classify"):
        prepare_text(raw, source="line 7")


def test_huge_text_is_truncated_with_a_note():
    prepared = prepare_text("data " * 1_048_576)  # 5 MB
    assert len(prepared.text) == MAX_CHARS
    assert prepared.notes == [
        "input: 5,242,880 characters, truncated to the first 100,000 (the model reads only the beginning of a posting)"
    ]


def test_invalid_utf8_bytes_are_replaced_with_a_note():
    prepared = prepare_text(b"Python \xff\xfe developer")
    assert prepared.text == "Python \ufffd\ufffd developer"
    assert prepared.notes == ["input: invalid UTF-8 at byte 7; undecodable bytes were replaced with U+FFFD"]


def test_undecodable_argv_bytes_are_replaced_with_a_note():
    argv_text = b"SQL \xff analyst".decode("utf-8", errors="surrogateescape")
    prepared = prepare_text(argv_text, source="argument 1")
    assert prepared.text == "SQL \ufffd analyst" and "argument 1: invalid UTF-8" in prepared.notes[0]


def test_clean_input_passes_untouched():
    assert prepare_text("Senior Data Scientist").notes == []
    assert prepare_text(b"\xef\xbb\xbfKotlin").text == "Kotlin"
