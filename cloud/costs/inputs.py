"""Where each input of the cost model comes from: `deployment.yaml` (dated sources and assumptions),
params.yaml (the knobs people vary: engineer hours and rate), and the files the benches and the pipeline write
(measured). A missing or malformed entry is a one-line error naming the file and the key."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from cloud.artifacts import read_json
from cloud.costs.model import KINDS, Input
from shared.errors import UserError

DEFAULT_DEPLOYMENT = Path(__file__).resolve().parent / "deployment.yaml"
PARAM_INPUTS = {  # params.yaml report_slm_llm key -> unit (all stated assumptions)
    "engineer_hours_per_month": "hours per month",
    "engineer_usd_per_hour": "USD per hour",
    "llm_engineer_hours_per_month": "hours per month",
}


def load_deployment(path: Path = DEFAULT_DEPLOYMENT) -> dict[str, Input]:
    """Flatten deployment.yaml into `section.name` -> Input; every entry needs value, unit, kind, source."""
    try:
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"{path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise UserError(f"{path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    inputs: dict[str, Input] = {}
    _collect(path, document or {}, "", inputs)
    return inputs


def _collect(path: Path, node: dict, prefix: str, inputs: dict[str, Input]) -> None:
    for key, value in node.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and "value" not in value:
            _collect(path, value, f"{name}.", inputs)
            continue
        if not isinstance(value, dict):
            raise UserError(f"{path}: {name}: expected value, unit, kind and source")
        missing = [field for field in ("value", "unit", "kind", "source") if value.get(field) in (None, "")]
        if missing:
            raise UserError(f"{path}: {name}: missing field '{missing[0]}'")
        if value["kind"] not in KINDS or isinstance(value["value"], bool):
            raise UserError(f"{path}: {name}: kind must be one of {', '.join(KINDS)} and value a number")
        try:
            number = float(value["value"])
        except (TypeError, ValueError):
            raise UserError(f"{path}: {name}: value {value['value']!r} is not a number") from None
        inputs[name] = Input(name, number, str(value["unit"]), value["kind"], str(value["source"]))


def params_inputs(settings: dict, params_path: Path) -> dict[str, Input]:
    inputs = {}
    for key, unit in PARAM_INPUTS.items():
        if not isinstance(settings.get(key), (int, float)) or isinstance(settings.get(key), bool):
            raise UserError(f"{params_path}: report_slm_llm.{key} must be a number")
        inputs[key] = Input(key, float(settings[key]), unit, "assumed", f"{params_path}: report_slm_llm.{key}")
    return inputs


def bench_inputs(inference_json: Path, daemon_json: Path) -> tuple[dict[str, Input], dict]:
    """Time per posting (INT8, one posting per call, end to end) and the daemon's throughput under load."""
    inference = read_json(inference_json, "run: python scripts/bench_inference.py --json " + str(inference_json))
    daemon = read_json(daemon_json, "run: python scripts/bench_daemon.py --json " + str(daemon_json))
    try:
        p50_ms = float(inference["ort_int8_p50_ms"])
        throughput = float(daemon["throughput_per_s"])
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"bench file without the expected figure {exc}: {inference_json}, {daemon_json}") from None
    load = inference.get("load_average_1m", ["?", "?"])
    inputs = {
        "seconds_per_prediction": Input(
            "seconds_per_prediction",
            p50_ms / 1000,
            "s per posting",
            "measured",
            f"{inference_json}: ort_int8_p50_ms = {p50_ms} ({inference.get('model')}, one posting per call, "
            f"{inference.get('threads')} threads, load {load[0]} -> {load[-1]})",
        ),
        "daemon_predictions_per_second": Input(
            "daemon_predictions_per_second",
            throughput,
            "predictions per s",
            "measured",
            f"{daemon_json}: throughput_per_s = {throughput} ({daemon.get('model')}, {daemon.get('clients')} clients, "
            f"{daemon.get('machine')}, load {daemon.get('load_average_1min')})",
        ),
    }
    return inputs, {"inference": inference, "daemon": daemon}


def directory_bytes(paths: list[Path]) -> Input:
    """What one week adds to the DVC remote: the sizes of the week's DVC-tracked outputs."""
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise UserError(f"snapshot path missing: {missing[0]} (run the pipeline first)")
    total = sum(f.stat().st_size for p in paths for f in ([p] if p.is_file() else p.rglob("*")) if f.is_file())
    return Input(
        "snapshot_bytes_per_week",
        float(total),
        "bytes per week",
        "measured",
        "sizes of " + ", ".join(str(p) for p in paths),
    )


def record_bytes(texts: list[str]) -> Input:
    """Mean size of one prediction record on the wire (careeredge.predictions/1, full text), real postings."""
    from shared.mqtt.contract import MAX_TEXT_CHARS

    if not texts:
        raise UserError("no postings to size the monitoring records with")
    sizes = []
    for text in texts:
        record = {
            "uuid": "00000000-0000-4000-8000-000000000000",
            "created_at": "2026-01-01T00:00:00.000Z",
            "source": "web",
            "model_name": "model_a_v1",
            "model_version": "1",
            "text_sha256": "0" * 64,
            "text": text[:MAX_TEXT_CHARS],
            "snippet": " ".join(text.split())[:120],
            "label": 1,
            "label_name": "Data Science",
            "probabilities": [0.123456, 0.876544],
            "latency_ms": 12.345,
        }
        sizes.append(len(json.dumps(record, ensure_ascii=False).encode("utf-8")))
    mean = sum(sizes) / len(sizes)
    return Input(
        "monitoring_bytes_per_prediction",
        mean,
        "bytes per prediction",
        "measured",
        f"mean size of a careeredge.predictions/1 record carrying the posting, over {len(sizes)} real postings",
    )
