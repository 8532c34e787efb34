"""`careeredge-cloud export`: Model A/B HF directory -> INT8 device bundle (dvc stage `export`)."""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from cloud.cli_options import params_option, splits_option
from cloud.export.quantize import DEFAULT_SCHEMES, SCHEMES
from shared.errors import UserError

if TYPE_CHECKING:  # the builder pulls torch; the CLI module must stay cheap to import
    from cloud.export.builder import EvalSet

SPLIT_COLUMNS = ("id", "text", "label")


@click.command("export")
@click.option(
    "--model-dir",
    type=click.Path(path_type=Path),
    default=Path("artifacts/model_a_v1/hf"),
    show_default=True,
    help="Trained HF classifier (config.json, model.safetensors, tokenizer.json).",
)
@splits_option(help="Directory with train.csv (hashed) and test.csv (parity gate).")
@click.option("--name", default="model_a_v1", show_default=True, help="Bundle name.")
@click.option("--version", "bundle_version", default="1", show_default=True, help="Bundle version.")
@click.option(
    "--out", type=click.Path(path_type=Path), default=None, help="Bundle directory [default: artifacts/bundles/NAME]."
)
@click.option(
    "--work-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Where the FP32 ONNX graphs are kept for benchmarks [default: artifacts/export/NAME].",
)
@params_option(help="Pipeline params (model.max_length, model.base).")
@click.option(
    "--scheme",
    "schemes",
    multiple=True,
    type=click.Choice(SCHEMES),
    help="INT8 schemes to try in order; the first that passes the parity gate ships [default: "
    "per_token, blockwise, dynamic; see cloud/export/quantize.py].",
)
@click.option("--per-channel/--per-tensor", default=True, show_default=True, help="INT8 weight scales (dynamic).")
@click.option("--reduce-range", is_flag=True, help="7-bit weights (only for non-VNNI x86 if parity fails).")
@click.option(
    "--min-agreement",
    type=click.FloatRange(0, 1),
    default=0.99,
    show_default=True,
    help="Parity gate: INT8/FP32 agreement on the test split. Lowering it is recorded in the manifest.",
)
@click.option(
    "--max-accuracy-drop",
    type=click.FloatRange(0, 100),
    default=0.5,
    show_default=True,
    help="Parity gate: largest allowed accuracy drop, in points.",
)
@click.option(
    "--prune/--no-prune",
    default=True,
    show_default=True,
    help="Drop unreachable embedding rows ([unusedN] wordpieces, positions past max_length).",
)
@click.option(
    "--target",
    type=click.Choice(["onnx", "hailo"]),
    default="onnx",
    show_default=True,
    help="onnx: the INT8 device bundle. hailo: the Dataflow Compiler kit (encoder cut, calibration set, "
    ".alls, steps) in --out [default: artifacts/hailo/NAME] (cloud/export/hailo.py).",
)
@click.option(
    "--bundle",
    "hailo_bundle",
    type=click.Path(path_type=Path),
    default=None,
    help="--target hailo: also write BUNDLE_hailo/, this bundle with the host weights (and --hef).",
)
@click.option(
    "--hef",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="--target hailo: the HEF the Dataflow Compiler built, to add to BUNDLE_hailo/.",
)
def export_command(
    model_dir: Path,
    splits: Path,
    name: str,
    bundle_version: str,
    out: Path | None,
    work_dir: Path | None,
    params_path: Path,
    per_channel: bool,
    reduce_range: bool,
    min_agreement: float,
    max_accuracy_drop: float,
    prune: bool,
    schemes: tuple[str, ...],
    target: str,
    hailo_bundle: Path | None,
    hef: Path | None,
) -> None:
    """Export a trained classifier to an INT8 ONNX bundle, gated by an INT8-vs-FP32 parity check
    (and, for a model distilled from Model A, by A's own test accuracy); or, with --target hailo, to
    the kit Hailo's Dataflow Compiler needs."""
    from cloud.export.builder import export_first_passing
    from cloud.params import load_params
    from shared.files import sha256_file

    if not (model_dir / "config.json").is_file():
        raise UserError(f"no trained model at {model_dir} (run `careeredge-cloud train-a` first)")
    params = load_params(params_path)
    model_params = params.get("model", {})
    test_csv, train_csv = splits / "test.csv", splits / "train.csv"
    for path in (test_csv, train_csv):
        if not path.is_file():
            raise UserError(f"split file not found: {path} (run `careeredge-cloud prepare` first)")
    eval_set = read_split(test_csv)
    if target == "hailo":
        preprocessing = str(
            _train_log(model_dir).get("config", {}).get("preprocessing", model_params.get("preprocessing", "clean"))
        )
        export_for_hailo(
            model_dir,
            out or Path("artifacts/hailo") / name,
            read_split(train_csv),
            eval_set,
            preprocessing,
            hailo_bundle,
            hef,
        )
        return
    schemes = schemes or DEFAULT_SCHEMES
    val_set = read_split(splits / "val.csv") if "mixed" in schemes else None  # what mixed chooses on
    out = out or Path("artifacts/bundles") / name
    work_dir = work_dir or Path("artifacts/export") / name

    # The model's own train log says how it was trained; params.yaml is the fallback for foreign models.
    log = _train_log(model_dir)
    trained, distillation = log.get("config", {}), checked_distillation(log, test_csv)
    base_model = distilled_name(distillation, str(model_params.get("base", "")))
    echo = lambda message: click.echo(f"export: {message}", err=True)  # noqa: E731
    result = export_first_passing(
        schemes,
        model_dir,
        out,
        eval_set,
        name=name,
        version=bundle_version,
        max_length=int(trained.get("max_length", model_params.get("max_length", 256))),
        work_dir=work_dir,
        preprocessing=str(trained.get("preprocessing", model_params.get("preprocessing", "clean"))),
        windows=int(trained.get("windows", 1)),
        base_model=base_model,
        training_data_hash=sha256_file(train_csv),
        per_channel=per_channel,
        reduce_range=reduce_range,
        prune=prune,
        min_agreement=min_agreement,
        max_accuracy_drop_pt=max_accuracy_drop,
        distillation=distillation,
        val_set=val_set,
        progress=echo,
        on_fallback=echo,
        session=export_session(params),
    )
    metrics, report = result.manifest["metrics"], result.parity
    click.echo(
        f"bundle {result.bundle_dir}: INT8 {metrics['size_int8_mb']:.1f} MB "
        f"({metrics['size_int8_mb'] / metrics['size_fp32_mb']:.0%} of FP32 {metrics['size_fp32_mb']:.1f} MB); "
        f"parity on {report.examples} test postings: agreement {report.agreement:.2%}, "
        f"accuracy {report.accuracy_fp32:.2%} -> {report.accuracy_int8:.2%} "
        f"(drop {report.accuracy_drop_pt:+.2f} pt)"
        + (f"; vs the teacher {distillation['teacher']} {distillation['teacher_accuracy']:.2%}" if distillation else "")
    )


