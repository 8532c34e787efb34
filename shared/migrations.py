"""Numbered SQL migration files: `NNNN_description.sql`, applied in order, numbered 1..N without gaps.

The device's prediction store and the cloud's collector stores each keep their own folder of
migrations and their own way of recording the version; what a migration file is, and how a folder of
them is read and checked, is shared here. Stdlib only.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path

MIGRATION_FILE = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")


def discover(migrations_dir: Path) -> list[Migration]:
    """The migration files in order; numbering must be 1..N without gaps or duplicates."""
    migrations = []
    for path in sorted(Path(migrations_dir).glob("*.sql")):
        match = MIGRATION_FILE.match(path.name)
        if not match:
            raise RuntimeError(f"migration file {path} does not match NNNN_description.sql")
        migrations.append(Migration(int(match.group(1)), path))
    found = [m.version for m in migrations]
    if found != list(range(1, len(migrations) + 1)):
        raise RuntimeError(
            f"migrations in {migrations_dir} must be numbered 1..{len(migrations)} without gaps, found {found}"
        )
    return migrations


def sqlite_statements(sql: str) -> list[str]:
    """A migration file as complete SQLite statements, run one by one inside the caller's transaction
    (`executescript` would commit before running them)."""
    statements, buffer = [], ""
    for line in sql.splitlines(keepends=True):
        if line.strip().startswith("--"):
            continue
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        raise RuntimeError(f"incomplete SQL statement at the end of a migration: {buffer.strip()[:80]!r}")
    return statements
