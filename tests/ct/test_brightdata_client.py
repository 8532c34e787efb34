"""The Bright Data client against a real HTTP server on loopback playing the Web Scraper API flow."""

from __future__ import annotations

import json
import socket
import time
from email.utils import formatdate
from pathlib import Path

import pytest
from click.testing import CliRunner

from cloud.cli import main as cloud_cli
from cloud.ingest.brightdata import (
    AuthError,
    BrightDataClient,
    BrightDataError,
    EmptySnapshot,
    PollTimeout,
    RetryPolicy,
    SnapshotFailed,
)
from tests.ct.fake_brightdata import SNAPSHOT_ID, VALID_TOKEN, FakeBrightData, Script

FIXTURES = Path(__file__).parent / "fixtures"
INPUTS = [{"keyword": "data scientist", "location": "London", "country": "GB"}]


def records(name="brightdata_2024_layout.json"):
    return json.loads((FIXTURES / name).read_text("utf-8"))


def client_for(fake: FakeBrightData, token=VALID_TOKEN, **kwargs) -> tuple[BrightDataClient, list[float]]:
    waits: list[float] = []
    kwargs.setdefault("poll_interval_s", 0.5)
    client = BrightDataClient(token, base_url=fake.base_url, sleep=waits.append, **kwargs)
    return client, waits


def test_flow_pending_running_ready_then_snapshot_saved_raw(tmp_path):
    with FakeBrightData(Script(records=records())) as fake:
        client, waits = client_for(fake)
        statuses = []
        snapshot = client.collect(
            INPUTS, tmp_path / "raw", discover_by="keyword", on_status=lambda s: statuses.append(s["status"])
        )
    assert statuses == ["pending", "running", "ready"]
    trigger = fake.calls("trigger")[0]
    assert trigger.method == "POST"
    assert trigger.query == {
        "dataset_id": "gd_lpfll7v5hcqtkxl6l",
        "include_errors": "true",
        "type": "discover_new",
        "discover_by": "keyword",
    }
    assert trigger.body == INPUTS
    assert fake.calls("snapshot")[0].query == {"format": "json"}
    assert waits == [0.5, 0.5]  # two polls before "ready"
    # The raw body is on disk byte for byte, with its provenance beside it.
    assert snapshot.path.read_bytes() == json.dumps(records()).encode()
    meta = json.loads(snapshot.path.with_name(snapshot.path.stem + ".meta.json").read_text())
    assert meta["snapshot_id"] == SNAPSHOT_ID and meta["inputs"] == INPUTS
    assert len(snapshot.records) == 4


def test_collect_by_url_has_no_discovery_params(tmp_path):
    with FakeBrightData(Script(records=records())) as fake:
        client, _ = client_for(fake)
        client.collect([{"url": "https://www.linkedin.com/jobs/view/4100000001"}], tmp_path)
    assert "type" not in fake.calls("trigger")[0].query


def test_429_and_500_are_retried_with_backoff(tmp_path):
    script = Script(records=records(), faults={"trigger": [429, 429], "progress": [500, 503], "snapshot": [502]})
    with FakeBrightData(script) as fake:
        client, waits = client_for(fake, retry=RetryPolicy(attempts=4, backoff_s=1.0), poll_interval_s=0.25)
        snapshot = client.collect(INPUTS, tmp_path)
    assert [r.status for r in fake.calls("trigger")] == [429, 429, 200]
    assert [r.status for r in fake.calls("progress")][:3] == [500, 503, 200]
    assert [r.status for r in fake.calls("snapshot")] == [502, 200]
    # 429 carries Retry-After: 0 (honoured); 5xx back off 1 s, then 2 s (doubling).
    assert waits[:2] == [0.0, 0.0]
    assert waits[2:4] == [1.0, 2.0]
    assert len(snapshot.records) == 4


@pytest.mark.parametrize(
    ("retry_after", "expected_wait"),
    [
        (lambda: formatdate(time.time() + 30, usegmt=True), (28.0, 30.0)),  # an HTTP date: 30 s from now
        (lambda: "7", (7.0, 7.0)),
        (lambda: "3600", (60.0, 60.0)),  # capped at the policy's longest wait
        (lambda: "soon", (1.0, 1.0)),  # unreadable: the policy's own first backoff
    ],
)
def test_429_waits_as_long_as_retry_after_says(tmp_path, retry_after, expected_wait):
    script = Script(records=records(), faults={"trigger": [429]}, retry_after=retry_after())
    with FakeBrightData(script) as fake:
        client, waits = client_for(fake, retry=RetryPolicy(attempts=2, backoff_s=1.0, max_backoff_s=60.0))
        client.collect(INPUTS, tmp_path)
    assert [r.status for r in fake.calls("trigger")] == [429, 200]
    assert expected_wait[0] <= waits[0] <= expected_wait[1]


def test_persistent_5xx_gives_up_with_a_clear_error(tmp_path):
    with FakeBrightData(Script(faults={"trigger": [500] * 5})) as fake:
        client, _ = client_for(fake, retry=RetryPolicy(attempts=3))
        with pytest.raises(BrightDataError, match="still failing after 3 attempts"):
            client.collect(INPUTS, tmp_path)
    assert len(fake.calls("trigger")) == 3


def test_a_refused_connection_is_retried_then_one_clear_error():
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    waits: list[float] = []
    client = BrightDataClient(
        VALID_TOKEN, base_url=f"http://127.0.0.1:{port}", retry=RetryPolicy(attempts=3), sleep=waits.append
    )
    with pytest.raises(BrightDataError, match="gave up: ConnectionError talking to http://127.0.0.1"):
        client.trigger(INPUTS)
    assert waits == [1.0, 2.0]  # three tries, the same backoff as for a 5xx


