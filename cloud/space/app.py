"""Model A as a Hugging Face Space: a Gradio page and HTTP API over the INT8 bundle, no torch.

It shows what the device's web page shows: the class, both probabilities, the driving terms (occlusion over
skill keywords, `device.explain`) and the career advice (`device.advice`), computed by the device runtime
(`device.runtime.load_backend`: onnxruntime + tokenizers, the bundle's sha256 list checked at load). Every
answer is logged off the request path (`cloud.space.prediction_log`).

API (what `gradio_client` calls): `/classify` with (posting text, profile skills) returns
(label -> probability, the `careeredge predict --json` object plus `driving_terms`, the advice as Markdown).

Run locally: `python -m cloud.space.app` (bundle: $CAREEREDGE_SPACE_BUNDLE, default ./model, else
artifacts/bundles/model_a_v1); `careeredge-cloud space build` assembles the folder the Space runs.
"""

from __future__ import annotations

import html
import os
import sys
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # offline: no telemetry calls

from cloud.space.prediction_log import PredictionLog, log_from_environment, prediction_record, privacy_from_environment
from device.advice import DemandTable, advise
from device.explain import driving_terms
from device.runtime import load_backend
from shared.errors import UserError
from shared.text import clean_text, storable_text

MAX_POSTING_CHARS = 100_000  # the device's limit: beyond it a posting is classified on its head
BUNDLE_CANDIDATES = (Path(__file__).resolve().parents[2] / "model", Path("model"), Path("artifacts/bundles/model_a_v1"))


class SpaceModel:
    """Classify, explain, advise, and log: one call per request."""

    def __init__(self, bundle_dir: str | Path, prediction_log: PredictionLog, privacy: str = "full", threads=None):
        self.backend = load_backend(bundle_dir, threads=threads)
        self.log = prediction_log
        self.privacy = privacy
        self.demand = DemandTable.load()

    @property
    def model_version(self) -> str:
        return self.backend.model_version

    def classify(self, text: str, skills: str = "") -> tuple[dict[str, float], dict, str]:
        text, _ = storable_text(text or "")  # the logged record must be one the collector can store
        text = text.strip()
        if not text:
            raise ValueError("Paste a job posting first: the text is empty.")
        text = text[:MAX_POSTING_CHARS]
        prediction = self.backend.predict([text])[0]
        self.log.submit(prediction_record(text, prediction, self.backend.model_name, self.privacy))
        terms = driving_terms(self.backend, text, top_k=5)
        advice = advise(clean_text(text), prediction.label, prediction.confidence, [skills or ""], table=self.demand)
        probabilities = {self.backend.labels[i]: p for i, p in enumerate(prediction.probabilities)}
        result = {**prediction.to_json(), "driving_terms": [{"term": t, "weight": w} for t, w in terms]}
        return probabilities, result, advice_markdown(advice.lines, terms)


def advice_markdown(lines: list[str], terms: list[tuple[str, float]]) -> str:
    """Advice and driving terms as Markdown; every piece of text is HTML-escaped (profile skills are user input)."""
    parts = []
    if terms:
        parts.append("**Driving terms** (drop in the predicted class's probability without the term):")
        parts.extend(f"- {html.escape(term)}: {weight:+.3f}" for term, weight in terms)
        parts.append("")
    parts.append("**Career advice**")
    parts.extend(f"- {html.escape(line)}" for line in lines)
    return "\n".join(parts)


def build_interface(model: SpaceModel):
    import gradio as gr

    def classify(text: str, skills: str):
        try:
            return model.classify(text, skills)
        except ValueError as exc:
            raise gr.Error(str(exc)) from None

    with gr.Blocks(title="careeredge: Model A") as demo:
        gr.Markdown(
            "# careeredge: Software Engineering or Data Science?\n"
            f"Model A ({html.escape(model.model_version)}, INT8, trained on 2025 postings) reads a job posting "
            "and says which of the two it is, which skills drove that, and what to learn next. "
            "Inputs and probabilities are logged for drift monitoring."
        )
        with gr.Row():
            with gr.Column():
                text = gr.Textbox(label="Job posting", lines=14, placeholder="Paste the description here")
                skills = gr.Textbox(label="Your skills (optional, comma-separated)", placeholder="python, sql")
                button = gr.Button("Classify", variant="primary")
            with gr.Column():
                label = gr.Label(label="Class", num_top_classes=2)
                advice = gr.Markdown()
                details = gr.JSON(label="Prediction")
        button.click(classify, inputs=[text, skills], outputs=[label, details, advice], api_name="classify")
    return demo


def find_bundle(env: dict[str, str]) -> Path:
    if env.get("CAREEREDGE_SPACE_BUNDLE"):
        return Path(env["CAREEREDGE_SPACE_BUNDLE"])
    return next((c for c in BUNDLE_CANDIDATES if (c / "manifest.json").is_file()), BUNDLE_CANDIDATES[0])


def main() -> None:
    env = dict(os.environ)
    try:
        privacy = privacy_from_environment(env)
        prediction_log, destination = log_from_environment(env)
        threads = int(env["CAREEREDGE_SPACE_THREADS"]) if env.get("CAREEREDGE_SPACE_THREADS") else None
        model = SpaceModel(find_bundle(env), prediction_log, privacy, threads)
    except (UserError, ValueError, OSError) as exc:
        message = exc.format_message() if isinstance(exc, UserError) else str(exc)
        print(f"Error: {message}", file=sys.stderr)
        raise SystemExit(2) from None
    print(f"careeredge space: {model.model_version}; prediction log: {destination}", flush=True)
    try:
        build_interface(model).launch(show_error=True)  # host/port: $GRADIO_SERVER_NAME / $GRADIO_SERVER_PORT
    finally:
        prediction_log.close()


if __name__ == "__main__":
    main()
