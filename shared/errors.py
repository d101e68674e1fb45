"""One base error for everything AlphaLab refuses, so the CLI can print it as one clear line."""

from __future__ import annotations

__all__ = ["AlphaLabError", "ConfigError", "MalformedEvent", "NatsUnavailable"]


class AlphaLabError(Exception):
    """Base of every error whose message is meant for the operator."""


class ConfigError(AlphaLabError):
    """A setting, flag or file is wrong; the message names it and says what to do."""


class NatsUnavailable(AlphaLabError):
    """Neither the configured NATS server nor an embedded one could be reached or started."""


class MalformedEvent(AlphaLabError):
    """Raw bytes that are not a valid event; the message is the reason kept in the dead letter."""
