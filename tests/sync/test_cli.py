"""`careeredge-cloud keygen` / `publish` and `careeredge sync` from the command line."""

from __future__ import annotations

import json

from click.testing import CliRunner

from cloud.cli import main as cloud_cli
from device.cli import main as device_cli
from tests.support.mosquitto import free_loopback_port


def test_keygen_then_publish_twice_increments_the_sequence(broker, tmp_path, tiny_bundle):
    runner = CliRunner()
    private, public = tmp_path / "k.pem", tmp_path / "k.pub.pem"
    result = runner.invoke(cloud_cli, ["keygen", "--private", str(private), "--public", str(public)])
    assert result.exit_code == 0 and result.output.startswith("key id ")
    assert oct(private.stat().st_mode & 0o777) == "0o600"
    again = runner.invoke(cloud_cli, ["keygen", "--private", str(private), "--public", str(public)])
    assert again.exit_code == 2 and "exists" in again.output

    args = [
        "publish",
        str(tiny_bundle),
        "--channel",
        "stable",
        "--key",
        str(private),
        "--broker-port",
        str(broker.port),
        "--chunk-size",
        "262144",
    ]
    first = runner.invoke(cloud_cli, args)
    assert first.exit_code == 0, first.output
    second = runner.invoke(cloud_cli, args)
    assert second.exit_code == 0, second.output
    manifests = [json.loads(r.output[r.output.index("{") :]) for r in (first, second)]
    assert [m["sequence"] for m in manifests] == [1, 2]
    assert manifests[0]["sha256"] == manifests[1]["sha256"]  # deterministic packing
    replay = runner.invoke(cloud_cli, [*args, "--sequence", "2"])
    assert replay.exit_code == 2 and "not newer" in replay.output


def test_publish_errors_are_one_line_exit_2(tmp_path, tiny_bundle, keys):
    runner = CliRunner()
    cases = [
        (["--key", str(tmp_path / "missing.pem")], "cannot read key file"),
        (["--key", str(keys["public_path"])], "not a PEM"),
        (["--key", str(keys["private_path"]), "--channel", "sta/ble"], "channel"),
        (["--key", str(keys["private_path"]), "--broker-port", str(free_loopback_port())], "cannot reach MQTT broker"),
    ]
    for extra, message in cases:
        result = runner.invoke(cloud_cli, ["publish", str(tiny_bundle), *extra])
        assert result.exit_code == 2, result.output
        assert message in result.output and "Traceback" not in result.output
    missing = runner.invoke(cloud_cli, ["publish", str(tmp_path / "nope"), "--key", str(keys["private_path"])])
    assert missing.exit_code == 2 and "not found" in missing.output


def test_sync_command_uploads_for_a_while_and_exits_cleanly(broker, tmp_path):
    from tests.sync.conftest import fill_store
    from tests.sync.fleet import start_collector, wait_until

    fill_store(tmp_path / "device.db", 20)
    collector, storage = start_collector(broker, tmp_path / "cloud.db")
    config = tmp_path / "device.toml"
    config.write_text(
        f'[store]\npath = "{tmp_path / "device.db"}"\n[sync]\ndevice_id = "pi-cli"\n'
        f'broker_port = {broker.port}\nmodels_dir = "{tmp_path / "models"}"\n'
    )
    result = CliRunner().invoke(device_cli, ["sync", "--config", str(config), "--duration", "2"])
    assert result.exit_code == 0, result.output
    wait_until(lambda: storage.prediction_count() == 20, 5, "20 rows at the collector")
    collector.stop()
    state = json.loads((tmp_path / "models" / "sync_state.json").read_text())
    assert state["acked_rows"] == 20 and state["buffer_rows"] == 0 and state["running"] is False
