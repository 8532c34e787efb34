"""ed25519 signing of OTA manifests (the `cryptography` package), and the keys a device trusts.

The cloud signs a manifest with its private key; every device trusts a key ring (the key or keys
in `[sync] public_key`, plus keys learned through rotations) and refuses any manifest that does not
verify. What is signed is the canonical JSON of the manifest without its `signature` field, so key
order or whitespace added by any tool on the way cannot break (or forge) a signature. The manifest
names its signer with `key_id` (first 16 hex digits of sha256 over the raw public key), which turns
"signed with another key" into a precise rejection reason instead of a generic failure.

Key rotation: a rotation record introduces a new public key and is signed by the old private key
(`sign_rotation`). Manifests signed by the new key carry the records that lead to it
(`key_rotations`), so a device that only trusts the old key verifies the chain with what it trusts,
then the manifest with the new key (`apply_rotations`). A record may retire the old key: a device
that applied it never accepts that key again, even though its config still names it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from shared.errors import UserError

SIGNATURE_FIELD = "signature"
ROTATION_SCHEMA = "careeredge.key_rotation/1"
PEM_PUBLIC_BEGIN = b"-----BEGIN PUBLIC KEY-----"


class SignatureError(ValueError):
    """A manifest that does not verify. `reason` is "unknown_key", "bad_signature" or "bad_rotation"."""

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


def load_public_keys(path: Path) -> list[Ed25519PublicKey]:
    """Every ed25519 public key in a PEM file (several `PUBLIC KEY` blocks = several trusted keys)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read key file {path}: {exc.strerror}") from None
    blocks = [PEM_PUBLIC_BEGIN + part for part in data.split(PEM_PUBLIC_BEGIN)[1:]]
    if not blocks:
        raise UserError(f"{path}: no PEM public key in it")
    keys = []
    for number, block in enumerate(blocks, start=1):
        try:
            key = serialization.load_pem_public_key(block)
        except (ValueError, TypeError) as exc:
            raise UserError(f"{path}: key {number} is not a PEM key ({exc})") from None
        if not isinstance(key, Ed25519PublicKey):
            raise UserError(f"{path}: key {number} is not an ed25519 public key")
        keys.append(key)
    return keys


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


def raw_public_key(public_key: Ed25519PublicKey) -> str:
    """The 32-byte public key, base64 (how rotation records carry keys)."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def public_key_from_raw(encoded: object) -> Ed25519PublicKey:
    try:
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(str(encoded), validate=True))
    except (binascii.Error, ValueError) as exc:
        raise SignatureError("bad_rotation", f"not a base64 ed25519 public key: {exc}") from None


class Keyring:
    """The public keys a verifier trusts, by key id. A retired id is never trusted again."""

    def __init__(self, keys: Iterable[Ed25519PublicKey] = (), retired: Iterable[str] = ()):
        self._keys: dict[str, Ed25519PublicKey] = {}
        self.retired: set[str] = set(retired)
        for key in keys:
            self.add(key)

    def add(self, public_key: Ed25519PublicKey) -> str:
        identifier = key_id(public_key)
        if identifier not in self.retired:
            self._keys[identifier] = public_key
        return identifier

    def retire(self, identifier: str) -> None:
        self.retired.add(identifier)
        self._keys.pop(identifier, None)

    def get(self, identifier: object) -> Ed25519PublicKey | None:
        return self._keys.get(identifier) if isinstance(identifier, str) else None

    @property
    def ids(self) -> list[str]:
        return sorted(self._keys)

    def copy(self) -> Keyring:
        return Keyring(self._keys.values(), self.retired)

    def to_json(self) -> dict:
        return {"keys": {i: raw_public_key(k) for i, k in sorted(self._keys.items())}, "retired": sorted(self.retired)}


def _as_keyring(keys: Ed25519PublicKey | Keyring) -> Keyring:
    return keys if isinstance(keys, Keyring) else Keyring([keys])


def verify_manifest(manifest: dict, keys: Ed25519PublicKey | Keyring) -> None:
    """Raise SignatureError unless `manifest` was signed by the private half of a key in `keys`."""
    keyring = _as_keyring(keys)
    public_key = keyring.get(manifest.get("key_id"))
    if public_key is None:
        trusted = ", ".join(keyring.ids) or "none"
        raise SignatureError("unknown_key", f"signed by key {manifest.get('key_id')!r}, trusted keys: {trusted}")
    try:
        signature = base64.b64decode(str(manifest.get(SIGNATURE_FIELD, "")), validate=True)
        public_key.verify(signature, signed_bytes(manifest))
    except (InvalidSignature, binascii.Error, ValueError):
        raise SignatureError("bad_signature", "signature does not match the manifest content") from None


def sign_rotation(old_private: Ed25519PrivateKey, new_public: Ed25519PublicKey, retire_old: bool = False) -> dict:
    """A record, signed by the old key, that makes the new key trusted (and retires the old one if asked)."""
    record = {
        "schema": ROTATION_SCHEMA,
        "old_key": raw_public_key(old_private.public_key()),
        "new_key": raw_public_key(new_public),
        "new_key_id": key_id(new_public),
        "retire_old": bool(retire_old),
        "issued_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    return sign_manifest(record, old_private)


def apply_rotations(keys: Ed25519PublicKey | Keyring, records: Iterable[object]) -> Keyring:
    """A copy of `keys` extended by each rotation record (in order) that a key it trusts signed.

    Records signed by a key it does not trust, and records whose new key it trusts already, change
    nothing: a chain A->B, B->C serves devices that trust A, B or C alike, and whoever checks a
    manifest afterwards still needs its signer in the result. Raises SignatureError for a malformed
    record, or one that a trusted key did not really sign; the keyring passed in is never changed."""
    keyring = _as_keyring(keys).copy()
    for record in records:
        if not isinstance(record, dict) or record.get("schema") != ROTATION_SCHEMA:
            raise SignatureError("bad_rotation", f"not a {ROTATION_SCHEMA} record")
        if not isinstance(record.get("retire_old"), bool):
            raise SignatureError("bad_rotation", "retire_old must be true or false")
        new_key = public_key_from_raw(record.get("new_key"))
        if key_id(new_key) != record.get("new_key_id"):
            raise SignatureError("bad_rotation", "new_key_id does not match new_key")
        if keyring.get(record["new_key_id"]) is not None or record["new_key_id"] in keyring.retired:
            continue
        if key_id(public_key_from_raw(record.get("old_key"))) != record.get("key_id"):
            raise SignatureError("bad_rotation", "the record's signer is not its old_key")
        if keyring.get(record["key_id"]) is None:
            continue
        verify_manifest(record, keyring)
        keyring.add(new_key)
        if record["retire_old"]:
            keyring.retire(record["key_id"])
    return keyring
