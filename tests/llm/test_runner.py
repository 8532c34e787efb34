"""The LLM run over real 2025 postings: every outcome counted, concurrency bounded, the cost cap honoured,
a refused key stopping the run, and token counts offline when the API sends no usage."""

from __future__ import annotations

import json
import threading
import time

import pytest

from cloud.costs.prices import load_prices
from cloud.llm.client import AuthenticationFailed, ChatClient, Endpoint
from cloud.llm.prompt import load_prompt
from cloud.llm.runner import classify_postings
from cloud.llm.tokens import TokenCounter, count_messages
from tests.support.fake_chat_api import FakeChatApi, Reply, completion

PROMPT = load_prompt()


@pytest.fixture(scope="module")
def prices():
    return load_prices()


def client_for(api, **settings) -> ChatClient:
    settings = {"max_retries": 0, **settings}
    return ChatClient(Endpoint(api.base_url, "gpt-4o-mini", "sk-test", **settings), sleep=lambda s: None)


def test_every_posting_ends_in_one_counted_outcome(real_postings, prices):
    postings = real_postings[:12]

    def script(call, body):
        posting = body["messages"][-1]["content"]
        index = next(i for i, p in enumerate(postings) if p.text in posting)
        truth = postings[index].label
        if index in (0, 1):
            return Reply(json_body=completion("I think this is Data Science."))  # unparseable
        if index == 2:
            return Reply(status=500, json_body={"error": "boom"})
        if index == 3:
            return Reply(raw_body=b"not json")
        wrong = index == 4
        return Reply(json_body=completion(json.dumps({"label": 1 - truth if wrong else truth}), 1500, 6))

    with FakeChatApi(script) as api:
        outcomes, summary = classify_postings(client_for(api), PROMPT, postings, prices["gpt-4o-mini"], None, 3)
    assert [o.id for o in outcomes] == [p.id for p in postings]  # input order kept
    assert summary.sent == 12 and summary.answered == 8 and summary.unparseable == 2
    assert summary.failed == {"http_500": 1, "malformed_response": 1}
    assert summary.correct == 7
    assert summary.accuracy == pytest.approx(7 / 12) and summary.answered_accuracy == pytest.approx(7 / 8)
    # 10 answered calls were billed from `usage`: 2 unparseable at 1200 + 8 at 1500 prompt tokens
    expected = prices["gpt-4o-mini"].call_usd(2 * 1200 + 8 * 1500, 10 * 6)
    assert summary.cost_usd == pytest.approx(expected) and summary.tokens_from == {"usage": 10}


def test_no_more_than_concurrency_calls_are_in_flight(real_postings, prices):
    in_flight, peak, lock = 0, 0, threading.Lock()

    def script(call, body):
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        time.sleep(0.05)
        with lock:
            in_flight -= 1
        return Reply(json_body=completion('{"label": 0}'))

    with FakeChatApi(script) as api:
        _, summary = classify_postings(client_for(api), PROMPT, real_postings[:12], prices["gpt-4o-mini"], None, 3)
    assert summary.sent == 12 and peak == 3


def test_the_cost_cap_stops_sending_and_is_never_exceeded(real_postings, prices):
    price = prices["gpt-4o-mini"]
    counter = TokenCounter("o200k_base", exact=True)
    postings = real_postings[:20]

    def script(call, body):  # a server that bills what the request really holds
        return Reply(json_body=completion('{"label": 1}', count_messages(body["messages"]), 6))

    one_call = price.call_usd(count_messages(PROMPT.messages(postings[0].text)), 6)
    cap = 5 * one_call
    with FakeChatApi(script) as api:
        outcomes, summary = classify_postings(
            client_for(api), PROMPT, postings, price, counter, concurrency=2, max_cost_usd=cap
        )
    assert 2 <= summary.sent < 20 and len(api.requests) == summary.sent
    assert summary.skipped_cost_cap == 20 - summary.sent
    assert summary.cost_usd <= cap
    assert [o.outcome for o in outcomes[summary.sent :]] == ["skipped:cost_cap"] * (20 - summary.sent)


def test_a_refused_key_stops_the_run(real_postings, prices):
    with FakeChatApi(lambda call, body: Reply(status=401, json_body={"error": "bad key"})) as api:
        with pytest.raises(AuthenticationFailed):
            classify_postings(client_for(api), PROMPT, real_postings[:20], prices["gpt-4o-mini"], None, 2)
    assert len(api.requests) <= 3  # the calls already in flight, not the other 17


def test_without_usage_tokens_are_counted_offline_and_labelled(real_postings, prices):
    posting = real_postings[0]
    with FakeChatApi(lambda call, body: Reply(json_body=completion('{"label": 1}', prompt_tokens=None))) as api:
        outcomes, summary = classify_postings(
            client_for(api), PROMPT, [posting], prices["gpt-4o-mini"], TokenCounter("o200k_base", True), 1
        )
    outcome = outcomes[0]
    assert outcome.tokens_from == "tokenizer o200k_base"
    assert outcome.prompt_tokens == count_messages(PROMPT.messages(posting.text))
    assert outcome.completion_tokens == 6 and summary.tokens_from == {"tokenizer o200k_base": 1}
