"""Model slots on the device: one directory per installed bundle, and two symlinks.

    models_dir/
      slots/<version>-<sha8>/   unpacked, verified bundles (never modified after install)
      active   -> slots/...     what the daemon serves
      previous -> slots/...     what `careeredge model rollback` (or a failed health check) returns to

Activation is a symlink swap: a new link is created beside `active` and renamed over it. rename(2)
is atomic, so a reader resolving `active` sees the old bundle or the new one, never a half state,
even if the power goes out mid-update.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from shared.bundle import read_manifest
from shared.errors import UserError
from shared.files import fsync_dir

if TYPE_CHECKING:
    from device.config import Config

ACTIVE = "active"
PREVIOUS = "previous"
SLOTS = "slots"


def resolve_bundle(config: Config, pinned: bool = False) -> Path:
    """The bundle to serve: pinned (`--model`) > active over-the-air slot > `[model] bundle`."""
    if not pinned:
        active_link = Path(config.sync.models_dir) / ACTIVE
        if active_link.is_symlink() and active_link.resolve().is_dir():
            return active_link.resolve()
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
        """Put both links back exactly as they were (automatic rollback after a failed health check)."""
        for name, target in ((ACTIVE, active), (PREVIOUS, previous)):
            if target is None:
                (self.models_dir / name).unlink(missing_ok=True)
            else:
                self._swap_link(name, target)

    def prune(self) -> list[str]:
        """Delete slots that are neither active nor previous (a Pi's SD card is small)."""
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
