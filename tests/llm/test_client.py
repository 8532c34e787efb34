"""The chat-completions client against a real HTTP server on loopback: retries, Retry-After, timeouts,
malformed completions, a refused key and a missing one."""

from __future__ import annotations

import pytest

from cloud.llm.answer import parse_label
from cloud.llm.client import AuthenticationFailed, CallFailed, ChatClient, Endpoint
from shared.errors import UserError
from tests.support.fake_chat_api import FakeChatApi, Reply, completion

MESSAGES = [{"role": "system", "content": "classify"}, {"role": "user", "content": "statistics and pandas"}]


def client_for(api: FakeChatApi, sleeps: list | None = None, **settings) -> ChatClient:
    endpoint = Endpoint(base_url=api.base_url, model="fake-model", api_key="sk-test", **settings)
    return ChatClient(endpoint, sleep=(sleeps.append if sleeps is not None else lambda s: None))


def test_a_completion_carries_content_usage_and_the_request_is_the_protocol():
    with FakeChatApi() as api:
        result = client_for(api).complete(MESSAGES)
    assert parse_label(result.content) == 1 and result.attempts == 1
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (1200, 6)
    sent = api.requests[0]
    assert sent["auth"] == "Bearer sk-test"
    assert sent["body"]["model"] == "fake-model" and sent["body"]["temperature"] == 0
    assert sent["body"]["messages"] == MESSAGES and sent["body"]["max_tokens"] == 16


def test_429_is_retried_after_the_servers_retry_after():
    def script(call, body):
        if call < 2:
            return Reply(status=429, json_body={"error": "slow down"}, headers={"Retry-After": "7"})
        return Reply(json_body=completion('{"label": 0}'))

    sleeps: list[float] = []
    with FakeChatApi(script) as api:
        result = client_for(api, sleeps, max_backoff_s=30).complete(MESSAGES)
    assert result.attempts == 3 and len(api.requests) == 3
    assert sleeps == [7.0, 7.0]  # the server's hint, not the default backoff


def test_retry_after_is_capped_and_without_it_backoff_doubles():
    def script(call, body):
        hint = {"Retry-After": "3600"} if call == 0 else {}
        return Reply(status=503, json_body={"error": "busy"}, headers=hint)

    sleeps: list[float] = []
    with FakeChatApi(script) as api, pytest.raises(CallFailed) as failure:
        client_for(api, sleeps, max_retries=3, backoff_s=0.5, max_backoff_s=10).complete(MESSAGES)
    assert failure.value.reason == "http_503"
    assert sleeps == [10.0, 1.0, 2.0]  # capped hint, then 0.5 * 2**1, 0.5 * 2**2
    assert len(api.requests) == 4


def test_persistent_500_fails_after_the_retry_budget():
    with FakeChatApi(lambda call, body: Reply(status=500, json_body={"error": "boom"})) as api:
        with pytest.raises(CallFailed) as failure:
            client_for(api, max_retries=2).complete(MESSAGES)
    assert failure.value.reason == "http_500" and len(api.requests) == 3


def test_a_slow_server_is_a_counted_timeout_then_a_retry_can_succeed():
    def script(call, body):
        return Reply(json_body=completion('{"label": 1}'), delay_s=1.0 if call == 0 else 0.0)

    with FakeChatApi(script) as api:
        result = client_for(api, timeout_s=0.2, max_retries=1).complete(MESSAGES)
    assert result.attempts == 2

    with FakeChatApi(lambda call, body: Reply(json_body=completion("x"), delay_s=1.0)) as api:
        with pytest.raises(CallFailed) as failure:
            client_for(api, timeout_s=0.2, max_retries=0).complete(MESSAGES)
    assert failure.value.reason == "timeout"


@pytest.mark.parametrize(
    "reply",
    [
        Reply(raw_body=b"<html>gateway</html>"),
        Reply(json_body={"choices": []}),
        Reply(json_body={"choices": [{"message": {"role": "assistant"}}]}),
        Reply(json_body={"choices": [{"message": {"content": {"label": 1}}}]}),
    ],
    ids=["not-json", "no-choices", "no-content", "content-not-text"],
)
def test_a_malformed_completion_is_a_failure_and_is_not_retried(reply):
    with FakeChatApi(lambda call, body: reply) as api:
        with pytest.raises(CallFailed) as failure:
            client_for(api).complete(MESSAGES)
    assert failure.value.reason == "malformed_response" and len(api.requests) == 1


def test_a_refused_key_stops_with_one_clear_line():
    with FakeChatApi(lambda call, body: Reply(status=401, json_body={"error": "invalid key"})) as api:
        with pytest.raises(AuthenticationFailed) as failure:
            client_for(api).complete(MESSAGES)
    assert isinstance(failure.value, UserError) and failure.value.exit_code == 2
    assert "HTTP 401" in failure.value.format_message() and len(api.requests) == 1


def test_a_missing_key_or_endpoint_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("CAREEREDGE_LLM_API_KEY", raising=False)
    with pytest.raises(UserError, match="CAREEREDGE_LLM_API_KEY is not set"):
        Endpoint.from_environment("http://127.0.0.1:9/v1", "m")
    monkeypatch.setenv("CAREEREDGE_LLM_API_KEY", "sk-secret-value")
    monkeypatch.delenv("CAREEREDGE_LLM_BASE_URL", raising=False)
    with pytest.raises(UserError, match="no LLM endpoint"):
        Endpoint.from_environment(None, "m")
    endpoint = Endpoint.from_environment("http://127.0.0.1:9/v1/", "m")
    assert endpoint.base_url == "http://127.0.0.1:9/v1" and "sk-secret-value" not in repr(endpoint)


def test_missing_or_broken_usage_is_none_not_zero():
    bodies = [completion('{"label": 1}', prompt_tokens=None), completion('{"label": 1}')]
    bodies[1]["usage"]["prompt_tokens"] = "many"
    with FakeChatApi(lambda call, body: Reply(json_body=bodies[call])) as api:
        client = client_for(api)
        assert client.complete(MESSAGES).usage is None
        assert client.complete(MESSAGES).usage is None


@pytest.mark.parametrize(
    ("content", "label"),
    [
        ('{"label": 0}', 0),
        (' {"label":1}\n', 1),
        ('```json\n{"label": 1}\n```', None),
        ('{"label": "1"}', None),
        ('{"label": true}', None),
        ('{"label": 2}', None),
        ('{"label": 1, "why": "pandas"}', None),
        ("Data Science", None),
        ("", None),
    ],
)
def test_only_strict_json_is_an_answer(content, label):
    assert parse_label(content) == label


def test_an_unreachable_endpoint_is_a_counted_connection_failure():
    from tests.support.mosquitto import free_loopback_port

    endpoint = Endpoint(f"http://127.0.0.1:{free_loopback_port()}/v1", "m", "k", max_retries=1)
    sleeps: list[float] = []
    with pytest.raises(CallFailed) as failure:
        ChatClient(endpoint, sleep=sleeps.append).complete(MESSAGES)
    assert failure.value.reason == "connection" and sleeps == [1.0]
