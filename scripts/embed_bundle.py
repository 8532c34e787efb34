"""Replace the bundle shipped in the package (device/embedded_bundle/) with one the pipeline built.

    python scripts/embed_bundle.py artifacts/bundles/model_a_v1

The candidate is verified first (every file's sha256 against its manifest) and must pass its own golden
set with the current runtime; only then are its files copied in, and the script says which files changed.
Unsigned on purpose: the embedded bundle is trusted because it comes with the code, like the code itself.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from device.config import EMBEDDED_BUNDLE  # noqa: E402
from device.sync.healthcheck import golden_health_check  # noqa: E402
from shared.bundle import MANIFEST_FILE, BundleError, verify_bundle  # noqa: E402
from shared.files import sha256_file  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path, help="a bundle directory built by `careeredge-cloud export`")
    args = parser.parse_args()
    try:
        manifest = verify_bundle(args.bundle)
    except BundleError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2
    report = golden_health_check(args.bundle)
    if not report.ok or report.agreed != report.checked:
        print(f"Error: {args.bundle}: golden set fails with this runtime ({report.detail})", file=sys.stderr)
        return 2
    names = sorted(manifest["files"]) + [MANIFEST_FILE]
    changed = [
        n
        for n in names
        if not (EMBEDDED_BUNDLE / n).is_file() or sha256_file(EMBEDDED_BUNDLE / n) != sha256_file(args.bundle / n)
    ]
    EMBEDDED_BUNDLE.mkdir(parents=True, exist_ok=True)
    for stale in EMBEDDED_BUNDLE.iterdir():
        if stale.name not in names:
            stale.unlink()
    for name in names:
        shutil.copyfile(args.bundle / name, EMBEDDED_BUNDLE / name)
    print(f"{manifest['name']}@{manifest['version']}: {report.detail}; changed: {', '.join(changed) or 'nothing'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
