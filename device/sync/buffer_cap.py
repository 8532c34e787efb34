"""The offline buffer's cap policy: drop the oldest unsynced predictions beyond the cap.

Why oldest: while a device is offline for days, the cloud learns most from what the device sees
now (drift monitoring, Model B's pseudo-labels), so the freshest rows are the ones worth keeping.
The store never deletes unsynced rows by itself (pruning only touches synced ones); this is the one
place that does, and every dropped row is counted and reported upstream. The count waits in a
`DropLedger` until a batch carrying it is acknowledged, and the ledger is on disk
(`models_dir/upload_state.json`), so a restart never loses it. A batch whose acknowledgement is lost
to a crash reports its count again (at least once, like the rows).
"""

from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path

from shared.files import atomic_write_json

log = logging.getLogger("careeredge.sync")


class DropLedger:
    """Rows dropped under the cap: not yet acknowledged by the collector (`unreported` are not in any
    batch yet), and the lifetime total. Written only when those change (a drop, an acknowledged report)."""

    def __init__(self, path: Path | None = None):
        self.path = Path(path) if path is not None else None
        self.unacknowledged, self.total = self._load()
        self.unreported = self.unacknowledged  # what was in flight before a restart is reported again

    def _load(self) -> tuple[int, int]:
        if self.path is None:
            return 0, 0
        try:
            state = json.loads(self.path.read_text())
            return int(state["unacknowledged_drops"]), int(state["total_drops"])
        except FileNotFoundError:
            return 0, 0
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.error("unreadable %s (%s): dropped-row counts start again from 0", self.path, exc)
            return 0, 0

    def dropped(self, rows: int) -> None:
        self.unacknowledged += rows
        self.unreported += rows
        self.total += rows
        self._save()

    def take(self) -> int:
        """The count for the next batch."""
        taken, self.unreported = self.unreported, 0
        return taken

    def give_back(self, rows: int) -> None:
        """A batch carrying `rows` was refused or given up on: the next one reports them."""
        self.unreported += rows

    def acknowledged(self, rows: int) -> None:
        if rows:
            self.unacknowledged = max(0, self.unacknowledged - rows)
            self._save()

    def _save(self) -> None:
        if self.path is not None:
            atomic_write_json(
                self.path, {"unacknowledged_drops": self.unacknowledged, "total_drops": self.total}, indent=None
            )


def drop_oldest_unsynced(store, count: int) -> int:
    """Delete up to `count` of the oldest unsynced rows; return how many were deleted."""
    if count <= 0:
        return 0
    method = getattr(store, "drop_oldest_unsynced", None)
    if method is not None:  # the store's own implementation, when it has one
        return int(method(count))
    # Otherwise act on the store contract's table directly, in one short write transaction
    # (WAL mode: the daemon's readers are not blocked; its writers wait on the busy timeout).
    with sqlite3.connect(store.path, timeout=10) as conn:
        cursor = conn.execute(
            "DELETE FROM predictions WHERE uuid IN (SELECT uuid FROM predictions WHERE synced_at IS NULL"
            " ORDER BY created_at, rowid LIMIT ?)",
            (count,),
        )
        deleted = cursor.rowcount
    conn.close()
    return deleted
