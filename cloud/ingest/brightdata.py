"""Client for Bright Data's Web Scraper API, LinkedIn job listings dataset (`gd_lpfll7v5hcqtkxl6l`).

The flow (as used by luminati-io/LinkedIn-Scraper):
1. `POST {base}/datasets/v3/trigger?dataset_id=...&include_errors=true[&type=discover_new&discover_by=keyword|url]`
   with `Authorization: Bearer <token>` and a JSON list of inputs -> `{"snapshot_id": ...}`;
2. poll `GET {base}/datasets/v3/progress/{snapshot_id}` until `status` is `ready` or `failed`;
3. `GET {base}/datasets/v3/snapshot/{snapshot_id}?format=json` -> the records.

The token comes from the environment only (`BRIGHTDATA_API_TOKEN`), never from a file in the repo.
429 and 5xx answers (and dropped connections) are retried with exponential backoff, honouring
`Retry-After`; polling stops at a time limit. The snapshot body is saved byte for byte, with a
`.meta.json` beside it, *before* it is parsed, so a bad week can always be replayed.
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


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5  # total tries per request, the first one included
    backoff_s: float = 1.0  # first wait; doubles each retry
    max_backoff_s: float = 60.0

    def wait_before(self, retry_number: int, retry_after: str | None) -> float:
        if retry_after:
            try:
                return min(float(retry_after), self.max_backoff_s)
            except ValueError:
                pass  # an HTTP date: fall back to our own schedule
        return min(self.backoff_s * 2 ** (retry_number - 1), self.max_backoff_s)


@dataclass
class SnapshotFile:
    snapshot_id: str
    path: Path  # the raw body, exactly as served
    records: list[dict] = field(repr=False)


def _retryable(status: int) -> bool:
    return status == 429 or 500 <= status <= 599


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
        url = self.base_url + path
        for attempt in range(1, self.retry.attempts + 1):
            retry_after = None
            try:
                response = self.session.request(method, url, timeout=self.request_timeout_s, **kwargs)
            except (requests.ConnectionError, requests.Timeout) as exc:
                failure = f"{type(exc).__name__} talking to {self.base_url}"
            else:
                if response.status_code in (401, 403):
                    raise AuthError(
                        f"Bright Data rejected the API token (HTTP {response.status_code} on "
                        f"{path}): it is expired or invalid; set a fresh {TOKEN_ENV}"
                    )
                if not _retryable(response.status_code):
                    if response.status_code >= 400:
                        raise BrightDataError(
                            f"{method} {path} failed with HTTP {response.status_code}: {_short(response.text)}"
                        )
                    return response
                failure = f"HTTP {response.status_code}"
                retry_after = response.headers.get("Retry-After")
            if attempt == self.retry.attempts:
                raise BrightDataError(f"{method} {path} still failing after {attempt} attempts ({failure})")
            self._sleep(self.retry.wait_before(attempt, retry_after))
        raise AssertionError("unreachable")

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
