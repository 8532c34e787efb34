"""Classify labelled postings with the LLM: bounded concurrency, a per-run cost cap, every outcome counted.

Each posting ends in exactly one outcome: `ok` (a strict-JSON label), `unparseable` (an answer that is not),
`failed:<reason>` (no completion after the client's retries: timeout, http_429, http_500, malformed_response,
...) or `skipped:cost_cap`. Accuracy counts every posting that was sent: an unparseable answer or a failed
call is a posting the caller got no class for, so it is scored wrong, and `answered_accuracy` shows the rest.

The cost cap is checked before each new call is sent, against the cost of the calls already answered
(their `usage`, else their counted tokens) plus a reserve for the calls in flight, so a run stops within
`concurrency` calls of the cap and never far past it.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass

from tqdm import tqdm

from cloud.costs.prices import ModelPrice
from cloud.llm.answer import parse_label
from cloud.llm.client import AuthenticationFailed, CallFailed, ChatClient
from cloud.llm.prompt import Prompt
from cloud.llm.tokens import TokenCounter

REFERENCE_ANSWER = '{"label": 0}'  # what a well-behaved answer costs, for calls that report no usage


@dataclass(frozen=True)
class LabelledPosting:
    id: str
    text: str
    label: int


@dataclass
class PostingOutcome:
    id: str
    truth: int
    outcome: str
    label: int | None = None
    latency_ms: float | None = None
    attempts: int = 0
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    tokens_from: str | None = None  # "usage" or the TokenCounter's method
    cost_usd: float = 0.0


@dataclass
class RunSummary:
    postings: int
    sent: int
    answered: int
    correct: int
    unparseable: int
    failed: dict[str, int]
    skipped_cost_cap: int
    accuracy: float | None  # correct / sent
    answered_accuracy: float | None  # correct / answered (strict-JSON answers only)
    latency_ms_p50: float | None
    latency_ms_p95: float | None
    cost_usd: float
    tokens_from: dict[str, int]


def classify_postings(
    client: ChatClient,
    prompt: Prompt,
    postings: Sequence[LabelledPosting],
    price: ModelPrice | None,
    counter: TokenCounter | None,
    concurrency: int = 4,
    max_cost_usd: float | None = None,
    progress: str | None = None,
) -> tuple[list[PostingOutcome], RunSummary]:
    """Run every posting (or until the cost cap); a rejected API key raises AuthenticationFailed."""
    outcomes: list[PostingOutcome | None] = [None] * len(postings)
    spent = 0.0
    lock = threading.Lock()
    reserve = _reserve_per_call(prompt, postings, price, counter, client.endpoint.max_tokens)

    def one(index: int) -> PostingOutcome:
        nonlocal spent
        posting = postings[index]
        outcome = _classify_one(client, prompt, posting, price, counter)
        with lock:
            spent += outcome.cost_usd
        return outcome

    pending: dict[Future, int] = {}
    auth_error: AuthenticationFailed | None = None
    next_index = 0
    with (
        ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool,
        tqdm(total=len(postings), desc=progress or "llm", unit="posting", disable=progress is None) as bar,
    ):
        while next_index < len(postings) or pending:
            while auth_error is None and next_index < len(postings) and len(pending) < max(1, concurrency):
                with lock:
                    projected = spent + reserve * (len(pending) + 1)
                if max_cost_usd is not None and projected > max_cost_usd:
                    break
                pending[pool.submit(one, next_index)] = next_index
                next_index += 1
            if not pending:
                break
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                index = pending.pop(future)
                try:
                    outcomes[index] = future.result()
                except AuthenticationFailed as exc:
                    auth_error = auth_error or exc
                bar.update(1)
    if auth_error is not None:
        raise auth_error
    for index, outcome in enumerate(outcomes):
        if outcome is None:
            outcomes[index] = PostingOutcome(
                id=postings[index].id, truth=postings[index].label, outcome="skipped:cost_cap"
            )
    finished = [o for o in outcomes if o is not None]
    return finished, summarise(finished)


def _classify_one(
    client: ChatClient, prompt: Prompt, posting: LabelledPosting, price: ModelPrice | None, counter: TokenCounter | None
) -> PostingOutcome:
    messages = prompt.messages(posting.text)
    outcome = PostingOutcome(id=posting.id, truth=posting.label, outcome="")
    began = time.perf_counter()
    try:
        completion = client.complete(messages)
    except CallFailed as exc:
        outcome.outcome = f"failed:{exc.reason}"
        outcome.latency_ms = (time.perf_counter() - began) * 1000
        return outcome
    outcome.latency_ms = completion.latency_ms
    outcome.attempts = completion.attempts
    outcome.label = parse_label(completion.content)
    outcome.outcome = "ok" if outcome.label is not None else "unparseable"
    if completion.usage is not None:
        outcome.prompt_tokens = completion.usage.prompt_tokens
        outcome.completion_tokens = completion.usage.completion_tokens
        outcome.tokens_from = "usage"
    elif counter is not None:
        counted = counter.count(messages, completion.content)
        outcome.prompt_tokens, outcome.completion_tokens = counted.prompt_tokens, counted.completion_tokens
        outcome.tokens_from = counted.method
    if price is not None and outcome.prompt_tokens is not None:
        outcome.cost_usd = price.call_usd(outcome.prompt_tokens, outcome.completion_tokens or 0)
    return outcome


def _reserve_per_call(
    prompt: Prompt,
    postings: Sequence[LabelledPosting],
    price: ModelPrice | None,
    counter: TokenCounter | None,
    max_answer_tokens: int,
) -> float:
    """What one call in flight may cost: the longest posting's prompt at the full answer budget."""
    if price is None or counter is None or not postings:
        return 0.0
    longest = max(postings, key=lambda p: len(p.text))
    counted = counter.count(prompt.messages(longest.text), REFERENCE_ANSWER)
    return price.call_usd(counted.prompt_tokens, max_answer_tokens)


def summarise(outcomes: Sequence[PostingOutcome]) -> RunSummary:
    sent = [o for o in outcomes if not o.outcome.startswith("skipped")]
    answered = [o for o in sent if o.outcome == "ok"]
    correct = sum(o.label == o.truth for o in answered)
    latencies = sorted(o.latency_ms for o in sent if o.latency_ms is not None and not o.outcome.startswith("failed"))
    return RunSummary(
        postings=len(outcomes),
        sent=len(sent),
        answered=len(answered),
        correct=correct,
        unparseable=sum(o.outcome == "unparseable" for o in sent),
        failed=dict(Counter(o.outcome.split(":", 1)[1] for o in sent if o.outcome.startswith("failed:"))),
        skipped_cost_cap=len(outcomes) - len(sent),
        accuracy=correct / len(sent) if sent else None,
        answered_accuracy=correct / len(answered) if answered else None,
        latency_ms_p50=statistics.median(latencies) if latencies else None,
        latency_ms_p95=latencies[min(len(latencies) - 1, round(0.95 * (len(latencies) - 1)))] if latencies else None,
        cost_usd=sum(o.cost_usd for o in outcomes),
        tokens_from=dict(Counter(o.tokens_from for o in sent if o.tokens_from)),
    )


def outcome_records(outcomes: Sequence[PostingOutcome]) -> list[dict]:
    return [asdict(o) for o in outcomes]