def export_session(params: dict) -> dict:
    """params.yaml `export.session`: the ONNX Runtime settings the bundle's manifest carries to the device."""
    section = params.get("export") or {}
    if not isinstance(section, dict):
        raise UserError("params.yaml: 'export' must be a mapping")
    return section.get("session") or {}


def export_for_hailo(model_dir, out, train_set, eval_set, preprocessing, bundle, hef) -> None:
    from cloud.export.hailo import export_hailo

    report = export_hailo(
        model_dir,
        out,
        train_set.texts,
        eval_set.texts,
        eval_set.labels,
        preprocessing,
        bundle_dir=bundle,
        hef=hef,
        progress=lambda message: click.echo(f"export: {message}", err=True),
    )
    click.echo(
        f"hailo kit {out}: cut at {report['cut']['sequence_length']} tokens, max |logit - HF| "
        f"{report['max_abs_logit_diff_vs_hf']:.2e}, test accuracy at 128 tokens "
        f"{report['accuracy']['test_2025_at_128_tokens']:.2%}; next: {out}/COMPILE.md"
        + (f"; bundle {report['bundle']}" if "bundle" in report else "")
    )


def checked_distillation(log: dict, test_csv: Path) -> dict | None:
    """A distilled model's record of its teacher (train_log.json "distillation"), after checking that
    `test_csv` is the split the teacher's accuracy in it was measured on: the export's teacher floor
    compares against that figure. None for a model that was not distilled."""
    from shared.files import sha256_file

    distillation = log.get("distillation")
    if distillation and distillation.get("test_split_sha256") != sha256_file(test_csv):
        command = "distill-b" if distillation.get("init") else "distill-a"
        raise UserError(
            f"{test_csv} is not the test split {distillation.get('teacher')}'s accuracy was measured "
            f"on when this model was distilled; re-run `careeredge-cloud {command}`"
        )
    return distillation


def distilled_name(distillation: dict | None, base_model: str) -> str:
    """The bundle's `base_model`: "model_b_v3, distilled to 2 blocks (model_a_v1 (from minilm))"."""
    if not distillation:
        return base_model
    return f"{distillation['teacher']}, distilled to {len(distillation['layers'])} blocks ({base_model})"


def _train_log(model_dir: Path) -> dict:
    import json

    log = model_dir.parent / "train_log.json"
    return json.loads(log.read_text(encoding="utf-8")) if log.is_file() else {}


def read_split(path: Path) -> EvalSet:
    from cloud.export.builder import EvalSet

    csv.field_size_limit(sys.maxsize)
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in SPLIT_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise UserError(f"{path} lacks column(s) {', '.join(missing)}")
        rows = list(reader)
    if not rows:
        raise UserError(f"{path} has no rows: the parity check needs test postings")
    try:
        labels = [int(r["label"]) for r in rows]
    except ValueError as exc:
        raise UserError(f"{path}: non-integer label ({exc})") from None
    return EvalSet(texts=[r["text"] for r in rows], labels=labels, ids=[r["id"] for r in rows])
