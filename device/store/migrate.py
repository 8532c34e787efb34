"""Numbered schema migrations for the prediction store, with a backup before any upgrade.

Migrations are SQL files `NNNN_description.sql` in `device/store/migrations/`, applied in order.
The schema version is SQLite's `PRAGMA user_version`, so version and schema change in the same
transaction (SQLite DDL is transactional): a crash mid-migration leaves the old schema intact.

Before upgrading a database that already holds data, the file is copied with SQLite's online
backup API (a consistent copy even with WAL and other readers) to `<db>.v<N>.bak`, so a migration
bug never costs a user their history.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from shared.migrations import discover, sqlite_statements

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def schema_version(conn: sqlite3.Connection) -> int:
    return conn.execute("PRAGMA user_version").fetchone()[0]


def backup_path(db_path: Path, version: int) -> Path:
    return db_path.with_name(f"{db_path.name}.v{version}.bak")


def _backup(conn: sqlite3.Connection, target: Path) -> None:
    with sqlite3.connect(target) as copy:
        conn.backup(copy)
    copy.close()


def migrate(conn: sqlite3.Connection, db_path: Path, migrations_dir: Path = MIGRATIONS_DIR) -> int:
    """Bring the database to the newest schema. Returns the version it is at afterwards.

    `conn` must be in autocommit mode (isolation_level=None): this function runs its own
    `BEGIN IMMEDIATE` so two processes starting at once cannot both apply a migration.
    """
    migrations = discover(migrations_dir)
    latest = migrations[-1].version if migrations else 0
    current = schema_version(conn)
    if current > latest:
        raise RuntimeError(
            f"{db_path} has schema version {current}, newer than this software "
            f"knows ({latest}); upgrade careeredge or point [store] path elsewhere"
        )
    if current == latest:
        return current
    if current > 0:
        target = backup_path(db_path, current)
        _backup(conn, target)
        log.info("store.backup", extra={"fields": {"from_version": current, "backup": str(target)}})
    conn.execute("BEGIN IMMEDIATE")
    try:
        current = schema_version(conn)  # another process may have migrated while we waited
        for migration in migrations[current:]:
            # executescript would COMMIT first; run the file statement by statement instead.
            for statement in sqlite_statements(migration.sql):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {migration.version}")
            log.info("store.migrated", extra={"fields": {"version": migration.version, "file": migration.path.name}})
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return schema_version(conn)
