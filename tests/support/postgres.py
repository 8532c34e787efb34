"""A real PostgreSQL server for tests and benches: initdb + pg_ctl in a temp dir, a free loopback port.

Debian's `postgresql` package keeps its binaries in /usr/lib/postgresql/<major>/bin (not on PATH);
the newest installed major is used. initdb refuses to run as root, so under root (CI, containers)
the cluster belongs to the `postgres` account the package creates, in a temporary directory that
account can enter. Logins use a password (scram-sha-256) on 127.0.0.1, as a production server
would; each test gets a database of its own (`create_database`).
"""

from __future__ import annotations

import getpass
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

from tests.support.mosquitto import free_loopback_port

SUPERUSER = "careeredge"


def postgres_bin_dir() -> Path | None:
    """The directory holding initdb / pg_ctl / postgres, or None when PostgreSQL is not installed."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0
    )
    for directory in reversed(candidates):
        if (directory / "initdb").exists() and (directory / "pg_ctl").exists():
            return directory
    found = shutil.which("pg_ctl")
    return Path(found).resolve().parent if found and (Path(found).resolve().parent / "initdb").exists() else None


class Postgres:
    host = "127.0.0.1"

    def __init__(self, port: int | None = None, settings: dict[str, str] | None = None):
        self.port = port or free_loopback_port()
        self.password = uuid.uuid4().hex
        # Tests trade durability for speed; a bench passes {"fsync": "on", ...} to measure the real thing.
        self.settings = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off", **(settings or {})}
        self.bin_dir = postgres_bin_dir()
        self.root: Path | None = None
        self.owner = "postgres" if os.geteuid() == 0 else getpass.getuser()

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_path(self) -> Path:
        return self.root / "postgres.log"

    def url(self, database: str = "postgres", password: str | None = None) -> str:
        secret = self.password if password is None else password
        return f"postgresql://{SUPERUSER}:{secret}@{self.host}:{self.port}/{database}"

    def _run(self, *args: str) -> None:
        kwargs = {"user": self.owner} if os.geteuid() == 0 else {}
        result = subprocess.run(
            [str(self.bin_dir / args[0]), *args[1:]],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=self.root,
            env={**os.environ, "LC_ALL": "C.UTF-8"},
            **kwargs,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{args[0]} failed ({result.returncode}): {result.stderr.strip()[-2000:]}")

    def init(self) -> Postgres:
        if self.bin_dir is None:
            raise RuntimeError("PostgreSQL is not installed (Debian package `postgresql`)")
        self.root = Path(tempfile.mkdtemp(prefix="careeredge-pg-"))
        password_file = self.root / "password"
        password_file.write_text(self.password + "\n")
        if os.geteuid() == 0:
            account = pwd.getpwnam(self.owner)
            for path in (self.root, password_file):
                os.chown(path, account.pw_uid, account.pw_gid)
        self._run(
            "initdb",
            "-D",
            str(self.data_dir),
            "-U",
            SUPERUSER,
            f"--pwfile={password_file}",
            "--auth-host=scram-sha-256",
            "--auth-local=scram-sha-256",
            "--encoding=UTF8",
            "--no-instructions",
        )
        password_file.unlink()
        return self

    def start(self) -> Postgres:
        if self.root is None:
            self.init()
        options = [f"-c listen_addresses={self.host}", f"-p {self.port}", f"-c unix_socket_directories={self.root}"]
        options += [f"-c {name}={value}" for name, value in self.settings.items()]
        self._run("pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_path), "-o", " ".join(options), "-w", "start")
        return self

    def stop(self, mode: str = "fast") -> None:
        if self.root is not None and (self.data_dir / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "stop")

    def restart(self) -> Postgres:
        self.stop()
        return self.start()

    def destroy(self) -> None:
        self.stop()
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def create_database(self, name: str | None = None) -> str:
        """A fresh, empty database; returns its URL."""
        import psycopg

        name = name or f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except (OSError, TypeError):
            return "(no log)"

    def __enter__(self) -> Postgres:
        try:
            return self.start()
        except BaseException:
            self.destroy()
            raise

    def __exit__(self, *exc) -> None:
        self.destroy()
