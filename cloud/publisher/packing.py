"""Pack a bundle into a deterministic tar, sign it, and describe it with a signed OTA manifest.

Two signatures, one key:
- the bundle's own `manifest.json` (which lists the sha256 of every file) is signed inside the
  tar, so an unpacked slot on the device stays verifiable (rollback, `careeredge model status`);
- the OTA manifest (size, sha256 and per-chunk sha256 of the tar, channel, sequence) is signed, so
  the device rejects a forged or altered transfer before writing a single chunk.

The tar is uncompressed (INT8 weights barely compress, and the Pi should not spend CPU on it) and
deterministic (sorted names, zero mtimes/owners), so packing the same bundle twice gives the same
sha256.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import tarfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.bundle import GOLDEN_FILE, MANIFEST_FILE, BundleError, read_golden, verify_bundle
from shared.mqtt.contract import MAX_CHUNK_BYTES, OTA_MANIFEST
from shared.signing import sign_manifest

DEFAULT_CHUNK_SIZE = 512 * 1024


@dataclass(frozen=True)
class PackedBundle:
    path: Path
    name: str
    version: str
    size: int
    sha256: str
    chunk_sha256: list[str]
    chunk_size: int
    metrics: dict
    created_at: str | None


def pack_bundle(
    bundle_dir: Path, out_path: Path, private_key: Ed25519PrivateKey, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> PackedBundle:
    """Verify `bundle_dir`, sign its manifest, write the tar to `out_path` and hash it per chunk."""
    if not 1 <= chunk_size <= MAX_CHUNK_BYTES:
        raise BundleError(f"chunk size must be between 1 and {MAX_CHUNK_BYTES} bytes, got {chunk_size}")
    bundle_dir = Path(bundle_dir)
    manifest = verify_bundle(bundle_dir)
    if GOLDEN_FILE not in manifest["files"] or not read_golden(bundle_dir):
        raise BundleError(
            f"bundle {bundle_dir} has no {GOLDEN_FILE} listed in its manifest; devices need its golden "
            "examples to health-check an update before keeping it"
        )
    signed_manifest = sign_manifest(manifest, private_key)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(out_path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(manifest["files"]):
            with open(bundle_dir / name, "rb") as handle:
                tar.addfile(_tar_entry(name, (bundle_dir / name).stat().st_size), handle)
        manifest_bytes = _manifest_bytes(signed_manifest)
        tar.addfile(_tar_entry(MANIFEST_FILE, len(manifest_bytes)), io.BytesIO(manifest_bytes))
    size, sha256, chunk_sha256 = hash_chunks(out_path, chunk_size)
    return PackedBundle(
        path=out_path,
        name=str(manifest["name"]),
        version=str(manifest["version"]),
        size=size,
        sha256=sha256,
        chunk_sha256=chunk_sha256,
        chunk_size=chunk_size,
        metrics=manifest.get("metrics") or {},
        created_at=manifest.get("created_at"),
    )


def _tar_entry(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o644
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _manifest_bytes(manifest: dict) -> bytes:
    return (json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def hash_chunks(path: Path, chunk_size: int) -> tuple[int, str, list[str]]:
    """(size, sha256, [sha256 of each chunk]) in one streaming pass."""
    whole = hashlib.sha256()
    chunks: list[str] = []
    size = 0
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            whole.update(chunk)
            chunks.append(hashlib.sha256(chunk).hexdigest())
            size += len(chunk)
    return size, whole.hexdigest(), chunks


def build_ota_manifest(
    packed: PackedBundle,
    channel: str,
    sequence: int,
    private_key: Ed25519PrivateKey,
    key_rotations: list[dict] | None = None,
) -> dict:
    """The signed, retained manifest a channel's devices act on. `key_rotations` (oldest first) lead
    devices that trust an older key to this one (shared.signing.apply_rotations)."""
    manifest = {
        "schema": OTA_MANIFEST.schema_id,
        "channel": channel,
        "sequence": int(sequence),
        "name": packed.name,
        "version": packed.version,
        "created_at": packed.created_at,
        "published_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "size": packed.size,
        "sha256": packed.sha256,
        "chunk_size": packed.chunk_size,
        "chunks": packed.chunk_sha256,
        "metrics": _json_safe_metrics(packed.metrics),
    }
    if key_rotations:
        manifest["key_rotations"] = list(key_rotations)
    assert len(packed.chunk_sha256) == math.ceil(packed.size / packed.chunk_size)
    signed = sign_manifest(manifest, private_key)
    OTA_MANIFEST.validate(signed)
    return signed


def _json_safe_metrics(metrics: dict) -> dict:
    # Only scalar metrics travel in the manifest (it has a size limit); nested reports stay in the bundle.
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float, str, bool)) and v == v}
