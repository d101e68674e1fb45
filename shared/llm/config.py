"""Which model each role uses: the `--llm` flag, the campaign file's `[roles]` and `[prices]`, and
the defaults, merged into the `LlmPlan` that travels in `campaign-started`.

A role named on the flag replaces that role's whole entry from the file: a flag that switches
provider should not inherit the file's base URL or key variable. Only `roles` and `prices` are read
from the file; its other tables belong to the rest of the campaign's settings.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar, get_args

from pydantic import ValidationError

from shared.errors import ConfigError
from shared.events.catalogue import LlmPlan, ModelChoice, Price

__all__ = ["DEFAULT_MODELS", "PROVIDERS", "ROLES", "load_llm_config", "parse_llm_spec", "plan"]

_Part = TypeVar("_Part", ModelChoice, Price)

ROLES = ("strategist", "worker")
PROVIDERS: tuple[str, ...] = get_args(ModelChoice.model_fields["provider"].annotation)
DEFAULT_MODELS: Mapping[str, ModelChoice] = {
    "strategist": ModelChoice(provider="anthropic", model="claude-opus-4-6"),
    "worker": ModelChoice(provider="anthropic", model="claude-sonnet-4-5"),
}


def parse_llm_spec(text: str) -> dict[str, ModelChoice]:
    """`strategist=anthropic:claude-opus-4-6,worker=openai-compatible:qwen2.5-coder@http://host/v1`."""
    roles: dict[str, ModelChoice] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        role, equals, model = (side.strip() for side in item.partition("="))
        if not equals or not model:
            raise ConfigError(f"--llm: {item!r} is not role=provider:model (e.g. worker=openai:gpt-5.2)")
        _check_role(role, where="--llm")
        model, _, base_url = model.partition("@")
        roles[role] = _choice(model, {"base_url": base_url or None}, where=f"--llm {role}")
    if not roles:
        raise ConfigError("--llm: empty; give role=provider:model, e.g. strategist=anthropic:claude-opus-4-6")
    return roles


def load_llm_config(path: Path) -> LlmPlan:
    """The `[roles.<role>]` and `[prices."<provider:model>"]` tables of a campaign's TOML file."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    roles = {}
    for role, entry in _table(data, "roles", where=str(path)).items():
        _check_role(role, where=f"{path}: roles")
        roles[role] = _role(entry, where=f"{path}: roles.{role}")
    prices = {
        label: _price(entry, where=f"{path}: prices.{label!r}")
        for label, entry in _table(data, "prices", where=str(path)).items()
    }
    return LlmPlan(roles=roles, prices=prices)


def plan(
    spec: str | None, config_path: Path | None, defaults: Mapping[str, ModelChoice] = DEFAULT_MODELS
) -> LlmPlan:
    """The flag over the file over the defaults, role by role; every role must end up with a model."""
    from_file = load_llm_config(config_path) if config_path else LlmPlan(roles={})
    from_flag = parse_llm_spec(spec) if spec else {}
    roles = {**defaults, **from_file.roles, **from_flag}
    missing = [role for role in ROLES if role not in roles]
    if missing:
        raise ConfigError(f"no model for {', '.join(missing)}: give --llm {missing[0]}=provider:model")
    return LlmPlan(roles=roles, prices=from_file.prices)


def _check_role(role: str, *, where: str) -> None:
    if role not in ROLES:
        raise ConfigError(f"{where}: unknown role {role!r}; the roles are {', '.join(ROLES)}")


def _table(data: Mapping[str, Any], key: str, *, where: str) -> dict[str, Any]:
    table = data.get(key, {})
    if not isinstance(table, dict) or not all(isinstance(entry, dict) for entry in table.values()):
        raise ConfigError(f"{where}: {key} must hold tables, e.g. [{key}.<name>]")
    return table


def _role(entry: dict[str, Any], *, where: str) -> ModelChoice:
    fields = dict(entry)
    model = fields.pop("model", None)
    if not isinstance(model, str):
        raise ConfigError(f'{where}.model: missing; give model = "provider:model"')
    return _choice(model, fields, where=where)


def _choice(model: str, fields: dict[str, Any], *, where: str) -> ModelChoice:
    provider, colon, name = model.partition(":")
    if not colon or provider not in PROVIDERS:
        raise ConfigError(
            f"{where}: {model!r} does not start with a provider; use one of {', '.join(PROVIDERS)}, "
            "e.g. anthropic:claude-opus-4-6"
        )
    return _validated(ModelChoice, {"provider": provider, "model": name, **fields}, where=where)


def _price(entry: dict[str, Any], *, where: str) -> Price:
    return _validated(Price, entry, where=where)


def _validated(model: type[_Part], fields: dict[str, Any], *, where: str) -> _Part:
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"])
        if error["type"] == "extra_forbidden":
            known = ", ".join(name for name in model.model_fields if name != "provider")
            raise ConfigError(f"{where}.{field}: unknown key; the keys are {known}") from None
        raise ConfigError(f"{where}.{field}: {error['msg']}") from None
