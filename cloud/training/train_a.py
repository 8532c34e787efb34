"""`careeredge-cloud train-a`: fine-tune Model A, the frozen 2025 control of the study."""

from __future__ import annotations

from pathlib import Path

import click

from cloud.artifacts import ensure_writable_dir
from cloud.data.splits import read_split
from cloud.params import load_params
from cloud.training.finetune import FineTuneConfig, fine_tune
from cloud.training.model_io import save_classifier

DESCRIPTION = (
    "Model A is the control: fine-tuned once on the 2025 Kaggle postings and then frozen. "
    "Model B is retrained weekly on newer postings; comparing them measures drift."
)


@click.command("train-a")
@click.option(
    "--base",
    default=None,
    help="minilm (offline default), a model directory, or a hub id such as distilbert-base-uncased.",
)
@click.option("--splits", type=click.Path(path_type=Path), default=Path("data/processed/splits"))
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("artifacts/model_a_v1"))
@click.option("--name", default="model_a_v1")
@click.option("--params", "params_path", type=click.Path(path_type=Path), default=Path("params.yaml"))
@click.option("--epochs", type=int, default=None, help="Override params.yaml train.epochs.")
@click.option("--max-length", type=int, default=None, help="Override params.yaml model.max_length.")
@click.option("--threads", type=int, default=None, help="torch intra-op threads (default: all cores).")
def train_a_command(base, splits, out_dir, name, params_path, epochs, max_length, threads) -> None:
    """Fine-tune Model A on the 2025 train split, selecting the epoch on the validation split."""
    ensure_writable_dir(out_dir.parent)
    config = FineTuneConfig.from_params(
        load_params(params_path), base=base, epochs=epochs, max_length=max_length, threads=threads
    )
    train_texts, train_labels = read_split(splits / "train.csv")
    val_texts, val_labels = read_split(splits / "val.csv")
    result = fine_tune(train_texts, train_labels, val_texts, val_labels, config)
    save_classifier(result, config, out_dir, name, splits / "train.csv", DESCRIPTION)
    best = result.history[result.best_epoch - 1]
    click.echo(
        f"train-a: best epoch {result.best_epoch}/{config.epochs}, validation accuracy "
        f"{best['val_accuracy']:.3f}, macro-F1 {best['val_macro_f1']:.3f} -> {out_dir}"
    )
