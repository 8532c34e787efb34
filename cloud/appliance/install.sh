#!/bin/sh
# careeredge offline installer: run from the unpacked device bundle on a Raspberry Pi OS (Bookworm,
# 64-bit) or, with --no-system, anywhere (a container image, a test venv). No network is used.
#
#   sudo ./install.sh                        the appliance: system user, /opt/careeredge, units enabled
#   ./install.sh --no-system --prefix DIR    a venv in DIR only (no user, no units, no root needed)
#
# Running it again upgrades in place and changes nothing else: an existing config.toml is kept.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
PREFIX=/opt/careeredge
ETC=/etc/careeredge
UNIT_DIR=/etc/systemd/system
SYSTEM=1
PYTHON=${PYTHON:-python3}

die() {
    echo "install.sh: $*" >&2
    exit 1
}

while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) PREFIX=${2:?--prefix needs a directory}; shift 2 ;;
        --etc) ETC=${2:?--etc needs a directory}; shift 2 ;;
        --no-system) SYSTEM=0; shift ;;
        -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done

# --- checks first: nothing is changed until all of them pass ------------------------------------
if [ "$SYSTEM" -eq 1 ] && [ "$(id -u)" -ne 0 ]; then
    die "must run as root to create the careeredge user, /opt/careeredge and the systemd units: sudo $0 (or --no-system --prefix DIR for a user install)"
fi
TARGET=$(cat "$HERE/TARGET")          # the machine the wheels were downloaded for, e.g. aarch64
PY_VERSION=$(cat "$HERE/PYTHON")      # the CPython they were built for, e.g. 3.11
MODEL_NAME=$(cat "$HERE/MODEL")       # the bundled model's directory under model/
MACHINE=$(uname -m)
[ "$MACHINE" = "$TARGET" ] || die "this bundle is for $TARGET, this machine is $MACHINE: build one with careeredge-cloud build-device-bundle --platform $MACHINE"
command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found: install python3 and python3-venv from the OS image"
HAVE_PY=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
[ "$HAVE_PY" = "$PY_VERSION" ] || die "the wheels are for CPython $PY_VERSION, $PYTHON is $HAVE_PY: set PYTHON=python$PY_VERSION"
"$PYTHON" -c 'import venv, ensurepip' 2>/dev/null || die "$PYTHON cannot create a venv: apt install python3-venv"
for wheel in "$HERE"/wheels/*.whl; do
    name=$(basename "$wheel")
    case "$name" in
        *-any.whl|*_"$TARGET".whl|*_"$TARGET".*.whl) ;;
        *) die "wheel $name is not built for $TARGET (a wrong-architecture wheel in wheels/): rebuild the bundle" ;;
    esac
done
(cd "$HERE" && sha256sum --quiet --check SHA256SUMS) || die "the bundle's files do not match SHA256SUMS: copy it again"

# --- install ---------------------------------------------------------------------------------------
if [ "$SYSTEM" -eq 1 ] && ! id careeredge >/dev/null 2>&1; then
    useradd --system --home-dir /var/lib/careeredge --no-create-home --shell /usr/sbin/nologin careeredge
fi
mkdir -p "$PREFIX" "$ETC"
[ -x "$PREFIX/.venv/bin/python" ] || "$PYTHON" -m venv "$PREFIX/.venv"
"$PREFIX/.venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-index \
    --find-links "$HERE/wheels" --upgrade "careeredge[device]"

MODEL_DIR="$PREFIX/models/$MODEL_NAME"
mkdir -p "$PREFIX/models"
rm -rf "$MODEL_DIR.new"
cp -R "$HERE/model/$MODEL_NAME" "$MODEL_DIR.new"
rm -rf "$MODEL_DIR"
mv "$MODEL_DIR.new" "$MODEL_DIR"

if [ -f "$ETC/config.toml" ]; then
    echo "install.sh: keeping $ETC/config.toml"
else
    sed "s|@MODEL_DIR@|$MODEL_DIR|" "$HERE/config/config.toml" >"$ETC/config.toml"
fi
if [ -f "$HERE/keys/model-signing.pub.pem" ]; then
    cp "$HERE/keys/model-signing.pub.pem" "$ETC/model-signing.pub.pem"
fi
if [ -f "$HERE/config/careeredge.toml.example" ]; then
    cp "$HERE/config/careeredge.toml.example" "$ETC/careeredge.toml.example"
fi

if [ "$SYSTEM" -eq 1 ]; then
    chown -R root:careeredge "$ETC"
    chmod 0750 "$ETC"
    chmod 0640 "$ETC/config.toml"
    for unit in "$HERE"/systemd/*.service; do
        install -m 0644 "$unit" "$UNIT_DIR/$(basename "$unit")"
    done
    if [ -d /run/systemd/system ]; then
        systemctl daemon-reload
    fi
    # enable works in a chroot too (pi-gen): it only creates the wants/ links
    systemctl enable careeredge.service careeredge-firstboot.service
fi

# --- the installed daemon answers: one posting through the bundled model ---------------------------
"$PREFIX/.venv/bin/careeredge" predict --model "$MODEL_DIR" --json \
    "Data scientist: statistics, pandas, SQL and A/B testing" >/dev/null \
    || die "the installed careeredge could not classify with $MODEL_DIR"
echo "install.sh: careeredge installed in $PREFIX (model $MODEL_NAME)"
