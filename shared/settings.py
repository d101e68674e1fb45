"""Settings shared by every service and the CLI, read once from `ALPHALAB_*` variables and flags.

Every default lives here. An `ALPHALAB_*` variable that is not a setting is refused by name, because
a misspelt `ALPHALAB_NAST_URL` silently falling back to an embedded server would be worse than an error.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.errors import ConfigError

__all__ = ["ENV_PREFIX", "Settings"]

ENV_PREFIX = "ALPHALAB_"


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    nats_url: str | None = Field(default=None, description="NATS server to use; unset: start an embedded one")
    home: Path = Field(default=Path.home() / ".alphalab", description="where the ledger and NATS store live")
    instance: str = Field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}", min_length=1)
    log_format: Literal["json", "console"] = "json"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    sandbox: Literal["auto", "bubblewrap", "namespaces", "none"] = Field(
        default="auto", description="how candidates are isolated (read by shared.sandbox); auto: strongest"
    )
    gpus: str = Field(
        default="auto",
        pattern=r"^(auto|none|[0-9]+(,[0-9]+)*)$",
        description="the GPUs a worker may use: auto (every one nvidia-smi lists), none, or indices: 0,1",
    )
    snapshot_every: int = Field(
        default=10_000,
        ge=0,
        description="events between snapshots of the projections (0: none; see shared.snapshots)",
    )

    @property
    def ledger_path(self) -> Path:
        return self.home / "ledger.duckdb"

    @property
    def nats_dir(self) -> Path:
        return self.home / "nats"

    @property
    def inputs_cache(self) -> Path:
        """Where this host keeps campaigns' adapters and data files, resolved from the blob store."""
        return self.home / "cache"

    @classmethod
    def load(cls, environ: Mapping[str, str] = os.environ, **overrides: Any) -> Settings:
        """Settings from `environ`, with non-None `overrides` (from CLI flags) taking precedence."""
        known = {ENV_PREFIX + name.upper(): name for name in cls.model_fields}
        unknown = sorted(key for key in environ if key.startswith(ENV_PREFIX) and key not in known)
        if unknown:
            raise ConfigError(f"unknown setting {unknown[0]}; known settings: {', '.join(sorted(known))}")
        values: dict[str, Any] = {known[key]: environ[key] for key in known if environ.get(key)}
        values.update({key: value for key, value in overrides.items() if value is not None})
        try:
            settings = cls(**values)
        except ValidationError as err:
            first = err.errors(include_url=False)[0]
            name = str(first["loc"][0]) if first["loc"] else "?"
            raise ConfigError(
                f"setting {ENV_PREFIX}{name.upper()} (--{name.replace('_', '-')}): {first['msg']}"
            ) from None
        return settings.model_copy(update={"home": settings.home.expanduser().resolve()})