@pytest.mark.parametrize("token", ["expired-token", "  "])
def test_expired_or_invalid_token(tmp_path, token):
    with FakeBrightData() as fake:
        if not token.strip():
            with pytest.raises(AuthError, match="BRIGHTDATA_API_TOKEN"):
                client_for(fake, token=token)
            return
        client, _ = client_for(fake, token=token)
        with pytest.raises(AuthError, match="expired or invalid"):
            client.collect(INPUTS, tmp_path)
    assert len(fake.calls("trigger")) == 1  # auth failures are not retried
    assert not list(tmp_path.iterdir())


def test_failed_snapshot(tmp_path):
    with FakeBrightData(Script(statuses=["running", "failed"])) as fake:
        client, _ = client_for(fake)
        with pytest.raises(SnapshotFailed, match="blocked"):
            client.collect(INPUTS, tmp_path)
    assert not fake.calls("snapshot")


def test_empty_snapshot_is_saved_raw_but_refused(tmp_path):
    with FakeBrightData(Script(snapshot_body=b"[]")) as fake:
        client, _ = client_for(fake)
        with pytest.raises(EmptySnapshot, match="0 records"):
            client.collect(INPUTS, tmp_path)
    saved = [p for p in tmp_path.iterdir() if not p.name.endswith(".meta.json")]
    assert [p.read_bytes() for p in saved] == [b"[]"]


def test_snapshot_still_building_is_waited_for(tmp_path):
    with FakeBrightData(Script(records=records(), building_first=2)) as fake:
        client, _ = client_for(fake)
        snapshot = client.collect(INPUTS, tmp_path)
    assert [r.status for r in fake.calls("snapshot")] == [202, 202, 200]
    assert len(snapshot.records) == 4


def test_polling_stops_at_the_time_limit(tmp_path):
    now = [0.0]

    def fake_sleep(seconds):
        now[0] += seconds

    with FakeBrightData(Script(statuses=["running"])) as fake:
        client = BrightDataClient(
            VALID_TOKEN,
            base_url=fake.base_url,
            poll_interval_s=10,
            poll_timeout_s=60,
            sleep=fake_sleep,
            clock=lambda: now[0],
        )
        with pytest.raises(PollTimeout, match=f"--snapshot-id {SNAPSHOT_ID}"):
            client.collect(INPUTS, tmp_path)
    assert 5 <= len(fake.calls("progress")) <= 7


# -- through the CLI: token from the environment, exit 2 with one line, no manifest on failure ------


def run_ingest(tmp_path, fake, token=VALID_TOKEN, extra=()):
    inputs = tmp_path / "inputs.json"
    inputs.write_text(json.dumps(INPUTS))
    env = {"BRIGHTDATA_API_TOKEN": token, "BRIGHTDATA_BASE_URL": fake.base_url}
    return CliRunner().invoke(
        cloud_cli,
        [
            "ingest",
            "--out",
            str(tmp_path / "ingest"),
            "--brightdata-inputs",
            str(inputs),
            "--discover-by",
            "keyword",
            "--poll-interval",
            "0.01",
            *extra,
        ],
        env=env,
    )


def test_cli_ingest_then_normalize(tmp_path):
    with FakeBrightData(
        Script(records=records() + records("brightdata_2025_layout.json"), faults={"progress": [429]})
    ) as fake:
        result = run_ingest(tmp_path, fake)
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "ingest" / "manifest.json").read_text())
    assert manifest["batches"][0]["origin"] == f"brightdata:{SNAPSHOT_ID}"
    assert manifest["batches"][0]["records"] == 8
    result = CliRunner().invoke(
        cloud_cli, ["normalize", "--ingest-dir", str(tmp_path / "ingest"), "--out", str(tmp_path / "normalized")]
    )
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "normalized" / "report.json").read_text())
    assert report["records_seen"] == 8 and report["kept"] + report["quarantined"] == 8


def test_cli_expired_token_exits_2_and_leaves_no_manifest(tmp_path):
    (tmp_path / "ingest").mkdir()
    (tmp_path / "ingest" / "manifest.json").write_text('{"batches": []}')  # last week's
    with FakeBrightData() as fake:
        result = run_ingest(tmp_path, fake, token="expired")
    assert result.exit_code == 2
    assert "expired or invalid" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "ingest" / "manifest.json").exists()


def test_cli_empty_snapshot_exits_2(tmp_path):
    with FakeBrightData(Script(snapshot_body=b"")) as fake:
        result = run_ingest(tmp_path, fake)
    assert result.exit_code == 2 and "empty" in result.output
    assert not (tmp_path / "ingest" / "manifest.json").exists()


def test_cli_without_token_names_the_variable(tmp_path):
    with FakeBrightData() as fake:
        result = run_ingest(tmp_path, fake, token="")
    assert result.exit_code == 2 and "BRIGHTDATA_API_TOKEN" in result.output
    assert not fake.log


def test_cli_resume_by_snapshot_id_does_not_trigger_again(tmp_path):
    with FakeBrightData(Script(records=records(), statuses=["ready"])) as fake:
        result = CliRunner().invoke(
            cloud_cli,
            ["ingest", "--out", str(tmp_path / "ingest"), "--snapshot-id", SNAPSHOT_ID, "--poll-interval", "0.01"],
            env={"BRIGHTDATA_API_TOKEN": VALID_TOKEN, "BRIGHTDATA_BASE_URL": fake.base_url},
        )
    assert result.exit_code == 0, result.output
    assert not fake.calls("trigger") and len(fake.calls("snapshot")) == 1
