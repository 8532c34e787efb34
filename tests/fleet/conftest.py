"""Fixtures for the collector and fleet tests: a real PostgreSQL, a real mosquitto, both stores."""

from __future__ import annotations

import pytest

from cloud.collector.storage import open_storage
from tests.conftest import require
from tests.support.mosquitto import Mosquitto, mosquitto_binary
from tests.support.postgres import Postgres, postgres_bin_dir

ENGINES = ("sqlite", "postgresql")


@pytest.fixture(scope="session")
def postgres_server():
    require(postgres_bin_dir() is not None, "PostgreSQL (Debian package `postgresql`: initdb, pg_ctl)")
    with Postgres() as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server) -> str:
    """A fresh, empty database on the session's server."""
    return postgres_server.create_database()


@pytest.fixture(params=ENGINES)
def store_url(request, tmp_path) -> str:
    """The same test against each engine: a SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "collector.sqlite")
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def storage(store_url):
    store = open_storage(store_url, collector="test-collector")
    store.open()
    yield store
    store.close()


@pytest.fixture
def broker(tmp_path):
    require(mosquitto_binary() is not None, "mosquitto (Debian package `mosquitto`)")
    with Mosquitto(tmp_path / "broker") as running:
        yield running
