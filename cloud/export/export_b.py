"""`careeredge-cloud export-b`: a weekly Model B (or its device student) to an INT8 bundle.

The same export as Model A's (`careeredge-cloud export`: ONNX, INT8, parity gate, manifest), with what
is particular to B: the bundle is named after B whichever model ships; B's device student (distill-b's
output) is tried first and B itself ships when no INT8 scheme of the student passes; and the stream's
2026 evaluation split joins the parity gate. train-b calls `export_b` too, unless `--no-export`.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

from cloud.artifacts import MODEL_B_DIR, read_json
from cloud.cli_options import normalized_option, params_option, splits_option
from cloud.export.command import export_session
from cloud.export.quantize import DEFAULT_SCHEMES, SCHEMES
from cloud.params import load_params
from cloud.training.model_io import recorded_config
from cloud.training.stream_split import load_stream
from shared.errors import UserError


def export_b(
    model_dir: Path,
    bundle_dir: Path,
    splits: Path,
    max_length: int,
    version_number: int,
    base_model: str,
    stream,
    schemes=DEFAULT_SCHEMES,
    export=None,
    student: Path | None = None,
    session: dict | None = None,
) -> None:
    """Export through the edge export code (INT8 + parity gate, see below), named like
    `careeredge-cloud export` names Model A's bundle (name = the model directory's name). The gate is
    never lowered: the schemes are tried in order and the first that passes ships (see
    `cloud.export.builder.export_first_passing`).

    `student` (distill-b's output for this B) is tried first, under B's name: the device then pays for
    B what it pays for A, and the export also holds the INT8 student to B's 2025 test accuracy. When no
    scheme of the student passes, B itself ships: slower on the device, but the week's B still
    reaches it. The manifest's `base_model` says which one did.

    `stream` (`split_stream`'s output) lends its 2026 evaluation split to the parity gate, beside the 2025
    test split (`builder.gate_postings`): with the 93 test postings alone, 99 % agreement and 0.5 pt allow
    no flip, and whether a week's B ships would turn on one borderline posting. The
    split's labels only measure what quantization changes (INT8 vs FP32 of one model); no model is chosen
    on them. The teacher floor and the golden set stay on the 2025 test split."""
    from cloud.data.splits import read_split
    from cloud.export.builder import EvalSet, export_first_passing
    from cloud.export.command import checked_distillation, distilled_name
    from cloud.export.parity import ParityError

    test_texts, test_labels = read_split(splits / "test.csv")
    val_set = EvalSet(*read_split(splits / "val.csv")) if "mixed" in schemes else None  # what mixed chooses on
    agreement_set = (
        EvalSet(
            [p.description for p in stream.evaluation],
            list(stream.eval_labels),
            [p.source_id for p in stream.evaluation],
            name="2026 evaluation split",
        )
        if stream.evaluation
        else None
    )
    if agreement_set is None:
        click.echo(
            "export-b: the stream has no 2026 evaluation postings; agreement is checked on the 2025 test split alone",
            err=True,
        )
    log = read_json(model_dir / "train_log.json", "run `careeredge-cloud train-b` first")
    training_hash, preprocessing = log["training_data_sha256"], log["config"].get("preprocessing", "clean")
    windows = int(log["config"].get("windows", 1))
    echo = lambda message: click.echo(f"export-b: {message}", err=True)  # noqa: E731

    def ship(graph: Path, window: int, shipped_as: str, distillation: dict | None = None):
        with tempfile.TemporaryDirectory(prefix="careeredge-export-b-") as work:
            return export_first_passing(
                schemes,
                graph,
                bundle_dir,
                EvalSet(test_texts, test_labels),
                export=export,
                name=model_dir.name,
                version=str(version_number),
                max_length=window,
                work_dir=Path(work),
                base_model=shipped_as,
                training_data_hash=training_hash,
                preprocessing=preprocessing,
                windows=windows,  # the device must read text as B is scored
                distillation=distillation,
                val_set=val_set,
                agreement_set=agreement_set,
                progress=echo,
                on_fallback=echo,
                session=session,
            )

    result, shipped = None, model_dir.name
    if student is not None:
        student_log = read_json(student / "train_log.json", "run `careeredge-cloud distill-b` first")
        distillation = checked_distillation(student_log, splits / "test.csv")
        if not distillation or distillation.get("teacher") != model_dir.name:
            raise UserError(
                f"{student} is not a student of {model_dir.name} (its train_log.json names teacher "
                f"{(distillation or {}).get('teacher')!r}); run `careeredge-cloud distill-b`"
            )
        try:
            result = ship(
                student / "hf",
                int(student_log["config"]["max_length"]),
                distilled_name(distillation, base_model),
                distillation,
            )
            shipped = student.name
        except ParityError as exc:
            echo(f"no INT8 scheme of {student.name} passes the gate ({exc}); exporting {model_dir.name} itself")
    if result is None:
        result = ship(model_dir / "hf", max_length, base_model)
    metrics = result.manifest["metrics"]
    click.echo(
        f"export-b: bundle {result.bundle_dir} ({metrics['quantization']['scheme']} INT8 of {shipped}, "
        f"accuracy on the 2025 test split {metrics.get('accuracy_int8', float('nan')):.3f})"
    )


@click.command("export-b")
@click.option("--model-dir", type=click.Path(path_type=Path), required=True, help="A model_b_vN directory.")
@click.option(
    "--student",
    type=click.Path(path_type=Path),
    default=None,
    help="Its device student (distill-b's output), exported under B's name instead of B itself.",
)
@click.option(
    "--out",
    "bundle_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Bundle directory [default: artifacts/bundles/<model dir name>].",
)
@splits_option()
@normalized_option(help="The normalized stream: its 2026 evaluation split joins the parity gate's agreement check.")
@params_option()
@click.option(
    "--scheme",
    "schemes",
    multiple=True,
    type=click.Choice(SCHEMES),
    help="INT8 schemes to try in order (default: per_token, blockwise, dynamic).",
)
def export_b_command(model_dir, student, bundle_dir, splits, normalized, params_path, schemes) -> None:
    """Export a Model B (or its device student) to an INT8 bundle: the first scheme that passes the
    parity gate ships."""
    match = MODEL_B_DIR.match(model_dir.name)
    if not match:
        raise UserError(f"{model_dir}: expected a model_b_vN directory")
    params = load_params(params_path)
    config = recorded_config(model_dir, "run `careeredge-cloud train-b` first")
    export_b(
        model_dir,
        bundle_dir or Path("artifacts/bundles") / model_dir.name,
        splits,
        int(config.get("max_length") or params.get("model", {}).get("max_length", 256)),
        int(match.group(1)),
        base_model=base_model_name(config, params),
        stream=load_stream(normalized, params, ""),
        schemes=tuple(schemes) or DEFAULT_SCHEMES,
        student=student,
        session=export_session(params),
    )


def base_model_name(config: dict, params: dict) -> str:
    """As train-b names it: "model_a_v1 (from minilm)" for a B initialised from A's hf/ directory."""
    base, encoder = str(config.get("base", "")), str(params.get("model", {}).get("base", ""))
    return f"{Path(base).parent.name} (from {encoder})" if Path(base).name == "hf" else base
