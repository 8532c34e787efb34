"""ed25519 signing of OTA manifests (the `cryptography` package).

The cloud signs a manifest with its private key; every device pins the matching public key in its
config (`[sync] public_key`) and refuses any manifest that does not verify. What is signed is the
canonical JSON of the manifest without its `signature` field, so key order or whitespace added by
any tool on the way cannot break (or forge) a signature. The manifest names its signer with
`key_id` (first 16 hex digits of sha256 over the raw public key), which turns "signed with another
key" into a precise rejection reason instead of a generic failure.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from shared.errors import UserError

SIGNATURE_FIELD = "signature"


class SignatureError(ValueError):
    """A manifest that does not verify. `reason` is "unknown_key" or "bad_signature"."""

    def __init__(self, reason: str, message: str):
        super().__init__(f"{reason}: {message}")
        self.reason = reason


def canonical_json(obj: Any) -> bytes:
    """The one byte-exact JSON encoding used for signing and on the wire (sorted keys, no spaces)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def generate_keypair(private_path: Path, public_path: Path) -> str:
    """Write a new PEM key pair (private key mode 0600) and return its key id."""
    private_key = Ed25519PrivateKey.generate()
    private_pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    private_path, public_path = Path(private_path), Path(public_path)
    private_path.parent.mkdir(parents=True, exist_ok=True)
    public_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(private_pem)
    public_path.write_bytes(public_pem)
    return key_id(private_key.public_key())


def load_private_key(path: Path) -> Ed25519PrivateKey:
    key = _load_pem(path, serialization.load_pem_private_key, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise UserError(f"{path}: not an ed25519 private key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    key = _load_pem(path, serialization.load_pem_public_key)
    if not isinstance(key, Ed25519PublicKey):
        raise UserError(f"{path}: not an ed25519 public key")
    return key


def _load_pem(path: Path, loader, **kwargs):
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read key file {path}: {exc.strerror}") from None
    try:
        return loader(data, **kwargs)
    except (ValueError, TypeError) as exc:
        raise UserError(f"{path}: not a PEM key ({exc})") from None


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def signed_bytes(manifest: dict) -> bytes:
    return canonical_json({k: v for k, v in manifest.items() if k != SIGNATURE_FIELD})


def sign_manifest(manifest: dict, private_key: Ed25519PrivateKey) -> dict:
    """Return a copy of `manifest` with `key_id` and `signature` (base64) set."""
    unsigned = {k: v for k, v in manifest.items() if k != SIGNATURE_FIELD}
    unsigned["key_id"] = key_id(private_key.public_key())
    signature = private_key.sign(signed_bytes(unsigned))
    return {**unsigned, SIGNATURE_FIELD: base64.b64encode(signature).decode("ascii")}


def verify_manifest(manifest: dict, public_key: Ed25519PublicKey) -> None:
    """Raise SignatureError unless `manifest` was signed by the private half of `public_key`."""
    expected_id = key_id(public_key)
    if manifest.get("key_id") != expected_id:
        raise SignatureError(
            "unknown_key", f"manifest signed by key {manifest.get('key_id')!r}, device pins {expected_id}"
        )
    try:
        signature = base64.b64decode(str(manifest.get(SIGNATURE_FIELD, "")), validate=True)
        public_key.verify(signature, signed_bytes(manifest))
    except (InvalidSignature, binascii.Error, ValueError):
        raise SignatureError("bad_signature", "signature does not match the manifest content") from None
