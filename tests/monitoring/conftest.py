"""The collector-store fixtures of tests/fleet (a real PostgreSQL and a SQLite file), for the
monitoring tests that read what the collector stored."""

from tests.fleet.conftest import postgres_server, postgres_url, storage, store_url  # noqa: F401
from tests.daemon.conftest import tiny_bundle  # noqa: E402, F401
