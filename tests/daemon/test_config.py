"""Config: defaults, file, env and flags in that order; every error names the key."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from device.cli import main
from device.config import EMBEDDED_BUNDLE, Config, ConfigError, load_config

EXAMPLE = Path(__file__).resolve().parents[2] / "device" / "config.example.toml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_documented_example_equals_the_defaults():
    from_example = load_config(EXAMPLE, env={}).to_dict()
    defaults = Config().to_dict()
    # The example spells the defaults out (the bundle stays commented: its default is the shipped one).
    assert from_example == defaults
    assert Path(defaults["model"]["bundle"]) == EMBEDDED_BUNDLE


def test_precedence_defaults_file_env_flags(tmp_path):
    path = write(tmp_path, '[web]\nport = 9000\nhost = "0.0.0.0"\n[store]\nretention_days = 7\n')
    config = load_config(path, env={"CAREEREDGE_WEB_PORT": "9100", "CAREEREDGE_PROFILE_SKILLS": "Python, sql"})
    assert (config.web.host, config.web.port, config.store.retention_days) == ("0.0.0.0", 9100, 7)
    assert config.profile.skills == ["Python", "sql"]
    assert config.web.max_request_bytes == Config().web.max_request_bytes
    config.override("web", port=9200, host=None)
    assert (config.web.host, config.web.port) == ("0.0.0.0", 9200)


def test_config_env_variable_and_relative_paths(tmp_path):
    path = write(tmp_path, '[model]\nbundle = "bundles/a"\n')
    config = load_config(env={"CAREEREDGE_CONFIG": str(path)})
    assert config.model.bundle == tmp_path.resolve() / "bundles" / "a"
    assert config.source == path


@pytest.mark.parametrize(
    "text, expected",
    [
        ('[web]\nport = "eighty"\n', "line 2: [web] port: expected an integer"),
        ("[web]\nport = 70000\n", "[web] port: must be between 0 and 65535"),
        ("[store]\n\nretention_day = 3\n", "line 3: unknown key [store] retention_day"),
        ('[store]\nprivacy = "none"\n', "[store] privacy: must be one of full, hash"),
        ("[modle]\nbundle = 1\n", "line 1: unknown section [modle]"),
        ('[admin]\ntoken = "short"\n', "[admin] token: must be at least 16 characters"),
        ("[sync]\nenabled = 3\n", "[sync] enabled: expected true or false"),
        ("[web\nport = 1\n", "invalid TOML"),
    ],
)
def test_errors_name_the_key(tmp_path, text, expected):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), env={})
    assert expected in info.value.format_message()


def test_env_errors_name_the_variable():
    with pytest.raises(ConfigError, match=r"environment CAREEREDGE_STORE_RETENTION_DAYS: \[store\] retention_days"):
        load_config(env={"CAREEREDGE_STORE_RETENTION_DAYS": "a week"})


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "absent.toml", env={})
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe[web]")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(binary, env={})


def test_serve_with_a_bad_config_exits_2_with_one_line(tmp_path):
    path = write(tmp_path, '[web]\nport = "eighty"\n')
    result = CliRunner().invoke(main, ["serve", "--config", str(path)])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "[web] port" in lines[0] and "line 2" in lines[0]
    assert "Traceback" not in result.output
