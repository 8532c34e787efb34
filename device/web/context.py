"""Access to the shared service objects from inside a request."""

from __future__ import annotations

from flask import current_app

from device.config import Config
from device.daemon import Daemon


def daemon() -> Daemon:
    return current_app.extensions["careeredge"]


def config() -> Config:
    return current_app.config["CAREEREDGE_CONFIG"]
