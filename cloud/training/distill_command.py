"""`careeredge-cloud distill-a` / `distill-b`: the device's students of Model A and Model B (`distill.py`).

distill-a distils A on the 2025 train split plus the 2026 pool and holds the student to A's 2025 test
accuracy; distill-b starts from A's student, distils B the same way and adds the 2026 gate against
A's student. Either writes nothing when a gate fails.
"""

from __future__ import annotations

from pathlib import Path

import click

from cloud.artifacts import ensure_writable_dir, latest_model_b
from cloud.cli_options import normalized_option, params_option, splits_option
from cloud.training.distill import DistillConfig, Outcome, distill, gate, stream_gate
from cloud.training.distill_io import read_log, save_student, transfer_texts
from cloud.training.encoder_anatomy import encoder_layers
from cloud.training.model_io import load_classifier
from cloud.training.stream_split import load_stream
from shared.errors import UserError


def _report_line(
    command: str, outcome: Outcome, config: DistillConfig, transfer: list[str], report: dict, out_dir: Path
) -> str:
    best = outcome.history[outcome.best_epoch - 1]
    return (
        f"{command}: {len(encoder_layers(outcome.student))} blocks on {len(transfer)} transfer texts; best epoch "
        f"{outcome.best_epoch}/{config.epochs} (val agreement {best['val_agreement']:.1%}); test accuracy "
        f"{report['student_accuracy']:.2%} vs the teacher's {report['teacher_accuracy']:.2%}, agreement "
        f"{report['test_agreement']:.1%} -> {out_dir}"
    )


_COMMON = [
    splits_option(),
    params_option(),
    click.option("--threads", type=int, default=None, help="torch intra-op threads (default: all cores)."),
]


def _common_options(command):
    for option in reversed(_COMMON):
        command = option(command)
    return command


@click.command("distill-a")
@click.option(
    "--model-a",
    "model_a",
    type=click.Path(path_type=Path),
    default=Path("artifacts/model_a_v1"),
    show_default=True,
    help="The teacher: Model A's directory (hf/ + train_log.json).",
)
@click.option(
    "--normalized",
    type=click.Path(path_type=Path),
    default=None,
    help="Normalized postings dir; its 2026 pseudo-label pool joins the transfer set.",
)
@click.option(
    "--out", "out_dir", type=click.Path(path_type=Path), default=Path("artifacts/model_a_v1_edge"), show_default=True
)
@click.option("--epochs", type=int, default=None, help="Override params.yaml distill.epochs.")
@_common_options
def distill_a_command(
    model_a: Path,
    splits: Path,
    normalized: Path | None,
    out_dir: Path,
    params_path: Path,
    epochs: int | None,
    threads: int | None,
) -> None:
    """Distil Model A into a shallower student for the device, gated on A's 2025 test accuracy."""
    from cloud.data.splits import read_split
    from cloud.params import load_params

    ensure_writable_dir(out_dir.parent)
    params = load_params(params_path)
    config = DistillConfig.from_params(params, epochs=epochs, threads=threads)
    teacher = load_classifier(model_a)
    teacher_config = read_log(model_a)["config"]
    stream = (
        None
        if normalized is None
        else load_stream(normalized, params, ", or leave out --normalized to distil on the 2025 train split alone")
    )
    transfer, counts = transfer_texts(splits, stream)
    val_texts, _ = read_split(splits / "val.csv")
    test_texts, test_labels = read_split(splits / "test.csv")
    outcome = distill(teacher, transfer, val_texts, config)
    report = gate(teacher, outcome.reader, test_texts, test_labels, config.max_accuracy_drop_pt)
    save_student(outcome, model_a, out_dir, out_dir.name, config, teacher_config, counts, report, splits / "test.csv")
    click.echo(_report_line("distill-a", outcome, config, transfer, report, out_dir))


@click.command("distill-b")
@click.option(
    "--model-b",
    "model_b",
    type=click.Path(path_type=Path),
    default=None,
    help="The teacher: a model_b_vN directory [default: the newest under artifacts/].",
)
@click.option(
    "--init",
    "init_dir",
    type=click.Path(path_type=Path),
    default=Path("artifacts/model_a_v1_edge"),
    show_default=True,
    help="The student to start from: the device's Model A (distill-a's output).",
)
@normalized_option(help="Normalized postings dir: its 2026 pool joins the transfer set, its evaluation split gates.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Student directory [default: <model-b>_edge beside it].",
)
@click.option("--epochs", type=int, default=None, help="Override params.yaml distill_b.epochs.")
@_common_options
def distill_b_command(
    model_b: Path | None,
    init_dir: Path,
    normalized: Path,
    out_dir: Path | None,
    splits: Path,
    params_path: Path,
    epochs: int | None,
    threads: int | None,
) -> None:
    """Distil Model B for the device: A's student trained to B's logits, gated on B's 2025 test
    accuracy and on the 2026 evaluation split against A's student."""
    from cloud.data.splits import read_split
    from cloud.params import load_params

    model_b = model_b or latest_model_b(Path("artifacts"))
    out_dir = out_dir or model_b.with_name(f"{model_b.name}_edge")
    init_log = read_log(init_dir)
    if "distillation" not in init_log:
        raise UserError(
            f"{init_dir} is not a distilled student (no distillation record in its train_log.json); "
            "run `careeredge-cloud distill-a` first"
        )
    ensure_writable_dir(out_dir.parent)
    params = load_params(params_path)
    # The student keeps the init's shape: its blocks and its window are A's student's.
    config = DistillConfig.from_params(
        params,
        "distill_b",
        epochs=epochs,
        threads=threads,
        layers=tuple(init_log["distillation"]["layers"]),
        max_length=int(init_log["config"]["max_length"]),
    )
    stream = load_stream(
        normalized, params, "; Model B's student is distilled on the 2026 pool and gated on the 2026 evaluation split"
    )
    transfer, counts = transfer_texts(splits, stream)
    if len(set(stream.eval_labels)) < 2:
        raise UserError("the 2026 evaluation split has fewer than two classes; it cannot gate Model B's student")
    val_texts, _ = read_split(splits / "val.csv")
    test_texts, test_labels = read_split(splits / "test.csv")
    teacher, replaced = load_classifier(model_b), load_classifier(init_dir)
    outcome = distill(teacher, transfer, val_texts, config, init=replaced.model)
    report = gate(teacher, outcome.reader, test_texts, test_labels, config.max_accuracy_drop_pt, model_b.name)
    report.update(
        stream_gate(
            teacher,
            outcome.reader,
            replaced,
            [p.description for p in stream.evaluation],
            stream.eval_labels,
            init_dir.name,
        )
    )
    save_student(
        outcome,
        model_b,
        out_dir,
        out_dir.name,
        config,
        read_log(model_b)["config"],
        counts,
        report,
        splits / "test.csv",
        init=init_dir.name,
    )
    click.echo(_report_line("distill-b", outcome, config, transfer, report, out_dir))
    click.echo(
        f"distill-b: 2026 evaluation split accuracy {report['eval_2026_student_accuracy']:.3f} vs "
        f"{model_b.name}'s {report['eval_2026_teacher_accuracy']:.3f} and {init_dir.name}'s "
        f"{report['eval_2026_replaced_accuracy']:.3f}"
    )
