"""Model slots on the device: one directory per installed bundle, and two symlinks.

    models_dir/
      slots/<version>-<sha8>/   unpacked, verified bundles (never modified after install)
      active   -> slots/...     what the daemon serves
      previous -> slots/...     what `careeredge model rollback` returns to
      pending.json              present only while a swap is unconfirmed: the links to go back to

Activation is a symlink swap: a new link is created beside `active` and renamed over it. rename(2)
is atomic, so a reader resolving `active` sees the old bundle or the new one, never a half state,
even if the power goes out mid-update.

An over-the-air swap is "boot, confirm or roll back" (RAUC, Mender): before touching a link the
updater writes `pending.json` naming the links as they were; once the daemon serves the new slot the
updater confirms by deleting it. A boot that finds the marker (the process died between swap and
confirmation) puts the recorded links back (`revert_unconfirmed`), and until then every reader
(`resolve_bundle`) already treats the recorded `active` as the one to serve.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from shared.bundle import read_manifest
from shared.errors import UserError
from shared.files import atomic_write_json, fsync_dir

if TYPE_CHECKING:
    from device.config import Config

log = logging.getLogger("careeredge.sync.ota")

ACTIVE = "active"
PREVIOUS = "previous"
SLOTS = "slots"
PENDING = "pending.json"


def resolve_bundle(config: Config, pinned: bool = False) -> Path:
    """The bundle to serve: pinned (`--model`) > confirmed over-the-air slot > `[model] bundle`.

    While a swap is unconfirmed, the confirmed slot is the one the pending marker recorded."""
    if not pinned:
        slots = ModelSlots(Path(config.sync.models_dir))
        confirmed = slots.confirmed_active()
        if confirmed is not None:
            return confirmed
    return Path(config.model.bundle)


def slot_name(version: str, sha256: str) -> str:
    safe_version = re.sub(r"[^A-Za-z0-9._-]", "_", version)[:48] or "unversioned"
    return f"{safe_version}-{sha256[:8]}"


class ModelSlots:
    def __init__(self, models_dir: Path):
        self.models_dir = Path(models_dir)
        self.slots_dir = self.models_dir / SLOTS

    def ensure(self) -> ModelSlots:
        self.slots_dir.mkdir(parents=True, exist_ok=True)
        return self

    # --- reading -----------------------------------------------------------------------------------

    def _target(self, link_name: str) -> Path | None:
        link = self.models_dir / link_name
        if not link.is_symlink():
            return None
        target = (self.models_dir / os.readlink(link)).resolve()
        return target if target.is_dir() else None

    def active(self) -> Path | None:
        return self._target(ACTIVE)

    def confirmed_active(self) -> Path | None:
        """`active`, or while a swap is unconfirmed the slot that was active before it."""
        marker = self.pending()
        if marker is None:
            return self.active()
        return self.slot_named(marker.get(ACTIVE))

    def previous(self) -> Path | None:
        return self._target(PREVIOUS)

    @property
    def active_link(self) -> Path:
        """The path the daemon loads (it follows the link on every reload)."""
        return self.models_dir / ACTIVE

    def describe(self, slot: Path | None) -> dict | None:
        if slot is None:
            return None
        try:
            manifest = read_manifest(slot)
        except UserError:
            return {"slot": slot.name, "name": None, "version": None, "readable": False}
        return {
            "slot": slot.name,
            "name": manifest.get("name"),
            "version": str(manifest.get("version")),
            "readable": True,
        }

    # --- changing ----------------------------------------------------------------------------------

    def install(self, staging_dir: Path, name: str) -> Path:
        """Move a verified staging directory into `slots/<name>` (same filesystem: a rename)."""
        self.ensure()
        slot = self.slots_dir / name
        if slot.exists():
            # The same bundle (same sha prefix) was installed before, e.g. by a transfer that was
            # interrupted after unpacking. Its content is identical; keep the existing copy.
            shutil.rmtree(staging_dir, ignore_errors=True)
            return slot
        staging_dir.rename(slot)
        return slot

    def activate(self, slot: Path) -> Path | None:
        """Point `active` at `slot` and `previous` at what was active. Returns the old active slot."""
        old = self.active()
        if old is not None and old != slot.resolve():
            self._swap_link(PREVIOUS, old)
        self._swap_link(ACTIVE, slot)
        return old

    def rollback(self) -> Path:
        """Swap `active` and `previous` (running it twice returns to where you started)."""
        previous, active = self.previous(), self.active()
        if previous is None:
            raise UserError(f"no previous model in {self.models_dir} to roll back to")
        self._swap_link(ACTIVE, previous)
        if active is not None:
            self._swap_link(PREVIOUS, active)
        return previous

    def restore(self, active: Path | None, previous: Path | None) -> None:
        """Put both links back as they were recorded. The pair never names one slot twice: a `previous`
        equal to `active` is dropped rather than making a rollback a no-op."""
        if previous is not None and active is not None and previous.resolve() == active.resolve():
            previous = None
        for name, target in ((ACTIVE, active), (PREVIOUS, previous)):
            if target is None:
                (self.models_dir / name).unlink(missing_ok=True)
                fsync_dir(self.models_dir)
            else:
                self._swap_link(name, target)

    # --- boot, confirm or roll back ------------------------------------------------------------------

    def begin_swap(self, slot: Path, **details) -> None:
        """Record the links as they are (durably), then activate `slot`. Unconfirmed until `confirm()`."""
        marker = {
            "slot": slot.name,
            ACTIVE: _name(self.active()),
            PREVIOUS: _name(self.previous()),
            **details,
        }
        atomic_write_json(self.models_dir / PENDING, marker)
        self.activate(slot)

    def confirm(self) -> None:
        """The new slot serves: forget the links to go back to."""
        (self.models_dir / PENDING).unlink(missing_ok=True)
        fsync_dir(self.models_dir)

    def pending(self) -> dict | None:
        """The unconfirmed swap's marker, or None. A damaged marker still means "unconfirmed"."""
        path = self.models_dir / PENDING
        try:
            marker = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.error("unreadable %s (%s): treating the active slot as unconfirmed", path, exc)
            return {"slot": _name(self.active()), ACTIVE: _name(self.previous()), PREVIOUS: None}
        return marker if isinstance(marker, dict) else {"slot": None, ACTIVE: None, PREVIOUS: None}

    def revert_unconfirmed(self) -> dict | None:
        """At boot: if a swap was never confirmed, put back the links it recorded. Returns its marker."""
        marker = self.pending()
        if marker is None:
            return None
        self.restore(self.slot_named(marker.get(ACTIVE)), self.slot_named(marker.get(PREVIOUS)))
        self.confirm()
        return marker

    def slot_named(self, name: object) -> Path | None:
        if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
            return None
        path = self.slots_dir / name
        return path.resolve() if path.is_dir() else None

    def prune(self) -> list[str]:
        """Delete slots that are neither active nor previous (a Pi's SD card is small)."""
        if self.pending() is not None:
            return []  # an unconfirmed swap may still need the slots it recorded
        keep = {p for p in (self.active(), self.previous()) if p is not None}
        removed = []
        if self.slots_dir.is_dir():
            for slot in self.slots_dir.iterdir():
                if slot.is_dir() and slot.resolve() not in keep and not slot.name.startswith("."):
                    shutil.rmtree(slot, ignore_errors=True)
                    removed.append(slot.name)
        return removed

    def _swap_link(self, link_name: str, target: Path) -> None:
        link = self.models_dir / link_name
        tmp = self.models_dir / f".{link_name}.{os.getpid()}.tmp"
        tmp.unlink(missing_ok=True)
        os.symlink(os.path.relpath(Path(target).resolve(), self.models_dir.resolve()), tmp)
        os.replace(tmp, link)
        fsync_dir(self.models_dir)


def _name(slot: Path | None) -> str | None:
    return slot.name if slot is not None else None
