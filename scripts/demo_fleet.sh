#!/usr/bin/env bash
# Fleet demo on one machine: a mosquitto broker, two device daemons (pi-a, pi-b) syncing their
# predictions, one cloud collector, and an over-the-air model update that reaches both devices.
#
#   scripts/demo_fleet.sh [BUNDLE_DIR]      (default: artifacts/bundles/model_a_v1, else a tiny test bundle)
#
# Everything listens on 127.0.0.1 only and lives in a temporary directory (DEMO_DIR to choose it,
# KEEP=1 to keep it). Needs: mosquitto (Debian), the device + cloud extras in .venv, curl.
# Steps:
#   1. start mosquitto, create the signing key pair (the devices pin the public key)
#   2. start `careeredge-cloud collect` and two `careeredge serve` daemons with [sync] enabled
#   3. classify a few postings on each device (POST /api/v1/predict): they reach the collector
#   4. `careeredge-cloud publish` a new version of the bundle on channel "stable"
#   5. wait until both devices report `activated` and serve the new version (/api/v1/status)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
WORK=${DEMO_DIR:-$(mktemp -d /tmp/careeredge-demo.XXXXXX)}
BROKER_PORT=${DEMO_BROKER_PORT:-18830}
BUNDLE=${1:-artifacts/bundles/model_a_v1}
PIDS=()

say() { printf '\n== %s\n' "$*"; }
cleanup() {
  # Newest first: daemons and collector say goodbye to a broker that is still there.
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do kill "${PIDS[i]}" 2>/dev/null || true; sleep 0.3; done
  wait 2>/dev/null || true
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
  local deadline=$((SECONDS + $1)) what=$2; shift 2
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then echo "timed out waiting for $what" >&2; exit 1; fi
    sleep 0.5
  done
}

say "1. broker on 127.0.0.1:$BROKER_PORT, signing keys in $WORK"
cat > "$WORK/mosquitto.conf" <<EOF
listener $BROKER_PORT 127.0.0.1
allow_anonymous true
persistence true
persistence_location $WORK/
max_queued_messages 100000
max_packet_size 1114112
log_dest file $WORK/mosquitto.log
EOF
[ "$(id -u)" = 0 ] && echo "user root" >> "$WORK/mosquitto.conf"
mosquitto -c "$WORK/mosquitto.conf" & PIDS+=($!)
"$PY" -m cloud.cli keygen --private "$WORK/signing.pem" --public "$WORK/signing.pub.pem"

if [ ! -f "$BUNDLE/manifest.json" ]; then
  echo "no bundle at $BUNDLE: building the tiny test bundle (about a minute)"
  BUNDLE="$WORK/bundle_v1"
  "$PY" -c "import sys; sys.path.insert(0, '.'); from tests.support.tiny_model import build_tiny_bundle; \
build_tiny_bundle('$BUNDLE', name='demo_model', version='1')" 2>/dev/null
fi
# The update: the same weights re-released as a new version (what a weekly Model B release looks like).
"$PY" - "$BUNDLE" "$WORK/bundle_v2" <<'EOF'
import shutil, sys
from shared.bundle import read_manifest, save_manifest
shutil.copytree(sys.argv[1], sys.argv[2])
manifest = read_manifest(sys.argv[2])
manifest["version"] = f"{manifest['version']}-update2"
save_manifest(sys.argv[2], manifest)
print("update bundle:", manifest["name"], manifest["version"])
EOF

say "2. collector + two daemons"
"$PY" -m cloud.cli collect --db "$WORK/cloud.db" --broker-port "$BROKER_PORT" --stats-interval 5 \
  --client-id demo-collector 2> "$WORK/collector.log" & PIDS+=($!)
for i in 1 2; do
  device="pi-$([ $i = 1 ] && echo a || echo b)"
  cat > "$WORK/$device.toml" <<EOF
[model]
bundle = "$(realpath "$BUNDLE")"
[web]
port = $((18100 + i))
[store]
path = "$WORK/$device.db"
[sync]
enabled = true
device_id = "$device"
broker_port = $BROKER_PORT
public_key = "$WORK/signing.pub.pem"
models_dir = "$WORK/$device-models"
EOF
  "$PY" -m device.cli serve --config "$WORK/$device.toml" 2> "$WORK/$device.log" & PIDS+=($!)
done
for port in 18101 18102; do wait_for 60 "daemon on $port" curl -fs "http://127.0.0.1:$port/healthz"; done

say "3. classify on both devices"
for port in 18101 18102; do
  for text in "We need a data scientist with pandas, statistics and A/B testing." \
              "Backend engineer: Java, Kubernetes, microservices and CI/CD."; do
    curl -fs -X POST -H 'Content-Type: application/json' "http://127.0.0.1:$port/api/v1/predict" \
      -d "{\"text\": \"$text\"}" | "$PY" -c 'import json,sys; p=json.load(sys.stdin); print(" ", p["label_name"], p["probabilities"])'
  done
done
rows() { "$PY" -c "import sqlite3; print(sqlite3.connect('$WORK/cloud.db').execute('SELECT COUNT(*) FROM predictions').fetchone()[0])"; }
has_rows() { test "$(rows)" -ge "$1"; }
wait_for 30 "4 predictions at the collector" has_rows 4
echo "collector stored $(rows) predictions"

say "4. publish the update on channel stable"
"$PY" -m cloud.cli publish "$WORK/bundle_v2" --channel stable --key "$WORK/signing.pem" --broker-port "$BROKER_PORT"

say "5. waiting for both devices to activate it"
activated() {
  "$PY" -c "import sqlite3,sys; n=sqlite3.connect('$WORK/cloud.db').execute(\"SELECT COUNT(DISTINCT device_id) FROM ota_events WHERE event='activated' AND version LIKE '%-update2'\").fetchone()[0]; sys.exit(0 if n == 2 else 1)"
}
wait_for 60 "both devices to report activated" activated
for port in 18101 18102; do
  curl -fs "http://127.0.0.1:$port/api/v1/status" | "$PY" -c \
    'import json,sys; d=json.load(sys.stdin); s=d["sync"]; print(" ", s["device_id"], "| daemon model:", d["model"]["version"], "| OTA slot:", s["active_model_version"], "| broker connected:", s["broker_connected"], "| buffer:", s["buffer_rows"])'
done
"$PY" -c "
import sqlite3
db = sqlite3.connect('$WORK/cloud.db')
print('collector: predictions per device', dict(db.execute('SELECT device_id, COUNT(*) FROM predictions GROUP BY device_id')))
for row in db.execute('SELECT device_id, event, version, reason FROM ota_events ORDER BY id'): print('  ota', *row)
"
say "done: the update reached both devices"
