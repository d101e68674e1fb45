"""Domain adapters: the folder that tells the lab what to optimize, how to grade it and what may change.

An adapter is a folder:

    domain.toml        the manifest (`Manifest` below)
    knowledge.md       what is known about the domain, for the LLM roles
    prompts/<role>.md  one prompt per role: explorer, strategist, worker, supervisor
    harness.py         the trusted grading program (a CLI; candidates never change it)
    candidate.py       the experiment entry point a worker runs in a run's workspace

Built-in adapters live in the `domains` package; a user's adapter is any folder of that shape. Loading
refuses a broken adapter with one message naming the file and the field, so a campaign never starts on
a manifest that would fail an hour in.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.resources
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from shared.errors import ConfigError

__all__ = [
    "MANIFEST_FILE",
    "ROLES",
    "Baseline",
    "Budget",
    "Data",
    "Domain",
    "Entry",
    "Manifest",
    "Metric",
    "Param",
    "Resources",
    "builtin_domains",
    "load_domain",
]

MANIFEST_FILE = "domain.toml"
KNOWLEDGE_FILE = "knowledge.md"
PACKAGE_PREFIX = "package:"
ROLES = ("explorer", "strategist", "worker", "supervisor")

Choice = str | int | float | bool


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _inside(path: str) -> str:
    """A relative path that stays inside the adapter folder."""
    pure = PurePosixPath(path)
    if not path or pure.is_absolute() or ".." in pure.parts:
        raise ValueError(f"{path!r} must be a relative path inside the adapter folder")
    return path


class Metric(_Strict):
    name: str = Field(min_length=1, description="the key of the primary metric in the harness's output")
    direction: Literal["minimize", "maximize"]


class Baseline(_Strict):
    name: str = Field(min_length=1)
    description: str = ""


class Entry(_Strict):
    candidate: str = Field(default="candidate.py", description="run by the worker in the workspace")
    harness: str = Field(default="harness.py", description="run from the adapter folder; grades")

    @field_validator("candidate", "harness")
    @classmethod
    def _relative(cls, path: str) -> str:
        return _inside(path)


class Data(_Strict):
    """What the harness's `export` writes, so the explorer profiles it sensibly (docs/adapters.md).

    timeseries: a wide table with a `timestamp` column; tabular: one row per example, `target` naming
    the column to predict; text: a `text` column (and optionally `document`); kernels: one row per
    task; custom: the harness's own `explore --out DIR` writes the report and plots.
    """

    kind: Literal["timeseries", "tabular", "text", "kernels", "custom"] = "timeseries"
    target: str | None = Field(default=None, min_length=1, description="tabular: the column to predict")


class Budget(_Strict):
    """Limits for one experiment and for a whole campaign; `patience` is runs without a new best."""

    run_seconds: float = Field(
        default=600.0, gt=0, description="wall clock for fitting, and again for grading"
    )
    run_memory_mb: int = Field(
        default=4096, ge=64, description="memory of a whole run (all its processes) and of each process"
    )
    run_disk_mb: int = Field(default=1024, ge=16, description="what a run may write into its workspace")
    experiments: int = Field(default=50, ge=1)
    campaign_seconds: float = Field(default=12 * 3600.0, gt=0)
    patience: int | None = Field(default=None, ge=1)


class Resources(_Strict):
    """What one run needs besides a CPU: its GPUs, and the memory it uses on each. Only a worker that
    has such GPUs takes the run; a run without GPUs is never given one (docs/adapters.md)."""

    gpus: int = Field(default=0, ge=0, le=16, strict=True, description="GPUs per run; 0: a CPU run")
    gpu_memory_mb: int | None = Field(
        default=None, ge=1, strict=True, description="memory a run uses on each GPU; unset: each GPU whole"
    )

    @model_validator(mode="after")
    def _memory_of_a_gpu(self) -> Resources:
        if self.gpu_memory_mb is not None and self.gpus == 0:
            raise ValueError("gpu_memory_mb is the memory of each GPU of a run: set gpus = 1 (or more)")
        return self


class Param(_Strict):
    """One search-space dimension; `when` makes it apply only while earlier categoricals take given values."""

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    kind: Literal["float", "int", "categorical"]
    low: int | float | None = None
    high: int | float | None = None
    log: bool = False
    choices: tuple[Choice, ...] | None = None
    when: dict[str, tuple[Choice, ...]] = {}

    @model_validator(mode="after")
    def _consistent(self) -> Param:
        if self.kind == "categorical":
            _check_categorical(self)
        else:
            _check_numeric(self)
        return self


def _check_categorical(param: Param) -> None:
    if not param.choices:
        raise ValueError("a categorical param needs a non-empty list of choices")
    if len(set(param.choices)) < len(param.choices):
        raise ValueError("choices must not repeat")
    if param.low is not None or param.high is not None or param.log:
        raise ValueError("low, high and log are for float and int params; a categorical has only choices")


def _check_numeric(param: Param) -> None:
    if param.choices is not None:
        raise ValueError(f"choices are only for categorical params; a {param.kind} param has low and high")
    if param.low is None or param.high is None:
        raise ValueError(f"a {param.kind} param needs both low and high")
    if param.kind == "int" and not (isinstance(param.low, int) and isinstance(param.high, int)):
        raise ValueError("low and high of an int param must be whole numbers")
    if param.low >= param.high:
        raise ValueError(f"low ({param.low}) must be below high ({param.high})")
    if param.log and param.low <= 0:
        raise ValueError(f"a log-scaled param needs low above zero, not {param.low}")


class Manifest(_Strict):
    """`domain.toml`: what to optimize, how it is graded, what it may cost and what a run may vary."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    objective: str = Field(min_length=1)
    metric: Metric
    secondary_metrics: tuple[str, ...] = ()
    baselines: tuple[Baseline, ...] = ()
    entry: Entry = Entry()
    required_files: tuple[str, ...] = Field(
        default=(), description="files beside the candidate entry point that a run's workspace needs"
    )
    held_out: tuple[str, ...] = Field(
        default=(),
        description="data no candidate may see: `package:DIST/PATH` inside an installed distribution, "
        "else a path relative to the adapter folder",
    )
    data: Data = Data()
    budget: Budget = Budget()
    resources: Resources = Resources()
    deterministic: bool = Field(
        default=False, description="a configuration's result does not depend on the seed: never replicate"
    )
    search_space: tuple[Param, ...] = ()

    @field_validator("held_out")
    @classmethod
    def _located(cls, paths: tuple[str, ...]) -> tuple[str, ...]:
        for path in paths:
            if path.startswith(PACKAGE_PREFIX) and "/" not in path.removeprefix(PACKAGE_PREFIX):
                raise ValueError(f"{path!r}: write {PACKAGE_PREFIX}DIST/PATH, a path inside the distribution")
            if not path.startswith(PACKAGE_PREFIX):
                _inside(path)
        return paths

    @field_validator("required_files")
    @classmethod
    def _relative(cls, paths: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_inside(path) for path in paths)

    @model_validator(mode="after")
    def _conditions_refer_back(self) -> Manifest:
        earlier: dict[str, Param] = {}
        for index, param in enumerate(self.search_space):
            where = f"search_space[{index}] ({param.name})"
            if param.name in earlier:
                raise ValueError(f"{where}.name: {param.name!r} is already a param; names must be unique")
            for other, values in param.when.items():
                _check_condition(where, other, values, earlier)
            earlier[param.name] = param
        return self


