"""Settings read from ALPHALAB_* variables and overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.errors import ConfigError
from shared.settings import Settings


def test_reads_nats_url_and_home_from_environment(tmp_path: Path) -> None:
    """ALPHALAB_NATS_URL and ALPHALAB_HOME set the NATS URL and the home directory."""
    environ = {"ALPHALAB_NATS_URL": "nats://example:4222", "ALPHALAB_HOME": str(tmp_path)}
    settings = Settings.load(environ=environ)
    assert settings.nats_url == "nats://example:4222"
    assert settings.home == tmp_path.resolve()
    assert settings.ledger_path == tmp_path.resolve() / "ledger.duckdb"


def test_defaults_without_environment() -> None:
    """With no ALPHALAB_* variables the NATS URL is unset (embedded server) and logs are JSON at info."""
    settings = Settings.load(environ={"PATH": "/bin"})
    assert settings.nats_url is None
    assert (settings.log_format, settings.log_level) == ("json", "info")


def test_empty_variable_counts_as_unset() -> None:
    """An empty ALPHALAB_NATS_URL falls back to the default instead of an empty URL."""
    assert Settings.load(environ={"ALPHALAB_NATS_URL": ""}).nats_url is None


def test_misspelt_variable_is_refused_by_name() -> None:
    """An unknown ALPHALAB_NAST_URL raises ConfigError naming the misspelt variable."""
    with pytest.raises(ConfigError, match="ALPHALAB_NAST_URL"):
        Settings.load(environ={"ALPHALAB_NAST_URL": "nats://example:4222"})


def test_variables_without_prefix_are_ignored() -> None:
    """Variables outside the ALPHALAB_ prefix are not settings and are not refused."""
    assert Settings.load(environ={"NAST_URL": "x", "ALPHALABX": "y"}).nats_url is None


def test_bad_log_level_names_the_variable() -> None:
    """An invalid log level raises ConfigError naming ALPHALAB_LOG_LEVEL."""
    with pytest.raises(ConfigError, match="ALPHALAB_LOG_LEVEL"):
        Settings.load(environ={"ALPHALAB_LOG_LEVEL": "verbose"})


def test_overrides_win_over_environment(tmp_path: Path) -> None:
    """A non-None override takes precedence over the environment; a None override does not."""
    environ = {"ALPHALAB_NATS_URL": "nats://env:4222", "ALPHALAB_LOG_LEVEL": "error", "ALPHALAB_HOME": "/e"}
    settings = Settings.load(environ=environ, nats_url="nats://flag:4222", home=tmp_path, log_level=None)
    assert settings.nats_url == "nats://flag:4222"
    assert settings.home == tmp_path.resolve()
    assert settings.log_level == "error"


def test_home_is_expanded_and_absolute(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A home given with ~ or as a relative path becomes an absolute, expanded path."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    tilde = Settings.load(environ={"ALPHALAB_HOME": "~/lab"}).home
    relative = Settings.load(environ={"ALPHALAB_HOME": "rel/lab"}).home
    assert tilde == tmp_path.resolve() / "lab"
    assert relative == tmp_path.resolve() / "rel" / "lab"
    assert tilde.is_absolute() and relative.is_absolute()
