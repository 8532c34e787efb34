"""The signing keys a device trusts: the ones its config pins, plus the ones rotations taught it.

    models_dir/trusted_keys.json   {"keys": {key_id: base64 raw key}, "retired": [key_id, ...]}

The file only ever grows what the config started with: a key enters it through a rotation record
signed by a key the device already trusted (shared.signing.apply_rotations), and a retired id stays
retired even when the config still names that key. It is written atomically (fsynced), so a crash
leaves the old ring or the new one.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from shared.files import atomic_write_json
from shared.signing import Keyring, SignatureError, public_key_from_raw

log = logging.getLogger("careeredge.sync.ota")

TRUST_FILE = "trusted_keys.json"


def load_keyring(pinned: Ed25519PublicKey | Keyring, models_dir: Path) -> Keyring:
    """The pinned keys plus what earlier rotations added, minus what they retired."""
    keyring = pinned.copy() if isinstance(pinned, Keyring) else Keyring([pinned])
    path = Path(models_dir) / TRUST_FILE
    try:
        learned = json.loads(path.read_text())
        retired = [str(i) for i in learned.get("retired", [])]
        keys = [public_key_from_raw(raw) for raw in learned.get("keys", {}).values()]
    except FileNotFoundError:
        return keyring
    except (OSError, ValueError, AttributeError, SignatureError) as exc:
        # Trust only shrinks back to the pinned keys; a rotation the fleet relies on will be re-learned
        # from the next manifest, which carries its rotation records.
        log.error("ignoring unreadable %s (%s): trusting the configured keys only", path, exc)
        return keyring
    for identifier in retired:
        keyring.retire(identifier)
    for key in keys:
        keyring.add(key)
    return keyring


def save_keyring(keyring: Keyring, models_dir: Path) -> None:
    atomic_write_json(Path(models_dir) / TRUST_FILE, keyring.to_json())
