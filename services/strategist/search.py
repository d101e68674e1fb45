"""Optuna ask/tell over an adapter's search space, from the campaign's results.

The study is a function of the event log: built from the campaign's results (a window of them), so
the Strategist has no state of its own to lose. Within one process a campaign's study is kept between
decisions and brought up to date with what changed (`_Kept`): a finished run is told to its trial, a
new proposal added; what it asked is told failed once the configurations are out (TPE passes over
failed trials, and the proposals come back from the log as running ones). So a kept study and one built
afresh from the same log, as after a restart, propose the same configurations (a test holds it to
that). Conditional parameters (`when`) are asked define-by-run, which TPE handles natively.

A study holds a window of the history (`window`): every pending trial, the best finished ones, and
the latest others from a start that moves in steps, so that between two steps the window only grows
at its end and the kept study can follow it. Building a study and each TPE ask cost time in
proportion to its trials (at 10,000 trials, 2 s to build and 0.3 s an ask): without the window a long
campaign's decisions would slow down without end; with it, they cost the same at any length.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
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


WINDOW = 1000  # trials in a study, about: the latest WINDOW at most, and a quarter of that best before them


def window(history: Sequence[Outcome], direction: Direction, size: int | None = None) -> list[Outcome]:
    """The part of `history` (oldest first) a study holds, in its order: the whole history while it is
    no longer than `size` (default `WINDOW`); after that, the latest outcomes from a start that moves
    in steps of `size`/4 (so between `size` * 3/4 and `size` of them), preceded by every pending one
    and the `size`/4 best finished ones of those before the start."""
    size = size or WINDOW
    if len(history) <= size:
        return list(history)
    step = max(1, size // 4)
    start = ((len(history) - size) // step + 1) * step
    older = history[:start]
    pending = {i for i, o in enumerate(older) if o.value is None and not o.failed}
    finished = [i for i, o in enumerate(older) if o.value is not None and not o.failed]
    ranked = sorted(finished, key=lambda i: older[i].value or 0.0, reverse=direction == "maximize")
    return [older[i] for i in sorted(pending | set(ranked[:step]))] + list(history[start:])


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
    study_key: str | None = None,
) -> list[dict[str, Any]]:
    """`count` new configurations: random for the first `startup` trials, TPE after that; the first
    with the `fixed` values (an operator's hint), the others sampled around them. With `study_key` (a
    campaign's id) the study is kept for the next call with that key, which only brings it up to date.

    Pending configurations are told to TPE as running trials (constant liar), so one batch spreads
    out instead of proposing the same point to every idle worker.
    """
    kept = _kept_study(space, window(history, direction), direction, study_key)
    kept.study.sampler = optuna.samplers.TPESampler(
        seed=seed, n_startup_trials=startup, multivariate=True, group=True, constant_liar=True
    )
    configs, asked = [], []
    try:
        if fixed and count:
            kept.study.enqueue_trial(fixed, skip_if_exists=False)  # the first trial asked takes these
        for _ in range(count):
            trial = kept.study.ask()
            config: dict[str, Any] = {}
            for p in space:
                if _active(space, p.name, config):
                    config[p.name] = _suggest(trial, p)
            configs.append(config)
            asked.append(trial)
        for trial in asked:  # running until the batch is asked (constant liar spreads it), then failed:
            kept.study.tell(trial, state=TrialState.FAIL)  # they come back from the log as proposals
        kept.size += len(asked)
    except BaseException:
        if study_key is not None:
            _KEPT.pop(study_key, None)  # a study in a state it does not know: the next call builds one
        raise
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
    return _built(space, history, direction, sampler).study


def _built(
    space: Sequence[SpaceParam],
    history: Sequence[Outcome],
    direction: Direction,
    sampler: optuna.samplers.BaseSampler | None,
) -> _Kept:
    kept = _Kept(optuna.create_study(direction=direction, sampler=sampler), direction, distributions(space))
    for outcome in history:
        kept.add(space, outcome)
    return kept


@dataclass
class _Kept:
    """A study and the outcomes it holds, trial for trial (`trials[i]` is the number of the trial of
    `outcomes[i]`); `size` counts every trial in it, those told failed after an ask too."""

    study: optuna.Study
    direction: Direction
    dists: dict[str, BaseDistribution]
    outcomes: list[Outcome] = field(default_factory=list)
    trials: list[int] = field(default_factory=list)
    size: int = 0

    def add(self, space: Sequence[SpaceParam], outcome: Outcome) -> None:
        dists = self.dists
        params = {k: v for k, v in outcome.config.items() if k in dists and _active(space, k, outcome.config)}
        used = {k: dists[k] for k in params}
        if outcome.failed:
            self.study.add_trial(
                optuna.trial.create_trial(state=TrialState.FAIL, params=params, distributions=used)
            )
        elif outcome.value is not None:
            self.study.add_trial(
                optuna.trial.create_trial(value=outcome.value, params=params, distributions=used)
            )
        else:
            self.study.enqueue_trial(params, skip_if_exists=False)
            trial = self.study.ask()  # held open: a running trial that TPE's constant liar accounts for
            for p in space:
                if p.name in params:
                    _suggest(trial, p)  # returns the enqueued value, recording it on the trial
        self.outcomes.append(outcome)
        self.trials.append(self.size)
        self.size += 1

    def catch_up(self, space: Sequence[SpaceParam], held: Sequence[Outcome]) -> bool:
        """Make the study hold `held`, if that only adds outcomes at the end and finishes pending ones;
        False (and nothing changed) otherwise."""
        if len(held) < len(self.outcomes) or self.size > 2 * len(held) + 64:  # mostly asked trials: rebuild
            return False
        finished = []
        for index, (old, new) in enumerate(zip(self.outcomes, held, strict=False)):
            if old == new:
                continue
            if old.config != new.config or old.value is not None or old.failed:
                return False
            finished.append(index)
        for index in finished:
            outcome = held[index]
            if outcome.failed:
                self.study.tell(self.trials[index], state=TrialState.FAIL)
            else:
                self.study.tell(self.trials[index], outcome.value)
            self.outcomes[index] = outcome
        for outcome in held[len(self.outcomes) :]:
            self.add(space, outcome)
        return True


_KEPT: dict[str, _Kept] = {}  # by campaign id: the studies of this process's latest campaigns
_KEEP = 8


def _kept_study(
    space: Sequence[SpaceParam], held: Sequence[Outcome], direction: Direction, key: str | None
) -> _Kept:
    """The study of `held`: the one kept under `key` brought up to date if it can be, else a new one."""
    kept = _KEPT.pop(key, None) if key is not None else None
    if kept is None or kept.direction != direction or not kept.catch_up(space, held):
        # built with a sampler of its own: building never draws on the one that will ask
        kept = _built(space, held, direction, optuna.samplers.RandomSampler(0))
    if key is not None:
        _KEPT[key] = kept
        while len(_KEPT) > _KEEP:
            del _KEPT[next(iter(_KEPT))]
    return kept


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