def _check_condition(where: str, other: str, values: tuple[Choice, ...], earlier: dict[str, Param]) -> None:
    parent = earlier.get(other)
    if parent is None or parent.kind != "categorical" or parent.choices is None:
        raise ValueError(f"{where}.when: {other!r} must name a categorical param listed before this one")
    unknown = [value for value in values if value not in parent.choices]
    if not values or unknown:
        raise ValueError(
            f"{where}.when.{other}: {unknown or '[]'} not among its choices {list(parent.choices)}"
        )


@dataclass(frozen=True)
class Domain:
    """A loaded adapter: its manifest, its texts, and how to start its harness and its candidate."""

    name: str
    root: Path
    manifest: Manifest
    knowledge: str
    prompts: dict[str, str]
    # Where else this host holds the held-out data: the operator's own copies, when a service runs the
    # adapter from its cache on the operator's machine (shared/inputs.py); masked like the rest.
    also_held_out: tuple[Path, ...] = ()

    def harness_argv(self, command: str, *args: str) -> list[str]:
        """The trusted harness, run from the adapter folder by this interpreter."""
        return [sys.executable, str(self.root / self.manifest.entry.harness), command, *args]

    def candidate_argv(self, command: str, *args: str) -> list[str]:
        """The candidate, run with the run's workspace as the working directory."""
        return [sys.executable, self.manifest.entry.candidate, command, *args]

    def harness_digest(self) -> str:
        """sha256 over the adapter's files except the candidate's: what a campaign's grading runs on."""
        digest = hashlib.sha256()
        candidate = set(self.candidate_files())
        for path in sorted(self.root.rglob("*")):
            relative = str(path.relative_to(self.root))
            if path.is_file() and relative not in candidate and "__pycache__" not in path.parts:
                digest.update(f"{relative}\0{path.stat().st_size}\0".encode())
                digest.update(path.read_bytes())
        return f"sha256:{digest.hexdigest()}"

    def held_out(self, data: str | None = None) -> tuple[Path, ...]:
        """What candidates must never see: the manifest's `held_out` that exists here, and the run's data."""
        paths = [_locate(self.root, entry) for entry in self.manifest.held_out]
        if data:
            paths.append(Path(data).expanduser().resolve())
        return tuple(path for path in [*paths, *self.also_held_out] if path is not None)

    def candidate_files(self) -> tuple[str, ...]:
        """The files (relative to `root`) that a worker copies into a fresh workspace."""
        return (self.manifest.entry.candidate, *self.manifest.required_files)


