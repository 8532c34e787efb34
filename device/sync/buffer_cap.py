"""The offline buffer's cap policy: drop the oldest unsynced predictions beyond the cap.

Why oldest: while a device is offline for days, the cloud learns most from what the device sees
now (drift monitoring, Model B's pseudo-labels), so the freshest rows are the ones worth keeping.
The store never deletes unsynced rows by itself (pruning only touches synced ones); this is the one
place that does, and every dropped row is counted and reported upstream.
"""

from __future__ import annotations

import sqlite3


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
