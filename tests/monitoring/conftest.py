"""Fixtures shared with other test folders: the collector stores of tests/fleet (a real PostgreSQL and
a SQLite file) and the tiny model bundle of tests/daemon."""

from tests.daemon.conftest import tiny_bundle  # noqa: F401
from tests.fleet.conftest import postgres_server, postgres_url, storage, store_url  # noqa: F401
