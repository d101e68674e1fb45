"""The training data and baselines, as the domain's trusted harness gives them.

The explorer never opens a domain's files itself: the harness decides what the training split is
(the held-out split never reaches it), and it runs as its own process in a scratch directory,
killed with its whole process group if it overruns.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from pathlib import Path

import pandas as pd
from pydantic import ValidationError

from services.explorer.profiles import Profile
from shared.domain import Domain
from shared.errors import AlphaLabError
from shared.events import BaselineEvaluated
from shared.inputs import Resolved
from shared.tables import read_parquet

__all__ = ["EXPORT_TIMEOUT_S", "BASELINES_TIMEOUT_S", "Exported", "HarnessFailed", "fetch"]

# The train split as a frame for the builtin profiles, or a custom adapter's own profile of it.
Exported = pd.DataFrame | Profile

EXPORT_TIMEOUT_S = 300.0
BASELINES_TIMEOUT_S = 600.0
_TAIL = 2000


class HarnessFailed(AlphaLabError):
    """The domain's harness exited with an error, overran, or printed something other than promised."""


async def fetch(inputs: Resolved, workdir: Path) -> tuple[Exported, list[BaselineEvaluated]]:
    """The training data and the baselines' scores: the harness's `export` (or `explore`), `baselines`.

    The baselines are checked against the manifest on the way: every `[[baselines]]` name printed, and
    each baseline's `metrics` holding the manifest's metric with the baseline's value.
    """
    domain = inputs.domain
    data = ("--data", inputs.data) if inputs.data else ()
    custom = domain.manifest.data.kind == "custom"
    out = workdir / ("explored" if custom else "train.parquet")
    export = domain.harness_argv("explore" if custom else "export", "--out", str(out), *data)
    baselines = domain.harness_argv("baselines", *data)
    try:
        async with asyncio.TaskGroup() as group:  # both at once; one failing stops the other
            exported = group.create_task(_run(export, workdir, EXPORT_TIMEOUT_S))
            scored = group.create_task(_run(baselines, workdir, BASELINES_TIMEOUT_S))
    except ExceptionGroup as failed:  # the first failure says what went wrong; the other was stopped
        raise failed.exceptions[0] from None
    parsed = _parse_baselines(scored.result(), baselines)
    _check_against_manifest(domain, parsed)
    return (_read_profile(out, exported.result(), export) if custom else _read_matrix(out)), parsed


async def _run(argv: list[str], cwd: Path, timeout: float) -> bytes:
    """Run `argv` to completion and return its stdout; HarnessFailed if it fails or overruns."""
    process = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,  # its own process group, so a kill takes its children too
    )
    try:
        async with asyncio.timeout(timeout):
            stdout, stderr = await process.communicate()
    except TimeoutError:
        raise HarnessFailed(f"`{_show(argv)}` did not finish within {timeout:g} s") from None
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
    if process.returncode != 0:
        tail = stderr.decode(errors="replace")[-_TAIL:].strip()
        raise HarnessFailed(f"`{_show(argv)}` exited with {process.returncode}: {tail or '(no stderr)'}")
    return stdout


def _read_matrix(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise HarnessFailed(f"the harness's export exited cleanly but wrote no {path.name}")
    return read_parquet(path)


def _read_profile(folder: Path, stdout: bytes, argv: list[str]) -> Profile:
    """A custom adapter's own profile: report.md and PNG plots in `folder`, `{"findings": [...]}` printed."""
    text = stdout.decode(errors="replace").strip()
    try:
        findings = json.loads(text[text.rfind("\n{") + 1 :] if "\n{" in text else text)["findings"]
        if not isinstance(findings, list) or not all(isinstance(line, str) for line in findings):
            raise TypeError("findings must be a list of strings")
    except (ValueError, KeyError, TypeError) as err:
        raise HarnessFailed(f'`{_show(argv)}` did not print {{"findings": [...]}}: {err}') from None
    report = folder / "report.md"
    if not report.is_file():
        raise HarnessFailed(f"`{_show(argv)}` exited cleanly but wrote no report.md into --out")
    plots = {path.name: path.read_bytes() for path in sorted(folder.glob("*.png"))}
    return Profile(findings=tuple(findings), sections=(("Profile", report.read_text()),), plots=plots)


def _check_against_manifest(domain: Domain, baselines: list[BaselineEvaluated]) -> None:
    """Refuse a harness whose output does not match what its manifest promises, naming the mismatch."""
    manifest, where = domain.manifest, domain.root / "domain.toml"
    printed = [b.name for b in baselines]
    if missing := [b.name for b in manifest.baselines if b.name not in printed]:
        raise HarnessFailed(
            f"{where}: [[baselines]] names {missing} but `harness.py baselines` printed {printed}"
        )
    for entry in baselines:
        score = entry.metrics.get(manifest.metric.name)
        if score is None:
            raise HarnessFailed(
                f"{where}: [metric].name is {manifest.metric.name!r} but baseline {entry.name!r}'s metrics "
                f"printed by the harness are {sorted(entry.metrics)}"
            )
        if abs(score - entry.value) > 1e-9 * max(1.0, abs(entry.value)):
            raise HarnessFailed(
                f"harness.py baselines: {entry.name!r} has value {entry.value} but "
                f"metrics[{manifest.metric.name!r}] = {score}; the value must be the manifest's metric"
            )


def _parse_baselines(stdout: bytes, argv: list[str]) -> list[BaselineEvaluated]:
    """The `{"baselines": [{"name", "value", "metrics"}]}` document the harness prints last."""
    text = stdout.decode(errors="replace").strip()
    try:
        document = json.loads(text[text.rfind("\n{") + 1 :] if "\n{" in text else text)
        # Anything beyond the event's fields (a description, say) stays with the harness.
        fields = BaselineEvaluated.model_fields
        return [
            BaselineEvaluated.model_validate({k: v for k, v in entry.items() if k in fields})
            for entry in document["baselines"]
        ]
    except (ValueError, KeyError, TypeError, AttributeError, ValidationError) as err:
        raise HarnessFailed(
            f'`{_show(argv)}` did not print {{"baselines": [{{"name", "value", "metrics"}}]}}: {err}; '
            f"stdout ends with {text[-300:]!r}"
        ) from None


def _show(argv: list[str]) -> str:
    return " ".join(argv)
