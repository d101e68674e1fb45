"""Optuna ask/tell over an adapter's search space, rebuilt from the campaign's results each time.

The study lives only in memory and is rebuilt from the event log for every decision, so the
Strategist has no private state to lose: a restarted Strategist proposes exactly as it would have.
Conditional parameters (`when`) are asked define-by-run, which TPE handles natively.

A study holds at most `WINDOW` trials (`window`): every pending one, the best finished ones, and the
latest others. Both rebuilding a study and each TPE ask cost time in proportion to its trials (at
10,000 trials, 2 s to rebuild and 0.3 s an ask), so without the window a long campaign's decisions
would slow down without end; with it, a decision costs the same at any length.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from shared.events import Direction

__all__ = [
    "WINDOW",
    "Outcome",
    "SpaceParam",
    "assignments",
    "check_config",
    "distributions",
    "importances",
    "propose",
    "window",
]

optuna.logging.set_verbosity(logging.WARNING)
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


class SpaceParam(Protocol):
    """A search-space parameter as the domain manifest declares it."""

    name: str
    kind: str
    low: float | None
    high: float | None
    log: bool
    choices: list[Any] | None
    when: dict[str, list[Any]]


@dataclass(frozen=True, slots=True)
class Outcome:
    """A configuration tried so far: its value, or None while pending, or failed=True."""

    config: dict[str, Any]
    value: float | None
    failed: bool = False


WINDOW = 1000  # trials in a study at most


def window(history: Sequence[Outcome], direction: Direction, size: int | None = None) -> list[Outcome]:
    """At most `size` (default `WINDOW`) of `history` (oldest first), in its order: every pending
    outcome, the `size`/4 best finished ones, then the latest of the rest. The whole history if it is
    no longer."""
    size = size or WINDOW
    if len(history) <= size:
        return list(history)
    pending = {i for i, o in enumerate(history) if o.value is None and not o.failed}
    finished = [i for i, o in enumerate(history) if o.value is not None and not o.failed]
    ranked = sorted(finished, key=lambda i: history[i].value or 0.0, reverse=direction == "maximize")
    kept = pending | set(ranked[: size // 4])
    for index in range(len(history) - 1, -1, -1):
        if len(kept) >= size:
            break
        kept.add(index)
    return [history[i] for i in sorted(kept)]


def distributions(space: Sequence[SpaceParam]) -> dict[str, BaseDistribution]:
    result: dict[str, BaseDistribution] = {}
    for p in space:
        if p.kind == "categorical":
            result[p.name] = CategoricalDistribution(list(p.choices or []))
        elif p.kind == "int":
            result[p.name] = IntDistribution(int(p.low or 0), int(p.high or 0), log=p.log)
        else:
            result[p.name] = FloatDistribution(float(p.low or 0), float(p.high or 0), log=p.log)
    return result


def propose(
    space: Sequence[SpaceParam],
    history: Sequence[Outcome],
    *,
    direction: Direction,
    count: int,
    seed: int,
    startup: int,
    fixed: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """`count` new configurations: random for the first `startup` trials, TPE after that; the first
    with the `fixed` values (an operator's hint), the others sampled around them.

    Pending configurations are told to TPE as running trials (constant liar), so one batch spreads
    out instead of proposing the same point to every idle worker.
    """
    sampler = optuna.samplers.TPESampler(
        seed=seed, n_startup_trials=startup, multivariate=True, group=True, constant_liar=True
    )
    study = _study(space, window(history, direction), direction, sampler)
    if fixed:
        study.enqueue_trial(fixed, skip_if_exists=False)  # the first trial asked takes these values
    configs = []
    for _ in range(count):
        trial = study.ask()
        config: dict[str, Any] = {}
        for p in space:
            if _active(space, p.name, config):
                config[p.name] = _suggest(trial, p)
        configs.append(config)
    return configs


def importances(
    space: Sequence[SpaceParam], history: Sequence[Outcome], direction: Direction
) -> dict[str, float]:
    """How much each parameter explains the results so far (PED-ANOVA; empty with too few results)."""
    graded = [o for o in history if o.value is not None and not o.failed]
    study = _study(space, window(graded, direction), direction, None)
    if len(study.get_trials(deepcopy=False)) < 4:  # study.trials deep-copies every trial
        return {}
    try:
        evaluator = optuna.importance.PedAnovaImportanceEvaluator()
        return dict(optuna.importance.get_param_importances(study, evaluator=evaluator))
    except (RuntimeError, ValueError):  # e.g. all values equal: nothing to explain
        return {}


def _study(
    space: Sequence[SpaceParam],
    history: Sequence[Outcome],
    direction: Direction,
    sampler: optuna.samplers.BaseSampler | None,
) -> optuna.Study:
    dists = distributions(space)
    study = optuna.create_study(direction=direction, sampler=sampler)
    for outcome in history:
        params = {k: v for k, v in outcome.config.items() if k in dists and _active(space, k, outcome.config)}
        used = {k: dists[k] for k in params}
        if outcome.failed:
            study.add_trial(
                optuna.trial.create_trial(state=TrialState.FAIL, params=params, distributions=used)
            )
        elif outcome.value is not None:
            study.add_trial(optuna.trial.create_trial(value=outcome.value, params=params, distributions=used))
        else:
            study.enqueue_trial(params, skip_if_exists=False)
            trial = study.ask()  # held open: a running trial that TPE's constant liar accounts for
            for p in space:
                if p.name in params:
                    _suggest(trial, p)  # returns the enqueued value, recording it on the trial
    return study


def check_config(space: Sequence[SpaceParam], config: dict[str, Any]) -> str | None:
    """Why `config` is not a point of the search space (an unknown name, a value out of its range), or
    None if it is one. Names it leaves out take the candidate's defaults."""
    params = {p.name: p for p in space}
    for name, value in config.items():
        p = params.get(name)
        if p is None:
            return f"unknown parameter {name!r}; known: {', '.join(params)}"
        if p.kind == "categorical":
            if value not in (p.choices or ()):
                return f"{name}={value!r} is not one of {list(p.choices or ())}"
        elif (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or (p.kind == "int" and not isinstance(value, int))
        ):
            return f"{name} must be {'an integer' if p.kind == 'int' else 'a number'}"
        elif not (float(p.low or 0) <= value <= float(p.high or 0)):
            return f"{name}={value} is outside [{p.low}, {p.high}]"
    return None


def assignments(text: str, space: Sequence[SpaceParam]) -> dict[str, Any]:
    """The `name=value` pairs in free text that fit the search space, each value as the space types it."""
    found: dict[str, Any] = {}
    for token in text.replace(",", " ").split():
        name, sep, raw = token.partition("=")
        param = next((p for p in space if p.name == name), None)
        if not sep or param is None:
            continue
        if param.kind == "categorical":
            value: Any = next((c for c in param.choices or [] if str(c) == raw), None)
        else:
            try:
                value = int(raw) if param.kind == "int" else float(raw)
            except ValueError:
                continue
        if value is not None and check_config(space, {name: value}) is None:
            found[name] = value
    return found


def _active(space: Sequence[SpaceParam], name: str, config: dict[str, Any]) -> bool:
    """A parameter is active when every condition in its `when` holds for `config`."""
    param = next(p for p in space if p.name == name)
    return all(config.get(other) in allowed for other, allowed in param.when.items())


def _suggest(trial: optuna.Trial, p: SpaceParam) -> Any:
    if p.kind == "categorical":
        return trial.suggest_categorical(p.name, list(p.choices or []))
    if p.kind == "int":
        return trial.suggest_int(p.name, int(p.low or 0), int(p.high or 0), log=p.log)
    return trial.suggest_float(p.name, float(p.low or 0), float(p.high or 0), log=p.log)
