"""Device configuration: one TOML file, validated at start, with errors that name the key.

Precedence (later wins): built-in defaults, then the user file (`--config FILE`, else
`$CAREEREDGE_CONFIG`, else `$XDG_CONFIG_HOME/careeredge/config.toml` when it exists), then
environment variables `CAREEREDGE_<SECTION>_<KEY>` (e.g. `CAREEREDGE_WEB_PORT=8080`), then the
command-line flags a command applies with `Config.override`.

Every key, its default and its meaning are in `device/config.example.toml`. Unknown sections and
keys are errors, not silently ignored: a typo like `retention_day` must not quietly keep data forever.
Relative paths in a config file are resolved against the file's directory (the file is portable
with the things it points to); relative paths from defaults, env and flags against the working dir.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.errors import UserError

ENV_PREFIX = "CAREEREDGE_"
# Model A's INT8 bundle ships inside the package, so a fresh install classifies before any training
# (`make pipeline` rebuilds it from the data; `scripts/embed_bundle.py` replaces it).
EMBEDDED_BUNDLE = Path(__file__).resolve().parent / "embedded_bundle"
PRIVACY_MODES = ("full", "hash")


class ConfigError(UserError):
    """A bad configuration value. The message always starts with where it came from and the key."""


def _xdg_dir(variable: str, fallback: str) -> Path:
    return Path(os.environ.get(variable) or Path.home() / fallback) / "careeredge"


def default_config_path() -> Path:
    return _xdg_dir("XDG_CONFIG_HOME", ".config") / "config.toml"


def _default_data_dir() -> Path:
    """$STATE_DIRECTORY when systemd runs the daemon (`StateDirectory=careeredge`: /var/lib/careeredge,
    writable under ProtectHome=), else the XDG data directory."""
    state = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
    return Path(state) if state else _xdg_dir("XDG_DATA_HOME", ".local/share")


def _bounded(default: int | None, low: int, high: int | None = None) -> Any:
    """A field that must lie in [low, high] once every source is applied (None passes)."""
    return field(default=default, metadata={"range": (low, high)})


def _one_of(default: str, choices: tuple[str, ...]) -> Any:
    return field(default=default, metadata={"choices": choices})


@dataclass
class ModelConfig:
    bundle: Path = EMBEDDED_BUNDLE
    backend: str = _one_of("auto", ("auto", "onnxruntime", "hailo"))
    threads: int | None = _bounded(None, 1, 64)
    inference_workers: int = _bounded(2, 1, 16)  # model calls in flight at once (device.batcher)
    hef: Path | None = None  # a HEF outside the bundle (the model zoo's precompiled encoder)
    shadow: Path | None = None  # a second bundle scored off the request path (device.shadow)


@dataclass
class MonitoringConfig:
    window: int = _bounded(500, 20)  # recent predictions the device's own skew is computed over
    interval_s: int = _bounded(600, 10)  # how often it is recomputed


@dataclass
class WebConfig:
    host: str = "127.0.0.1"
    port: int = _bounded(8321, 0, 65535)
    max_request_bytes: int = _bounded(256 * 1024, 1024)
    allowed_hosts: list[str] = field(default_factory=list)
    read_token: str | None = None


@dataclass
class StoreConfig:
    path: Path = field(default_factory=lambda: _default_data_dir() / "predictions.db")
    retention_days: int = _bounded(90, 0, 36_500)
    privacy: str = _one_of("full", PRIVACY_MODES)
    synchronous: str = _one_of("full", ("full", "normal"))


@dataclass
class AdminConfig:
    token: str | None = None


@dataclass
class ProfileConfig:
    skills: list[str] = field(default_factory=list)
    trends_file: Path = field(default_factory=lambda: _default_data_dir() / "skill_trends.json")


@dataclass
class SyncConfig:
    enabled: bool = False
    device_id: str = field(default_factory=socket.gethostname)
    broker_host: str = "127.0.0.1"
    broker_port: int = _bounded(1883, 1, 65535)
    channel: str = "stable"
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    username: str | None = None
    password: str | None = None
    allow_plaintext_password: bool = False
    public_key: Path | None = None
    models_dir: Path = field(default_factory=lambda: _default_data_dir() / "models")
    buffer_cap_rows: int = _bounded(100_000, 1)
    batch_size: int = _bounded(200, 1)


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    web: WebConfig = field(default_factory=WebConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    admin: AdminConfig = field(default_factory=AdminConfig)
    profile: ProfileConfig = field(default_factory=ProfileConfig)
    sync: SyncConfig = field(default_factory=SyncConfig)
    monitoring: MonitoringConfig = field(default_factory=MonitoringConfig)
    source: Path | None = None  # the user file that was read, if any

    def override(self, section: str, **values: Any) -> Config:
        """Apply command-line flags (None means "flag not given"), validated like any other source."""
        target = getattr(self, section)
        for key, value in values.items():
            if value is not None:
                setattr(target, key, _coerce(section, key, value, origin="command line", base_dir=None))
        _check_section(section, target, origin="command line")
        return self

    def to_dict(self, redact: bool = True) -> dict:
        """Plain, JSON-friendly view (secrets redacted) for the status page and logs."""
        out: dict[str, dict] = {}
        for section in SECTIONS:
            values = dataclasses.asdict(getattr(self, section))
            for key, value in values.items():
                if redact and key in SECRET_KEYS and value:
                    values[key] = "***"
                elif isinstance(value, Path):
                    values[key] = str(value)
            out[section] = values
        return out


SECTIONS: dict[str, type] = {
    "model": ModelConfig,
    "web": WebConfig,
    "store": StoreConfig,
    "admin": AdminConfig,
    "profile": ProfileConfig,
    "sync": SyncConfig,
    "monitoring": MonitoringConfig,
}
SECRET_KEYS = {"token", "password", "read_token"}


def _field_types(section: str) -> dict[str, Any]:
    import typing

    return typing.get_type_hints(SECTIONS[section])


def _coerce(section: str, key: str, value: Any, origin: str, base_dir: Path | None) -> Any:
    """Convert one raw value (TOML value, or a string from env/flags) to the field's type."""
    types = _field_types(section)
    if key not in types:
        known = ", ".join(sorted(types))
        raise ConfigError(f"{origin}: unknown key [{section}] {key} (known keys: {known})")
    kind = types[key]
    name = f"[{section}] {key}"
    optional = type(None) in getattr(kind, "__args__", ())
    if optional:
        kind = next(arg for arg in kind.__args__ if arg is not type(None))
        if value is None or (isinstance(value, str) and value.strip() == ""):
            return None
    try:
        return _CONVERTERS[kind](value, base_dir)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{origin}: {name}: {exc}") from None


