"""A client for any OpenAI-compatible chat-completions API: `POST {base_url}/chat/completions`.

Works with hosted APIs (OpenAI; Anthropic's OpenAI-compatible endpoint) and local servers (llama.cpp's
`llama-server`, vLLM), which all speak the same request and answer:

    {"model": ..., "messages": [...], "temperature": 0, "max_tokens": 16}
    -> {"choices": [{"message": {"content": "{\"label\": 1}"}}], "usage": {"prompt_tokens": .., "completion_tokens": ..}}

Failure policy, per call:
* 401 / 403: the key is wrong for every posting alike, so `AuthenticationFailed` (a UserError) stops the run;
* 429 and 5xx, timeouts and dropped connections: retried with exponential backoff, honouring `Retry-After`
  (seconds or an HTTP date, capped), up to `max_retries`; then `CallFailed` with the last reason;
* a 200 whose body is not a chat completion (not JSON, no `choices[0].message.content`): `CallFailed`
  ("malformed_response"), not retried: a server that answers garbage once will likely do it again;
* any other 4xx (400 context too long, 404 unknown model): `CallFailed` ("http_<code>"), not retried.
The caller counts `CallFailed` reasons; one bad posting never ends a run.
"""

from __future__ import annotations

import email.utils
import os
import time
from dataclasses import dataclass, field
from typing import Any

import requests

from shared.errors import UserError

ENV_BASE_URL = "CAREEREDGE_LLM_BASE_URL"
ENV_MODEL = "CAREEREDGE_LLM_MODEL"
ENV_API_KEY = "CAREEREDGE_LLM_API_KEY"
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


class AuthenticationFailed(UserError):
    """The API refused the key (401/403): no point sending the other postings."""


class CallFailed(Exception):
    """One call that did not produce a completion; `reason` is what the run counts by."""

    def __init__(self, reason: str, detail: str = "", retry_after: float | None = None):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
        self.retry_after = retry_after  # the server's Retry-After, in seconds, when it sent one


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True)
class Completion:
    content: str
    usage: Usage | None  # None when the server sent no usable `usage` object
    latency_ms: float  # the successful attempt's round trip
    attempts: int


@dataclass(frozen=True)
class Endpoint:
    base_url: str
    model: str
    api_key: str = field(repr=False)
    timeout_s: float = 60.0
    max_retries: int = 4
    backoff_s: float = 1.0
    max_backoff_s: float = 30.0
    max_tokens: int = 16  # the answer is ~6 tokens; a cap keeps a rambling model's output bill bounded

    @classmethod
    def from_environment(cls, base_url: str | None = None, model: str | None = None, **settings) -> Endpoint:
        """Base URL and model from the arguments or $CAREEREDGE_LLM_BASE_URL / $CAREEREDGE_LLM_MODEL; the key
        from $CAREEREDGE_LLM_API_KEY only (never a command-line argument: it would land in shell history)."""
        base_url = base_url or os.environ.get(ENV_BASE_URL, "").strip()
        model = model or os.environ.get(ENV_MODEL, "").strip()
        api_key = os.environ.get(ENV_API_KEY, "").strip()
        if not base_url:
            raise UserError(f"no LLM endpoint: pass --base-url or set {ENV_BASE_URL} (e.g. http://127.0.0.1:8080/v1)")
        if not model:
            raise UserError(f"no LLM model: pass --model or set {ENV_MODEL}")
        if not api_key:
            raise UserError(f"{ENV_API_KEY} is not set: the LLM API needs a key (local servers accept any value)")
        return cls(base_url=base_url.rstrip("/"), model=model, api_key=api_key, **settings)


class ChatClient:
    def __init__(self, endpoint: Endpoint, session: requests.Session | None = None, sleep=time.sleep):
        self.endpoint = endpoint
        self.session = session or requests.Session()
        self._sleep = sleep

    @property
    def url(self) -> str:
        return f"{self.endpoint.base_url}/chat/completions"

    def complete(self, messages: list[dict[str, str]]) -> Completion:
        endpoint = self.endpoint
        body = {"model": endpoint.model, "messages": messages, "temperature": 0, "max_tokens": endpoint.max_tokens}
        headers = {"Authorization": f"Bearer {endpoint.api_key}"}
        last: CallFailed | None = None
        for attempt in range(endpoint.max_retries + 1):
            if attempt:
                self._sleep(self._delay(attempt, last))
            began = time.perf_counter()
            try:
                response = self.session.post(self.url, json=body, headers=headers, timeout=endpoint.timeout_s)
            except requests.Timeout:
                last = CallFailed("timeout", f"no answer within {endpoint.timeout_s:g} s")
                continue
            except requests.RequestException as exc:  # refused, reset, truncated body, ...
                last = CallFailed("connection", str(exc)[:200])
                continue
            latency_ms = (time.perf_counter() - began) * 1000
            status = response.status_code
            if status in (401, 403):
                raise AuthenticationFailed(
                    f"{self.url} refused the API key (HTTP {status}): check $CAREEREDGE_LLM_API_KEY"
                )
            if status in RETRYABLE_STATUS:
                hint = retry_after_seconds(response.headers.get("Retry-After"))
                last = CallFailed(f"http_{status}", response.text[:200], retry_after=hint)
                continue
            if status != 200:
                raise CallFailed(f"http_{status}", response.text[:200])
            content, usage = parse_completion(response)
            return Completion(content=content, usage=usage, latency_ms=latency_ms, attempts=attempt + 1)
        assert last is not None
        raise last

    def _delay(self, attempt: int, last: CallFailed | None) -> float:
        endpoint = self.endpoint
        hinted = last.retry_after if last is not None else None
        delay = hinted if hinted is not None else endpoint.backoff_s * 2 ** (attempt - 1)
        return min(max(delay, 0.0), endpoint.max_backoff_s)


def parse_completion(response: requests.Response) -> tuple[str, Usage | None]:
    """(message content, usage) of a chat-completions answer; CallFailed("malformed_response") otherwise."""
    try:
        payload: Any = response.json()
        content = payload["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise CallFailed("malformed_response", response.text[:200]) from None
    if not isinstance(content, str):
        raise CallFailed("malformed_response", f"message content is {type(content).__name__}, not text")
    return content, parse_usage(payload.get("usage"))


def parse_usage(usage: Any) -> Usage | None:
    if not isinstance(usage, dict):
        return None
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in (prompt, completion)):
        return None
    return Usage(prompt_tokens=prompt, completion_tokens=completion)


def retry_after_seconds(value: str | None) -> float | None:
    """`Retry-After` as seconds: delta-seconds or an HTTP date (RFC 9110); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
