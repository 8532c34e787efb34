"""Appliance figures: the offline bundle's size, the x86 twin's install time, and the aarch64 bundle run
under emulation (qemu-aarch64-static) against the x86 answers on the model's golden set.

    python scripts/bench_appliance.py --json artifacts/bench/appliance.json

What it does, all offline once the caches are warm:
1. `careeredge-cloud build-device-bundle` for aarch64 and x86_64 (wheel caches in ~/.cache/careeredge);
2. the x86 twin's install.sh --no-system into a fresh prefix: wall and CPU seconds;
3. an arm64 root for the emulator: Debian bookworm's arm64 python3.11 and its libraries, fetched with
   apt-get through a private apt state directory (the host's apt setup is not touched) and unpacked with
   `dpkg -x`; the bundle's aarch64 wheels installed into it with the host's pip (`--target --platform`);
4. `careeredge predict --jsonl` on the golden set under qemu-aarch64-static (the real aarch64
   onnxruntime, numpy and tokenizers) and natively on x86: labels must be identical.

The emulated latency is qemu's, not a Raspberry Pi's: it is reported as a ratio to the native run.
onnxruntime's CPU detection (pytorch/cpuinfo) crashes on the host's x86 /proc/cpuinfo under qemu-user;
the root carries a Cortex-A76 (Pi 5) /proc/cpuinfo, which qemu serves in its place (`-L`).
Needs: qemu-user-static, dpkg, apt (Debian).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SUITES = ("bookworm", "bookworm-security")
# python3.11's run-time closure on bookworm arm64, plus libstdc++ for onnxruntime (perl, dpkg, tar: not needed)
ARM64_PACKAGES = (
    "gcc-12-base libbz2-1.0 libc6 libcrypt1 libdb5.3 libexpat1 libffi8 libgcc-s1 liblzma5 libncursesw6 libnsl2 "
    "libpython3.11-minimal libpython3.11-stdlib libreadline8 libsqlite3-0 libssl3 libtinfo6 libtirpc3 libtirpc-common "
    "libuuid1 libzstd1 python3.11 python3.11-minimal readline-common zlib1g libstdc++6 libgssapi-krb5-2 libk5crypto3 "
    "libkrb5-3 libkrb5support0 libkeyutils1 libcom-err2 media-types"
).split()
PI5_CPUINFO = "".join(
    f"processor\t: {n}\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp "
    "asimdhp cpuid asimdrdm lrcpc dcpop asimddp\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x4\n"
    "CPU part\t: 0xd0b\nCPU revision\t: 1\n\n"
    for n in range(4)
)


def run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        raise SystemExit(f"bench_appliance: {' '.join(command[:3])}... failed:\n{result.stderr[-2000:]}")
    return result


def build(machine: str, out: Path) -> Path:
    from cloud.appliance.bundle import build_device_bundle
    from cloud.appliance.command import DEFAULT_CACHE
    from cloud.appliance.wheelhouse import PLATFORMS
    from device.config import EMBEDDED_BUNDLE

    result = build_device_bundle(
        out, PLATFORMS[machine], EMBEDDED_BUNDLE, cache_dir=DEFAULT_CACHE / f"wheelhouse-{machine}"
    )
    with tarfile.open(result.tarball) as archive:
        archive.extractall(out, filter="data")
    return out / result.tarball.name.removesuffix(".tar.gz")


def timed_install(bundle: Path, prefix: Path) -> dict:
    before, began = resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic()
    run(["sh", str(bundle / "install.sh"), "--no-system", "--prefix", str(prefix), "--etc", str(prefix / "etc")],
        env={**os.environ, "PYTHON": sys.executable})  # fmt: skip
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": round(time.monotonic() - began, 1), "cpu_s": round(cpu, 1)}


def arm64_root(work: Path) -> Path:
    """Debian bookworm arm64 python3.11 unpacked into a directory (no chroot, no host apt changes)."""
    apt = work / "apt"
    for sub in ("state/lists/partial", "cache/archives/partial", "etc/preferences.d"):
        (apt / sub).mkdir(parents=True, exist_ok=True)
    (apt / "state" / "status").touch()
    keyring = "/usr/share/keyrings/debian-archive-keyring.gpg"
    (apt / "etc" / "sources.list").write_text(
        f"deb [arch=arm64 signed-by={keyring}] http://deb.debian.org/debian bookworm main\n"
        f"deb [arch=arm64 signed-by={keyring}] http://deb.debian.org/debian-security bookworm-security main\n"
    )
    options = [
        f"-oDir::State={apt / 'state'}", f"-oDir::State::status={apt / 'state' / 'status'}",
        f"-oDir::Cache={apt / 'cache'}", f"-oDir::Etc::SourceList={apt / 'etc' / 'sources.list'}",
        "-oDir::Etc::SourceParts=/dev/null", "-oDir::Etc::Preferences=/dev/null",
        f"-oDir::Etc::PreferencesParts={apt / 'etc' / 'preferences.d'}",
        "-oAPT::Architecture=arm64", "-oAPT::Architectures=arm64",
    ]  # fmt: skip
    run(["apt-get", *options, "-qq", "update"])
    debs = work / "debs"
    debs.mkdir(exist_ok=True)
    run(["apt-get", *options, "-qq", "download", *ARM64_PACKAGES], cwd=debs)
    root = work / "root"
    for deb in sorted(debs.glob("*.deb")):
        run(["dpkg", "-x", str(deb), str(root)])
    (root / "proc").mkdir(exist_ok=True)
    (root / "proc" / "cpuinfo").write_text(PI5_CPUINFO)
    return root


def install_arm64_wheels(bundle: Path, site: Path) -> None:
    from cloud.appliance.wheelhouse import PLATFORMS

    platform = PLATFORMS["aarch64"]
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-index"]
    command += ["--find-links", str(bundle / "wheels"), "--target", str(site), "--only-binary=:all:"]
    command += [f"--platform={tag}" for tag in platform.tags]
    command += ["--python-version=3.11", "--implementation=cp", "--abi=cp311", "--abi=abi3", "--abi=none"]
    run([*command, "careeredge[device]"])


def golden_inputs(model: Path, out: Path) -> int:
    rows = [json.loads(line) for line in (model / "golden.jsonl").read_text().splitlines() if line.strip()]
    out.write_text("".join(json.dumps({"id": i, "text": r["text"]}) + "\n" for i, r in enumerate(rows)))
    return len(rows)


def predict(prefix: list[str], model: Path, inputs: Path, env: dict) -> tuple[list[dict], float]:
    began = time.monotonic()
    result = run([*prefix, "-m", "device.cli", "predict", "--no-store", "--json", "--model", str(model),
                  "--jsonl", str(inputs)], env={**os.environ, **env})  # fmt: skip
    return [json.loads(line) for line in result.stdout.splitlines()], time.monotonic() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    parser.add_argument("--work", type=Path, default=None, help="keep the work directory here")
    args = parser.parse_args()
    if shutil.which("qemu-aarch64-static") is None:
        raise SystemExit("bench_appliance: qemu-aarch64-static not found (apt install qemu-user-static)")
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-appliance-"))
    work.mkdir(parents=True, exist_ok=True)
    figures: dict = {"machine": os.uname().machine, "cpus": os.cpu_count()}

    pi_bundle, twin = build("aarch64", work / "aarch64"), build("x86_64", work / "x86_64")
    for name, bundle in (("aarch64", pi_bundle), ("x86_64", twin)):
        tarball = bundle.parent / f"{bundle.name}.tar.gz"
        figures[f"bundle_{name}_mb"] = round(tarball.stat().st_size / 1e6, 1)
    figures["x86_twin_install"] = timed_install(twin, work / "twin")

    root = arm64_root(work / "arm64")
    site = work / "arm64-site"
    install_arm64_wheels(pi_bundle, site)
    model = pi_bundle / "model" / Path((pi_bundle / "MODEL").read_text().strip())
    postings = golden_inputs(model, work / "golden.jsonl")
    native, native_s = predict([sys.executable], model, work / "golden.jsonl", {})
    qemu = ["qemu-aarch64-static", "-L", str(root), str(root / "usr" / "bin" / "python3.11")]
    emulated, emulated_s = predict(qemu, model, work / "golden.jsonl", {"PYTHONPATH": str(site)})
    gap = max(abs(p - q) for a, b in zip(native, emulated) for p, q in zip(a["probabilities"], b["probabilities"]))
    figures["aarch64_emulated"] = {
        "postings": postings,
        "labels_identical": [a["label"] for a in native] == [b["label"] for b in emulated],
        "max_probability_gap": gap,
        "wall_s_native": round(native_s, 2),
        "wall_s_emulated": round(emulated_s, 2),
        "emulated_over_native": round(emulated_s / native_s, 1),
        "note": "qemu-user on x86, not a Raspberry Pi figure",
    }
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
