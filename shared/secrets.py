"""API keys: which variables hold them, and scrubbing their values out of anything we write.

Keys live only in the environment of the processes that call a model (the Strategist and the
Workers); the sandbox builds its environment from scratch, and the stack gives the other services an
environment without them. Everything those processes write — log lines, transcripts, events — goes
through `redact` as a last line of defence: a key that found its way into a string is replaced by a
marker naming its variable, never stored.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping

__all__ = ["is_secret_name", "redact", "secrets_in", "without_secrets"]

_SECRET_NAME = re.compile(r"(API_KEY|AUTH_TOKEN|ACCESS_TOKEN|SECRET_KEY|_SECRET)$")
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


def without_secrets(environ: Mapping[str, str], keep: Iterable[str] = ()) -> dict[str, str]:
    """`environ` less every secret variable except those in `keep`."""
    kept = set(keep)
    return {name: value for name, value in environ.items() if name in kept or not is_secret_name(name)}
