"""`alphalab new-domain`: a working adapter folder to start from, one per data kind.

Tabular has a template of its own (generated data, a small numpy classifier); the other kinds start
from the built-in adapter of that kind, copied whole, so what is written passes Phase 2 as it is.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from shared.domain import MANIFEST_FILE, builtin_domains, load_domain
from shared.errors import ConfigError

__all__ = ["KINDS", "new_domain"]

_TEMPLATES = Path(__file__).parent / "templates"
KINDS = {"tabular": "template:tabular", "timeseries": "traffic", "text": "lm_speedrun", "kernels": "kernels"}


def new_domain(name: str, kind: str, parent: Path) -> Path:
    """Write adapter `name` of `kind` into `parent/name`; refuses an existing folder or a bad name."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", name):
        raise ConfigError(f"NAME: {name!r} must be 1-64 letters, digits, '_', '.' or '-'")
    target = parent / name
    if target.exists():
        raise ConfigError(f"{target} already exists; choose another NAME or remove it")
    source = _source(kind)
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    manifest = target / MANIFEST_FILE
    text = re.sub(r'^name = ".*"$', f'name = "{name}"', manifest.read_text(), count=1, flags=re.M)
    manifest.write_text(text.replace("{name}", name))
    load_domain(str(target))  # what was written must load
    return target


def _source(kind: str) -> Path:
    origin = KINDS.get(kind)
    if origin is None:
        raise ConfigError(f"--kind: {kind!r} is not one of {sorted(KINDS)}")
    if origin.startswith("template:"):
        return _TEMPLATES / origin.removeprefix("template:")
    if origin not in builtin_domains():
        raise ConfigError(f"--kind {kind}: its built-in adapter {origin!r} is not installed here")
    return builtin_domains()[origin]
