"""Where the collector puts what the fleet sends, chosen by a URL.

- `sqlite:///var/lib/careeredge/collector.sqlite` or a plain path: `SqliteStorage`, the default
  for one machine (one collector, or a few sharing the file).
- `postgresql://user@host:5432/db`: `PostgresStorage`, for a fleet whose N collectors share one
  database (psycopg 3, a connection pool, one round trip per MQTT batch).

The interface both implement is in storage_api.py.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from cloud.collector.sqlite_storage import SqliteStorage
from cloud.collector.storage_api import CollectorStorage, redact_url
from shared.errors import UserError

__all__ = ["SqliteStorage", "open_storage"]


def open_storage(url: str, collector: str = "collector") -> CollectorStorage:
    """The storage a URL names (not yet opened: call `open()`, which may need retrying)."""
    scheme = urlsplit(url).scheme.lower() if "://" in url else ""
    if scheme in ("postgresql", "postgres"):
        from cloud.collector.postgres_storage import PostgresStorage

        return PostgresStorage(url, application_name=collector)
    if scheme == "sqlite":
        path = urlsplit(url).path
        if not path:
            raise UserError(f"store URL {redact_url(url)!r} names no file (sqlite:///path/to/collector.sqlite)")
        scheme = ""
        url = path
    if scheme:
        raise UserError(
            f"store URL {redact_url(url)!r}: unsupported scheme {scheme!r} (use postgresql://... or sqlite:///path)"
        )
    return SqliteStorage(Path(url), open_now=False)
