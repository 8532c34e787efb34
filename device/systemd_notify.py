"""systemd's service notification protocol (sd_notify) and watchdog, without libsystemd.

Under `Type=notify` systemd passes the path of a datagram socket in `$NOTIFY_SOCKET`; the service
sends newline-separated `KEY=VALUE` states to it: `READY=1` once it serves, `WATCHDOG=1` as a
heartbeat, `STOPPING=1` on the way out, `STATUS=...` for `systemctl status`. With `WatchdogSec=`,
systemd also sets `$WATCHDOG_USEC` (and `$WATCHDOG_PID`); a service that misses a heartbeat for that
long is killed with SIGABRT and restarted (`Restart=on-failure`).

A heartbeat must prove the service works, not that some thread is scheduled: `Watchdog` feeds only
while `alive()` holds (the daemon passes "the inference worker is running and not stuck on one
batch"), so a hung model stops the pings and systemd restarts the daemon. Outside systemd (no
`$NOTIFY_SOCKET`) every call is a no-op.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class SystemdNotifier:
    """Sends states to `$NOTIFY_SOCKET` (a path, or an abstract socket written `@name`)."""

    def __init__(self, environ: dict[str, str] | None = None):
        env = os.environ if environ is None else environ
        self.address = _socket_address(env.get("NOTIFY_SOCKET", ""))
        self.watchdog_s = _watchdog_seconds(env)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, *states: str) -> bool:
        """Send `states` (e.g. "READY=1", "STATUS=serving") in one datagram. False if not delivered."""
        if self.address is None:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto("\n".join(states).encode("utf-8"), self.address)
            return True
        except OSError as exc:  # systemd gone or socket removed: the service itself keeps running
            log.warning("systemd.notify_failed", extra={"fields": {"error": str(exc)}})
            return False


class Watchdog:
    """Sends WATCHDOG=1 every half `WatchdogSec` while `alive()` is true; silent once it is false."""

    def __init__(self, notifier: SystemdNotifier, alive: Callable[[], bool], interval_s: float | None = None):
        self.notifier = notifier
        self.alive = alive
        self.interval_s = interval_s if interval_s is not None else (notifier.watchdog_s or 0) / 2
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.missed = False

    def start(self) -> Watchdog:
        if not self.notifier.enabled or self.interval_s <= 0:
            return self  # not under a systemd watchdog: nothing to feed
        self._thread = threading.Thread(target=self._run, name="careeredge-watchdog", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            healthy = _safe(self.alive)
            if healthy:
                self.notifier.notify("WATCHDOG=1")
            elif not self.missed:  # say it once: systemd acts when WatchdogSec passes without a ping
                log.error("watchdog.withheld", extra={"fields": {"reason": "inference worker stalled or dead"}})
                self.notifier.notify("STATUS=inference worker stalled; withholding watchdog pings")
            self.missed = not healthy


def _safe(check: Callable[[], bool]) -> bool:
    try:
        return bool(check())
    except Exception:  # a broken liveness check means "not alive", never a dead watchdog thread
        log.exception("watchdog.check_failed")
        return False


def _socket_address(value: str) -> str | None:
    if not value:
        return None
    if value.startswith("@"):  # Linux abstract namespace
        return "\0" + value[1:]
    return value if value.startswith("/") else None


def _watchdog_seconds(env) -> float | None:
    """`$WATCHDOG_USEC` in seconds, when it is meant for this process (`$WATCHDOG_PID` unset or ours)."""
    pid = env.get("WATCHDOG_PID")
    if pid and pid.strip() != str(os.getpid()):
        return None
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    return usec / 1_000_000 if usec > 0 else None
