"""The collector's numbered schema migrations, one folder per engine, the same numbers in both.

`migrations/sqlite/NNNN_description.sql` and `migrations/postgresql/NNNN_description.sql` hold
the same change for each engine, so "schema version N" means the same tables whichever store a
fleet runs. Each engine applies them in one transaction with its own version record (SQLite's
`PRAGMA user_version`, PostgreSQL's `schema_migrations` table) and refuses a database whose
version is newer than this software knows: an older collector must never write into tables it
does not understand.
"""

from __future__ import annotations

from pathlib import Path

from shared.errors import UserError
from shared.migrations import Migration, discover

MIGRATIONS_ROOT = Path(__file__).with_name("migrations")
ENGINES = ("sqlite", "postgresql")


class SchemaTooNew(UserError):
    """The database was migrated by a newer careeredge: refuse it rather than corrupt it."""

    def __init__(self, where: str, found: int, known: int):
        super().__init__(
            f"collector store {where} has schema version {found}, newer than this careeredge knows ({known}): "
            "upgrade careeredge on every collector, or point --store at another database"
        )


def migrations(engine: str, root: Path = MIGRATIONS_ROOT) -> list[Migration]:
    """The engine's migrations in order."""
    return discover(root / engine)


def pending(engine: str, current: int, where: str) -> list[Migration]:
    """What to apply to a database at `current`; SchemaTooNew when it is ahead of this software."""
    known = migrations(engine)
    latest = known[-1].version if known else 0
    if current > latest:
        raise SchemaTooNew(where, current, latest)
    return known[current:]


def latest_version(engine: str) -> int:
    known = migrations(engine)
    return known[-1].version if known else 0