def _to_int(value: Any, _base: Path | None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise TypeError(f"expected an integer, got {value!r}")
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"expected an integer, got {value!r}") from None


def _to_bool(value: Any, _base: Path | None) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "on"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def _to_str(value: Any, _base: Path | None) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r}")
    return value


def _to_path(value: Any, base_dir: Path | None) -> Path:
    if not isinstance(value, (str, Path)) or str(value).strip() == "":
        raise TypeError(f"expected a path, got {value!r}")
    path = Path(os.path.expandvars(str(value))).expanduser()
    return path if path.is_absolute() or base_dir is None else base_dir / path


def _to_str_list(value: Any, _base: Path | None) -> list[str]:
    if isinstance(value, str):  # env / flags: comma-separated
        value = [item for item in value.split(",")]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise TypeError(f"expected a list of strings, got {value!r}")
    return [item.strip() for item in value if item.strip()]


_CONVERTERS: dict[Any, Callable[[Any, Path | None], Any]] = {
    int: _to_int,
    bool: _to_bool,
    str: _to_str,
    Path: _to_path,
    list[str]: _to_str_list,
}


def _check_section(section: str, values: Any, origin: str) -> None:
    """The bounds declared on the fields, then the rules that span fields."""
    for spec in dataclasses.fields(values):
        name, value = f"[{section}] {spec.name}", getattr(values, spec.name)
        low, high = spec.metadata.get("range", (None, None))
        if value is not None and low is not None and (value < low or (high is not None and value > high)):
            bound = f"between {low} and {high}" if high is not None else f">= {low}"
            raise ConfigError(f"{origin}: {name}: must be {bound}, got {value}")
        choices = spec.metadata.get("choices")
        if choices is not None and value not in choices:
            raise ConfigError(f"{origin}: {name}: must be one of {', '.join(choices)}, got {value!r}")
    for key, token in (
        ("[admin] token", getattr(values, "token", None)),
        ("[web] read_token", getattr(values, "read_token", None)),
    ):
        if section in ("admin", "web") and token is not None and len(token) < 16:
            raise ConfigError(
                f"{origin}: {key}: must be at least 16 characters "
                "(generate one with: python -c 'import secrets; print(secrets.token_urlsafe(24))')"
            )
    if section == "sync" and (values.tls_cert is None) != (values.tls_key is None):
        raise ConfigError(f"{origin}: [sync] tls_cert and tls_key: set both or neither")


