"""Configuration: precedence flags > environment > config.toml > defaults, and one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

from app.config import DEFAULT_WORKFLOWS, Config, ConfigError, load_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "beacon.toml"
    path.write_text(text)
    return path


def test_defaults_match_the_seed() -> None:
    cfg, warnings = load_config(None, {})
    assert cfg == Config() and warnings == []
    assert (cfg.rest.port, cfg.realtime.port) == (8000, 7000)
    assert cfg.pubsub.url == "memory://" and cfg.store.url.startswith("sqlite:///")
    assert dict(cfg.workflows) == DEFAULT_WORKFLOWS


def test_shipped_config_toml_equals_the_defaults() -> None:
    cfg, _ = load_config(ROOT / "config.toml", {})
    assert cfg == Config()


def test_precedence(tmp_path: Path) -> None:
    path = write(tmp_path, '[rest]\nport = 8100\nhost = "0.0.0.0"\n[realtime]\nport = 7100\n[runs]\nreplay_cap = 5\n')
    env = {
        "REST_API_PORT": "8200",
        "SOCKETIO_CORS_ORIGINS": "https://a.example, https://b.example",
        "BEACON_RUNS_REPLAY_CAP": "7",
        "PUBSUB_URL": "redis://127.0.0.1:6379/0",
    }
    cfg, _ = load_config(path, env, {"rest.port": "8300"})
    assert cfg.rest.port == 8300  # flag beats environment
    assert cfg.rest.host == "0.0.0.0"  # file beats default
    assert cfg.realtime.port == 7100
    assert cfg.runs.replay_cap == 7  # environment beats file
    assert cfg.realtime.cors_origins == ("https://a.example", "https://b.example")
    assert cfg.pubsub.url == "redis://127.0.0.1:6379/0"


def test_workflows_from_file_and_environment(tmp_path: Path) -> None:
    path = write(tmp_path, '[workflows]\nmine = "pkg.mod:factory"\n')
    cfg, _ = load_config(path, {"BEACON_WORKFLOWS_OTHER": "x.y:z"})
    assert cfg.workflows["mine"] == "pkg.mod:factory" and cfg.workflows["other"] == "x.y:z"
    assert cfg.workflows["review"] == DEFAULT_WORKFLOWS["review"]


def test_unknown_environment_variable_is_a_warning() -> None:
    _, warnings = load_config(None, {"BEACON_REST_PROT": "1", "HOME": "/root"})
    assert warnings == ["ignoring unknown environment variable BEACON_REST_PROT"]


@pytest.mark.parametrize(
    ("env", "file", "needle"),
    [
        ({"REST_API_PORT": "abc"}, None, "REST_API_PORT='abc': expected an integer"),
        ({"SOCKETIO_PORT": "70000"}, None, "SOCKETIO_PORT (realtime.port=70000: must be between 0 and 65535)"),
        ({"PUBSUB_URL": "kafka://x"}, None, "PUBSUB_URL (pubsub.url='kafka://x'"),
        ({"STORE_URL": "mysql://x"}, None, "STORE_URL (store.url='mysql://x'"),
        ({"BEACON_LOGGING_LEVEL": "LOUD"}, None, "BEACON_LOGGING_LEVEL (logging.level='LOUD'"),
        ({}, "[rest]\nprot = 1\n", "unknown key rest.prot"),
        ({}, "[reset]\nport = 1\n", "unknown section 'reset'"),
        ({}, "[rest]\nport = true\n", "rest.port=True: expected an integer"),
        ({}, "[rest\n", "invalid TOML"),
        ({}, '[workflows]\nx = "no-colon"\n', "workflows.x='no-colon': expected 'module:factory'"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, env: dict, file: str | None, needle: str) -> None:
    path = write(tmp_path, file) if file is not None else None
    with pytest.raises(ConfigError) as exc:
        load_config(path, env)
    assert needle in str(exc.value)
    assert "\n" not in str(exc.value)


def test_explicit_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "absent.toml", {})


def run_py(*args: str, env: dict[str, str] | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "run.py"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
        cwd=cwd,
    )


def test_cli_help_lists_modes_and_flags() -> None:
    result = run_py("--help")
    assert result.returncode == 0
    for word in ("rest", "realtime", "--config", "--rest-port", "--socketio-port", "--pubsub-url", "--store-url"):
        assert word in result.stdout


def test_cli_bad_value_stops_with_one_line(tmp_path: Path) -> None:
    result = run_py(env={"REST_API_PORT": "eighty"}, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "beacon: configuration error: REST_API_PORT='eighty': expected an integer"
    ]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--socketio-port", "abc"), "--socketio-port='abc': expected an integer"),
        (("--cors-origins", "http://a", "--grace-period", "-1"), "--grace-period (runs.grace_period=-1.0: must not"),
    ],
)
def test_cli_bad_flag_names_the_flag(tmp_path: Path, flags: tuple[str, ...], message: str) -> None:
    result = run_py(*flags, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith(f"beacon: configuration error: {message}"), result.stderr


@pytest.mark.parametrize("mode", ["rest", "realtime"])
def test_split_process_needs_redis(tmp_path: Path, mode: str) -> None:
    result = run_py(mode, "--rest-port", "0", "--socketio-port", "0", cwd=tmp_path)
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert "PUBSUB_URL=redis://" in line and f"'{mode}' alone needs a shared bus" in line


def test_cli_bad_workflow_is_named(tmp_path: Path) -> None:
    result = run_py(
        "--rest-port",
        "0",
        "--socketio-port",
        "0",
        cwd=tmp_path,
        env={"BEACON_WORKFLOWS_BROKEN": "no.such.module:build"},
    )
    assert result.returncode == 2
    assert "workflows.broken='no.such.module:build': cannot load it" in result.stderr