def _locate(root: Path, entry: str) -> Path | None:
    """A `held_out` entry as a path, or None where its distribution is not installed."""
    if not entry.startswith(PACKAGE_PREFIX):
        return (root / entry).resolve()
    dist, _, inside = entry.removeprefix(PACKAGE_PREFIX).partition("/")
    try:
        return Path(str(importlib.metadata.distribution(dist).locate_file(inside))).resolve()
    except importlib.metadata.PackageNotFoundError:
        return None


def builtin_domains() -> dict[str, Path]:
    """Every built-in adapter by folder name: the subfolders of the `domains` package with a manifest."""
    package = Path(str(importlib.resources.files("domains")))
    return {folder.name: folder for folder in sorted(package.iterdir()) if (folder / MANIFEST_FILE).is_file()}


def load_domain(name_or_path: str) -> Domain:
    """A built-in adapter by name, or the adapter in a folder; ConfigError naming file and field if broken."""
    builtin = builtin_domains()
    root = builtin.get(name_or_path) or Path(name_or_path).expanduser().resolve()
    manifest_path = root / MANIFEST_FILE
    if not manifest_path.is_file():
        raise ConfigError(
            f"{name_or_path}: neither a built-in domain ({', '.join(builtin) or 'none'}) nor a folder "
            f"holding {MANIFEST_FILE}; pass a built-in name or the path of an adapter folder"
        )
    manifest = _manifest(manifest_path)
    _check_files(manifest_path, manifest)
    return Domain(
        name=manifest.name,
        root=root,
        manifest=manifest,
        knowledge=_text(root / KNOWLEDGE_FILE, "the domain knowledge the LLM roles read"),
        prompts={role: _text(root / "prompts" / f"{role}.md", f"the {role} role's prompt") for role in ROLES},
    )


def _manifest(path: Path) -> Manifest:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from None
    try:
        return Manifest.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(f"{path}: {_describe(err.errors(include_url=False)[0], raw)}") from None


def _describe(error: Any, raw: dict[str, Any]) -> str:
    """`field: problem`, with a search-space param also named, and pydantic's wording made direct."""
    location = error["loc"]
    field = ""
    for part in location:
        field += f"[{part}]" if isinstance(part, int) else f"{'.' if field else ''}{part}"
    if location[:1] == ("search_space",) and len(location) > 1 and isinstance(location[1], int):
        name = _param_name(raw, location[1])
        field = field.replace(f"search_space[{location[1]}]", f"search_space[{location[1]}] ({name})", 1)
    message = {
        "extra_forbidden": "unknown field; remove it or correct its spelling",
        "missing": "required; add it",
        "literal_error": f"must be {error.get('ctx', {}).get('expected')}",
    }.get(error["type"], str(error["msg"]).removeprefix("Value error, "))
    return f"{field}: {message}" if field else message


def _param_name(raw: dict[str, Any], index: int) -> str:
    try:
        return str(raw["search_space"][index]["name"])
    except (KeyError, IndexError, TypeError):
        return "unnamed"


def _check_files(manifest_path: Path, manifest: Manifest) -> None:
    root = manifest_path.parent
    fields = [("entry.candidate", manifest.entry.candidate), ("entry.harness", manifest.entry.harness)]
    fields += [("required_files", path) for path in manifest.required_files]
    for field, relative in fields:
        if not (root / relative).is_file():
            raise ConfigError(
                f"{manifest_path}: {field}: {relative} is not a file in {root}; add it or fix the path"
            )


def _text(path: Path, what: str) -> str:
    if not path.is_file():
        raise ConfigError(f"{path}: missing; an adapter needs this file: {what}")
    return path.read_text(encoding="utf-8")
