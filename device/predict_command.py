"""`careeredge predict`: classify postings offline from arguments, a file, a JSONL file or stdin.

Kept light on purpose (cold start <= 1.5 s on a Pi): click and the stdlib at import; numpy,
tokenizers and onnxruntime load only once there is something to predict.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import click

from shared.errors import UserError

JSONL_CHUNK = 256  # postings read per model call group, so a huge JSONL file streams
BAR_WIDTH = 24


@dataclass
class Posting:
    id: str | int | None
    text: str


class InputProblems:
    """Collects one line per bad or altered input; any problem makes the exit status 2."""

    def __init__(self):
        self.count = 0

    def report(self, message: str, kind: str = "Error") -> None:
        self.count += 1
        click.echo(f"{kind}: {message}", err=True)


@click.command("predict")
@click.argument("texts", nargs=-1)
@click.option("--file", "file_path", type=click.Path(path_type=Path), help="A file holding one posting.")
@click.option(
    "--jsonl",
    "jsonl_path",
    type=click.Path(path_type=Path),
    help='One posting per line: {"id": ..., "text": ...} ("-" reads stdin).',
)
@click.option(
    "--model",
    "bundle",
    type=click.Path(path_type=Path),
    default=None,
    help="Model bundle directory [default: the active OTA slot, else [model] bundle in the config].",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per posting on stdout.")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="Inference threads.")
@click.option(
    "--backend",
    default=None,
    help="Inference backend: auto, onnxruntime or hailo [default: config [model] backend, auto].",
)
@click.option(
    "--explain/--no-explain",
    default=True,
    show_default=True,
    help="Human output: show the skill terms that drove each decision (occlusion).",
)
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=None, help="Config file.")
@click.option(
    "--store/--no-store",
    "keep",
    default=True,
    show_default=True,
    help="Record each prediction in the device's SQLite store ([store] path), like the web and TUI.",
)
@click.pass_context
def predict(
    ctx: click.Context,
    texts: tuple[str, ...],
    file_path: Path | None,
    jsonl_path: Path | None,
    bundle: Path | None,
    as_json: bool,
    threads: int | None,
    backend: str | None,
    explain: bool,
    config_path: Path | None,
    keep: bool,
) -> None:
    """Classify job postings as Software Engineering or Data Science, offline.

    TEXT arguments are postings. Without TEXT, --file or --jsonl, a posting is read from stdin.
    Driving terms: each skill keyword the posting mentions is deleted in turn and the drop in the
    predicted class's probability is shown. Bad or altered input (empty, not UTF-8, huge, bad JSONL
    line) is reported on stderr, the rest is still predicted, and the exit status is 2.
    """
    from device.config import load_config
    from device.runtime import load_backend
    from device.sync.slots import resolve_bundle

    config = load_config(config_path)
    model_config = config.model
    problems = InputProblems()
    chunks = _postings(texts, file_path, jsonl_path, problems)
    first = next(chunks, None)
    if first is None:  # every input was bad and already reported: no need to load a model
        ctx.exit(2)
    engine = load_backend(
        bundle or resolve_bundle(config),
        backend=backend or model_config.backend,
        threads=threads or model_config.threads,
        hef=model_config.hef,
    )
    if engine.fallback_reason:  # one line: the answers still come, from the CPU
        click.echo(f"Warning: serving on the CPU: {engine.fallback_reason}", err=True)
    recorder = PredictionRecorder(config, engine.model_name, problems) if keep else None
    try:
        for chunk in itertools.chain([first], chunks):
            for posting, prediction in zip(chunk, engine.predict([p.text for p in chunk])):
                if recorder is not None:
                    recorder.record(posting.text, prediction)
                if as_json:
                    click.echo(json.dumps(prediction.to_json(id=posting.id), ensure_ascii=False))
                else:
                    terms = _driving_terms(engine, posting.text) if explain else None
                    click.echo(render(posting, prediction, terms))
            sys.stdout.flush()
    except BrokenPipeError:  # `careeredge predict --jsonl big.jsonl | head`: the reader left, stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        ctx.exit(1)
    finally:
        if recorder is not None:
            recorder.close()
    if problems.count:
        ctx.exit(2)


class PredictionRecorder:
    """Writes CLI predictions to the store the daemon and TUI share. A store that cannot be opened or
    written (read-only, full disk) is one note on stderr: the prediction itself is never lost from stdout."""

    def __init__(self, config, model_name: str, problems: InputProblems):
        self.model_name, self.problems, self.store = model_name, problems, None
        try:
            from device.store import PredictionStore

            self.store = PredictionStore.from_config(config.store)
        except Exception as exc:  # noqa: BLE001 -- any store failure must not cost the prediction
            problems.report(f"predictions not stored: cannot open {config.store.path}: {exc}", kind="Note")

    def record(self, text: str, prediction) -> None:
        if self.store is None:
            return
        try:
            self.store.insert_prediction(prediction, text, "cli", self.model_name)
        except Exception as exc:  # noqa: BLE001
            self.problems.report(f"prediction not stored: {exc}", kind="Note")
            self.store = None

    def close(self) -> None:
        if self.store is not None:
            self.store.close()


def _postings(texts, file_path, jsonl_path, problems: InputProblems) -> Iterator[list[Posting]]:
    """Chunks of valid postings from every source given; problems are reported as they are found."""
    from device.inputs import prepare_text

    def prepared(raw, source: str, posting_id) -> Posting | None:
        try:
            result = prepare_text(raw, source=source)
        except UserError as exc:
            problems.report(exc.message)
            return None
        for note in result.notes:
            problems.report(note, kind="Note")
        return Posting(posting_id, result.text)

    if not (texts or file_path or jsonl_path):
        if sys.stdin is None or sys.stdin.isatty():
            raise UserError("nothing to classify: pass TEXT, --file PATH, --jsonl PATH or pipe a posting on stdin")
        posting = prepared(sys.stdin.buffer.read(), "stdin", "stdin")
        if posting:
            yield [posting]
        return
    argument_postings = [prepared(t, f"argument {i}", i) for i, t in enumerate(texts, start=1)]
    if file_path is not None:
        argument_postings.append(prepared(_read_bytes(file_path), f"--file {file_path}", str(file_path)))
    valid = [p for p in argument_postings if p is not None]
    if valid:
        yield valid
    if jsonl_path is not None:
        yield from _jsonl_postings(jsonl_path, prepared, problems)


def _jsonl_postings(path: Path, prepared, problems: InputProblems) -> Iterator[list[Posting]]:
    chunk: list[Posting] = []
    for number, line in enumerate(_jsonl_lines(path), start=1):
        if not line.strip():
            continue
        where = f"{path} line {number}"
        try:
            decoded = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            decoded = line.decode("utf-8", errors="replace")
            problems.report(f"{where}: invalid UTF-8 at byte {exc.start}; replaced with U+FFFD", kind="Note")
        try:
            record = json.loads(decoded)
        except json.JSONDecodeError as exc:
            problems.report(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})")
            continue
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            problems.report(f'{where}: expected an object with a "text" string')
            continue
        posting = prepared(record["text"], where, record.get("id", number))
        if posting is not None:
            chunk.append(posting)
        if len(chunk) >= JSONL_CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _jsonl_lines(path: Path) -> Iterator[bytes]:
    if str(path) == "-":
        yield from sys.stdin.buffer
        return
    try:
        with open(path, "rb") as handle:
            yield from handle
    except OSError as exc:
        raise UserError(f"cannot read --jsonl {path}: {exc.strerror or exc}") from None


def _read_bytes(path: Path) -> bytes:
    if str(path) == "-":
        return sys.stdin.buffer.read()
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read --file {path}: {exc.strerror or exc}") from None


def _driving_terms(engine, text: str):
    from device.explain import driving_terms

    return driving_terms(engine, text)


def render(posting: Posting, prediction, terms: list[tuple[str, float]] | None) -> str:
    """Human output: class, probability bar, driving terms, model and latency."""
    p = prediction.confidence
    filled = round(p * BAR_WIDTH)
    bar = "█" * filled + "░" * (BAR_WIDTH - filled)
    lines = [f"[{posting.id}] {prediction.label_name:<20} {bar} {p:6.1%}"]
    if terms is not None:
        if terms:
            shown = ", ".join(f"{name} {score:+.2f}" for name, score in terms)
            lines.append(f"    driving terms (drop in p when removed): {shown}")
        else:
            lines.append("    driving terms: no skill keywords found in the text the model read")
    lines.append(f"    {prediction.model_version} · {prediction.latency_ms:.1f} ms")
    return "\n".join(lines)
