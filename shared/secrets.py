"""API keys: which variables hold them, and scrubbing their values out of anything we write.

Keys live only in the environment of the processes that call a model (the Strategist and the
Workers); the sandbox builds its environment from scratch, and the stack gives the other services an
environment without them. Everything a process writes — log lines, transcripts, every event it
publishes and every blob it stores — goes through `redact` as a last line of defence: a key that found
its way into a model's words or a candidate's code is replaced by a marker naming its variable, never
stored. A variable holds a secret when its name ends in KEY, TOKEN, SECRET, PASSWORD or CREDENTIALS,
which is why a model's `api_key_env` must be named so.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit, urlunsplit

__all__ = [
    "SECRET_NAME",
    "is_secret_name",
    "redact",
    "redact_bytes",
    "secrets_in",
    "shown_url",
    "without_secrets",
]

SECRET_NAME = r"(KEY|TOKEN|SECRET|PASSWORD|CREDENTIALS?)$"  # a variable named so holds a secret
_SECRET_NAME = re.compile(SECRET_NAME)
_MIN_SECRET_CHARS = 8  # shorter values ("none", "x") are placeholders, and replacing them would garble text


def is_secret_name(name: str) -> bool:
    return bool(_SECRET_NAME.search(name.upper()))


def secrets_in(environ: Mapping[str, str] = os.environ, names: Iterable[str] = ()) -> dict[str, str]:
    """Secret values by variable: every variable whose name says it holds a key, and `names`."""
    wanted = {name for name in environ if is_secret_name(name)} | set(names)
    return {name: environ[name] for name in sorted(wanted) if len(environ.get(name, "")) >= _MIN_SECRET_CHARS}


def redact(text: str, secrets: Mapping[str, str] | None = None) -> str:
    """`text` with every secret value replaced by `[redacted NAME]` (default: this process's secrets)."""
    for name, value in (secrets_in() if secrets is None else secrets).items():
        if value in text:
            text = text.replace(value, f"[redacted {name}]")
    return text


def redact_bytes(data: bytes, secrets: Mapping[str, str] | None = None) -> bytes:
    """`redact` for encoded text (an event's JSON, a blob): what every publish and blob put goes through."""
    for name, value in (secrets_in() if secrets is None else secrets).items():
        encoded = value.encode()
        if encoded in data:
            data = data.replace(encoded, f"[redacted {name}]".encode())
    return data


def without_secrets(environ: Mapping[str, str], keep: Iterable[str] = ()) -> dict[str, str]:
    """`environ` less every secret variable except those in `keep`."""
    kept = set(keep)
    return {name: value for name, value in environ.items() if name in kept or not is_secret_name(name)}


def shown_url(url: str) -> str:
    """`url` fit to print: its password (nats://user:password@host), or a token standing alone in the
    user's place (nats://token@host, NATS's token auth), replaced by `***`."""
    parts = urlsplit(url)
    if parts.username is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    shown = f"{parts.username}:***" if parts.password is not None else "***"
    return urlunsplit(parts._replace(netloc=f"{shown}@{host}"))