def _key_line(text: str, section: str, key: str | None) -> int | None:
    """1-based line of `key` inside `[section]` (or of the header when key is None), for messages."""
    current = None
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith("[") and not stripped.startswith("[["):
            current = stripped.strip("[] \t")
            if key is None and current == section:
                return number
        elif current == section and key and stripped.split("=", 1)[0].strip().strip('"') == key:
            return number
    return None


def _apply_file(config: Config, path: Path) -> None:
    data = _read_toml(path)
    text = path.read_text(encoding="utf-8")
    base_dir = path.resolve().parent

    def where(section: str, key: str | None) -> str:
        line = _key_line(text, section, key)
        return f"{path} line {line}" if line else str(path)

    for section, values in data.items():
        if section not in SECTIONS:
            raise ConfigError(f"{where(section, None)}: unknown section [{section}] (known: {', '.join(SECTIONS)})")
        if not isinstance(values, Mapping):
            raise ConfigError(f"{where(section, None)}: [{section}] must be a table, got {values!r}")
        target = getattr(config, section)
        for key, value in values.items():
            setattr(target, key, _coerce(section, key, value, where(section, key), base_dir))


def _apply_env(config: Config, env: Mapping[str, str]) -> None:
    """`CAREEREDGE_STORE_RETENTION_DAYS=7` sets [store] retention_days; errors name the variable."""
    for variable, value in sorted(env.items()):
        if not variable.startswith(ENV_PREFIX) or variable == ENV_PREFIX + "CONFIG":
            continue
        rest = variable[len(ENV_PREFIX) :].lower()
        section = next((s for s in SECTIONS if rest.startswith(s + "_")), None)
        if section is None:
            continue  # CAREEREDGE_* variables of other tools (cloud side, CI) are not ours to judge
        key = rest[len(section) + 1 :]
        setattr(
            getattr(config, section), key, _coerce(section, key, value, origin=f"environment {variable}", base_dir=None)
        )


def _read_toml(path: Path) -> dict:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"config path is a directory, not a file: {path}") from None
    except PermissionError:
        raise ConfigError(f"config file not readable (permission denied): {path}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None


def load_config(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Defaults <- user file <- environment. Raises ConfigError (exit 2, one line) on any bad value."""
    env = os.environ if env is None else env
    config = Config()
    if path is None and env.get(ENV_PREFIX + "CONFIG"):
        path = env[ENV_PREFIX + "CONFIG"]
    if path is None and default_config_path().is_file():
        path = default_config_path()
    if path is not None:
        path = Path(path).expanduser()
        _apply_file(config, path)
        config.source = path
    _apply_env(config, env)
    for section in SECTIONS:
        _check_section(section, getattr(config, section), origin=str(config.source) if config.source else "config")
    return config
