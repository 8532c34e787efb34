#!/usr/bin/env bash
# Version this week's raw snapshot with DVC, right after `careeredge-cloud ingest` and before anything
# reads it. The weekly GitHub workflow and the systemd retrain service both run this file.
#
#   dvc commit --force ingest   hashes data/ingest (the raw files byte for byte + manifest.json), stores
#                               it in the DVC cache and records its md5 under the `ingest` stage in dvc.lock
#   dvc push ingest             copies that version to the DVC remote
#
# A week's snapshot is then the `ingest` entry of that week's dvc.lock: keep the lock (the workflow uploads
# it with the reports; a self-hosted trainer commits it) and `dvc checkout ingest` / `dvc pull ingest`
# with it restores exactly those raw files. DVC_REMOTE_URL (optional) points the push at shared storage
# (s3://, gs://, ssh://, a path), set in .dvc/config.local so the tracked config is untouched; without it
# the default remote is `.dvc-storage/` in the checkout (docs/pipeline.md, "Data").
set -euo pipefail

cd "$(dirname "$0")/.."
DVC=${DVC:-dvc}

if [ ! -f data/ingest/manifest.json ]; then
    echo "version_snapshot: data/ingest/manifest.json is missing; run careeredge-cloud ingest first" >&2
    exit 2
fi
if [ -n "${DVC_REMOTE_URL:-}" ]; then
    "$DVC" remote add --local --force --default weekly "$DVC_REMOTE_URL"
fi
"$DVC" commit --force --quiet ingest
"$DVC" push --quiet ingest
md5=$(awk '/^  ingest:/ {stage=1} stage && /path: data\/ingest$/ {found=1} found && /md5:/ {print $2; exit}' dvc.lock)
echo "version_snapshot: data/ingest versioned by DVC as md5 ${md5:-?} (dvc.lock, stage ingest)"
