"""`careeredge-cloud <step>`: one sub-command per pipeline step (dvc.yaml calls these)."""

from __future__ import annotations

import click

from shared.lazy_cli import LazyGroup

COMMANDS = {
    "prepare": "cloud.data.prepare:prepare_command",
    "label": "cloud.data.prepare:label_command",
    "cv-a": "cloud.training.cross_validate:cv_command",
    "train-a": "cloud.training.train_a:train_a_command",
    "evaluate": "cloud.training.evaluate:evaluate_command",
    "distill-a": "cloud.training.distill_command:distill_a_command",
    "distill-b": "cloud.training.distill_command:distill_b_command",
    "export": "cloud.export.command:export_command",
    "ingest": "cloud.ingest.command:ingest_command",
    "normalize": "cloud.ingest.normalize_command:normalize_command",
    "pseudo-label": "cloud.training.pseudo_label:pseudo_label_command",
    "train-b": "cloud.training.train_b:train_b_command",
    "evaluate-b": "cloud.training.evaluate_b:evaluate_b_command",
    "study-b": "cloud.training.study_b:study_b_command",
    "export-b": "cloud.export.export_b:export_b_command",
    "collect": "cloud.collector.command:collect_command",
    "push-hub": "cloud.hub.push:push_hub_command",
    "compare-llm": "cloud.llm.command:compare_llm_command",
    "report-slm-llm": "cloud.costs.report:report_command",
    "space": "cloud.space.command:space_group",
    "publish": "cloud.publisher.command:publish_command",
    "keygen": "cloud.publisher.command:keygen_command",
    "replay-weeks": "cloud.monitoring.replay:replay_weeks_command",
    "monitor": "cloud.monitoring.job:monitor_command",
    "report": "cloud.monitoring.report:report_command",
    "dashboard": "cloud.dashboard.command:dashboard_command",
    "vertex-export": "cloud.monitoring.vertex:vertex_export_command",
    "build-device-bundle": "cloud.appliance.command:build_device_bundle_command",
    "frozen-head": "cloud.training.frozen_head:frozen_head_command",
}


@click.group(cls=LazyGroup, lazy_commands=COMMANDS)
@click.version_option(package_name="careeredge")
def main() -> None:
    """careeredge cloud side: data, Model A/B training, export, sync and publishing."""


if __name__ == "__main__":
    main()
