"""Client for Bright Data's Web Scraper API, LinkedIn job listings dataset (`gd_lpfll7v5hcqtkxl6l`).

The flow (as used by luminati-io/LinkedIn-Scraper):
1. `POST {base}/datasets/v3/trigger?dataset_id=...&include_errors=true[&type=discover_new&discover_by=keyword|url]`
   with `Authorization: Bearer <token>` and a JSON list of inputs -> `{"snapshot_id": ...}`;
2. poll `GET {base}/datasets/v3/progress/{snapshot_id}` until `status` is `ready` or `failed`;
3. `GET {base}/datasets/v3/snapshot/{snapshot_id}?format=json` -> the records.

The token comes from the environment only (`BRIGHTDATA_API_TOKEN`), never from a file in the repo.
429 and 5xx answers (and dropped connections) are retried by urllib3's `Retry`, mounted on the
session: exponential backoff, or the server's `Retry-After` (seconds or an HTTP date) when it gives
one; polling stops at a time limit. The trigger (a POST) is retried too: if a failed trigger did start
a collection, that snapshot is never downloaded (only the snapshot id of the answered trigger is), so
a retry can cost a second collection but never duplicates data. The snapshot body is saved byte for
byte, with a `.meta.json` beside it, *before* it is parsed, so a bad week can always be replayed.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import InvalidHeader
from urllib3.util.retry import Retry

from cloud.artifacts import write_json_atomic
from shared.errors import UserError
from shared.files import atomic_write_bytes

DEFAULT_BASE_URL = "https://api.brightdata.com"
LINKEDIN_JOBS_DATASET = "gd_lpfll7v5hcqtkxl6l"
TOKEN_ENV = "BRIGHTDATA_API_TOKEN"
BASE_URL_ENV = "BRIGHTDATA_BASE_URL"
DISCOVERY_MODES = ("keyword", "url")


class BrightDataError(UserError):
    """Anything the API did that the user has to act on (one line, exit 2)."""


class AuthError(BrightDataError):
    pass


class SnapshotFailed(BrightDataError):
    pass


class EmptySnapshot(BrightDataError):
    pass


class PollTimeout(BrightDataError):
    pass


RETRY_STATUSES = frozenset({429, *range(500, 600)})


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5  # total tries per request, the first one included
    backoff_s: float = 1.0  # first wait; doubles each retry
    max_backoff_s: float = 60.0  # the longest wait, a server's Retry-After included

    def retry(self, pause: Callable[[float], None] = time.sleep) -> Retry:
        """This policy as a urllib3 Retry for an HTTPAdapter, waiting through `pause`."""
        retry = _Retry(
            total=self.attempts - 1,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=Retry.DEFAULT_ALLOWED_METHODS | {"POST"},
            backoff_factor=self.backoff_s,
            backoff_max=self.max_backoff_s,  # Retry-After too, in `_Retry.sleep`
            respect_retry_after_header=True,
            raise_on_status=False,  # the last answer comes back, and `_request` turns it into one clear error
        )
        retry.pause = pause
        return retry


class _Retry(Retry):
    """urllib3's Retry with two differences: every retry waits (urllib3 retries the first failure at
    once), doubling from `backoff_factor`; and a wait goes through `pause`, which tests replace to
    record it. A Retry-After of 0 means retry now, a longer one than `backoff_max` waits `backoff_max`,
    and one that cannot be parsed falls back to the backoff."""

    pause: Callable[[float], None] = staticmethod(time.sleep)

    def new(self, **kw) -> _Retry:
        retry = super().new(**kw)
        retry.pause = self.pause
        return retry

    def get_backoff_time(self) -> float:
        # The adapter follows no redirects, so every entry of the history is a failed try.
        retries = len(self.history)
        return min(self.backoff_max, self.backoff_factor * 2 ** (retries - 1)) if retries else 0.0

    def sleep(self, response=None) -> None:
        retry_after = None
        if response is not None and self.respect_retry_after_header:
            try:
                retry_after = self.get_retry_after(response)
            except InvalidHeader:
                pass
        self.pause(self.get_backoff_time() if retry_after is None else min(retry_after, self.backoff_max))


@dataclass
class SnapshotFile:
    snapshot_id: str
    path: Path  # the raw body, exactly as served
    records: list[dict] = field(repr=False)


class BrightDataClient:
    def __init__(
        self,
        token: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        dataset_id: str = LINKEDIN_JOBS_DATASET,
        retry: RetryPolicy = RetryPolicy(),
        poll_interval_s: float = 10.0,
        poll_timeout_s: float = 1800.0,
        request_timeout_s: float = 60.0,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ):
        if not token or not token.strip():
            raise AuthError(f"no Bright Data API token: set {TOKEN_ENV} in the environment")
        self.base_url = base_url.rstrip("/")
        self.dataset_id = dataset_id
        self.retry = retry
        self.poll_interval_s = poll_interval_s
        self.poll_timeout_s = poll_timeout_s
        self.request_timeout_s = request_timeout_s
        self.session = session or requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token.strip()}"
        adapter = HTTPAdapter(max_retries=retry.retry(sleep))
        for scheme in ("http://", "https://"):
            self.session.mount(scheme, adapter)
        self._sleep = sleep
        self._clock = clock

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ, **kwargs) -> BrightDataClient:
        kwargs.setdefault("base_url", env.get(BASE_URL_ENV) or DEFAULT_BASE_URL)
        return cls(env.get(TOKEN_ENV, ""), **kwargs)

    # -- the three API calls ------------------------------------------------------------------

    def trigger(self, inputs: Sequence[dict], discover_by: str | None = None) -> str:
        if not inputs:
            raise BrightDataError("nothing to collect: the input list is empty")
        params = {"dataset_id": self.dataset_id, "include_errors": "true"}
        if discover_by is not None:
            if discover_by not in DISCOVERY_MODES:
                raise BrightDataError(f"discover_by must be one of {DISCOVERY_MODES}, got {discover_by!r}")
            params.update(type="discover_new", discover_by=discover_by)
        response = self._request("POST", "/datasets/v3/trigger", params=params, json=list(inputs))
        snapshot_id = self._json(response).get("snapshot_id")
        if not snapshot_id:
            raise BrightDataError(f"trigger answered without a snapshot_id: {response.text[:200]}")
        return str(snapshot_id)

    def progress(self, snapshot_id: str) -> dict:
        return self._json(self._request("GET", f"/datasets/v3/progress/{snapshot_id}"))

    def wait_until_ready(self, snapshot_id: str, on_status: Callable[[dict], None] | None = None) -> dict:
        deadline = self._clock() + self.poll_timeout_s
        while True:
            status = self.progress(snapshot_id)
            if on_status:
                on_status(status)
            state = str(status.get("status", "")).lower()
            if state == "ready":
                return status
            if state in ("failed", "canceled", "cancelled"):
                reason = status.get("error") or status.get("error_message") or "no reason given"
                raise SnapshotFailed(f"Bright Data snapshot {snapshot_id} {state}: {reason}")
            if self._clock() + self.poll_interval_s > deadline:
                raise PollTimeout(
                    f"snapshot {snapshot_id} still {state or 'unknown'} after "
                    f"{self.poll_timeout_s:.0f}s; re-run later with --snapshot-id {snapshot_id}"
                )
            self._sleep(self.poll_interval_s)

    def download_snapshot(self, snapshot_id: str) -> bytes:
        deadline = self._clock() + self.poll_timeout_s
        while True:
            response = self._request("GET", f"/datasets/v3/snapshot/{snapshot_id}", params={"format": "json"})
            if response.status_code != 202:  # 202 = "snapshot is still building"
                return response.content
            if self._clock() + self.poll_interval_s > deadline:
                raise PollTimeout(f"snapshot {snapshot_id} was still building after {self.poll_timeout_s:.0f}s")
            self._sleep(self.poll_interval_s)

    # -- the whole flow -----------------------------------------------------------------------

    def collect(
        self,
        inputs: Sequence[dict] | None,
        raw_dir: str | Path,
        *,
        discover_by: str | None = None,
        snapshot_id: str | None = None,
        on_status: Callable[[dict], None] | None = None,
    ) -> SnapshotFile:
        """Trigger (unless resuming `snapshot_id`), wait, download, save raw, then parse."""
        snapshot_id = snapshot_id or self.trigger(inputs or [], discover_by)
        final_status = self.wait_until_ready(snapshot_id, on_status)
        body = self.download_snapshot(snapshot_id)
        raw_path = save_raw_snapshot(
            raw_dir,
            snapshot_id,
            body,
            {
                "dataset_id": self.dataset_id,
                "snapshot_id": snapshot_id,
                "discover_by": discover_by,
                "inputs": list(inputs or []),
                "progress": final_status,
                "base_url": self.base_url,
            },
        )
        return SnapshotFile(snapshot_id, raw_path, parse_snapshot(snapshot_id, body))

    # -- plumbing ------------------------------------------------------------------------------

    def _request(self, method: str, path: str, **kwargs) -> requests.Response:
        """One API call; the session's adapter retries it (`RetryPolicy`), this turns the outcome into
        a response or one clear error."""
        try:
            response = self.session.request(method, self.base_url + path, timeout=self.request_timeout_s, **kwargs)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise BrightDataError(
                f"{method} {path} gave up: {type(exc).__name__} talking to {self.base_url}"
                f" (up to {self.retry.attempts} attempts)"
            ) from None
        if response.status_code in (401, 403):
            raise AuthError(
                f"Bright Data rejected the API token (HTTP {response.status_code} on "
                f"{path}): it is expired or invalid; set a fresh {TOKEN_ENV}"
            )
        if response.status_code in RETRY_STATUSES:  # what the retries left: they are spent
            retries = getattr(response.raw, "retries", None)  # the urllib3 Retry that gave up
            attempts = len(retries.history) + 1 if retries is not None else 1
            raise BrightDataError(
                f"{method} {path} still failing after {attempts} attempts (HTTP {response.status_code})"
            )
        if response.status_code >= 400:
            raise BrightDataError(f"{method} {path} failed with HTTP {response.status_code}: {_short(response.text)}")
        return response

    @staticmethod
    def _json(response: requests.Response) -> dict:
        try:
            payload = response.json()
        except ValueError:
            raise BrightDataError(f"expected JSON from {response.url}, got: {_short(response.text)}") from None
        if not isinstance(payload, dict):
            raise BrightDataError(f"expected a JSON object from {response.url}")
        return payload


def _short(text: str, limit: int = 200) -> str:
    return " ".join(text.split())[:limit]


def save_raw_snapshot(raw_dir: str | Path, snapshot_id: str, body: bytes, meta: dict) -> Path:
    """Save the body untouched (atomically) plus a sidecar with where it came from."""
    raw_dir = Path(raw_dir)
    fetched_at = datetime.now(UTC)
    stem = f"brightdata_{fetched_at:%Y%m%dT%H%M%SZ}_{snapshot_id}"
    raw_path = atomic_write_bytes(raw_dir / f"{stem}.json", body)
    write_json_atomic(raw_dir / f"{stem}.meta.json", {**meta, "fetched_at": fetched_at.isoformat(), "bytes": len(body)})
    return raw_path


def parse_snapshot(snapshot_id: str, body: bytes) -> list[dict]:
    """Snapshot body -> records. Accepts a JSON array or NDJSON (what `format=json|ndjson` give)."""
    text = body.decode("utf-8", errors="replace").strip()
    if not text:
        raise EmptySnapshot(f"snapshot {snapshot_id} is empty (0 bytes); nothing was ingested")
    try:
        payload = json.loads(text)
    except json.JSONDecodeError:
        try:
            payload = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError:
            raise BrightDataError(f"snapshot {snapshot_id} is neither JSON nor NDJSON: {_short(text)}") from None
    if isinstance(payload, dict):
        # A "still building"/"empty" status object instead of records.
        raise EmptySnapshot(f"snapshot {snapshot_id} holds no records: {_short(json.dumps(payload))}")
    records = [record for record in payload if isinstance(record, dict)]
    if not records:
        raise EmptySnapshot(f"snapshot {snapshot_id} holds 0 records; nothing was ingested")
    return records
