"""`alphalab run --brain llm` refuses to start, within seconds and in one line, when a model cannot
answer: no key, a base URL nobody listens on, a model the provider does not know, a cap without prices."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.llm.wire import Answer, WireServer

ALPHALAB = str(Path(sys.executable).parent / "alphalab")


def _run(home: Path, env: dict[str, str], *args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ALPHALAB_", "ANTHROPIC_", "OPENAI_"))}
    started = time.monotonic()
    done = subprocess.run(
        [ALPHALAB, "run", "--domain", "traffic", "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**base, **env},
    )
    return done, time.monotonic() - started


def _refused(done: subprocess.CompletedProcess[str], home: Path, *needles: str) -> None:
    assert done.returncode == 2, done.stdout + done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error: the LLM brain cannot start")
    for needle in needles:
        assert needle in line, line
    assert not (home / "ledger.duckdb").exists(), "nothing may start before the preflight passes"


def test_a_missing_key_is_named(tmp_path: Path) -> None:
    done, seconds = _run(tmp_path / "lab", {}, "--brain", "llm")
    _refused(done, tmp_path / "lab", "ANTHROPIC_API_KEY")
    assert seconds < 20


def test_an_unreachable_base_url_is_named(tmp_path: Path) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    env = {"ANTHROPIC_API_KEY": "sk-test-key-0000", "ANTHROPIC_BASE_URL": url}
    done, seconds = _run(tmp_path / "lab", env, "--brain", "llm")
    _refused(done, tmp_path / "lab", url)
    assert seconds < 30


def test_an_unknown_model_and_a_cap_without_a_price_are_named(tmp_path: Path) -> None:
    with WireServer(
        lambda request: Answer(text="hi"), api_key="sk-test-key-0000", models={"claude-opus-4-6"}
    ) as server:
        env = {"ANTHROPIC_API_KEY": "sk-test-key-0000", "ANTHROPIC_BASE_URL": server.url}
        models = "strategist=anthropic:claude-opus-4-6,worker=anthropic:claude-nope-1"
        done, _ = _run(tmp_path / "lab", env, "--brain", "llm", "--llm", models, "--max-usd", "2")
    _refused(done, tmp_path / "lab", "claude-nope-1", "no price for anthropic:claude-nope-1")


def test_llm_options_without_the_llm_brain_are_refused(tmp_path: Path) -> None:
    done, _ = _run(tmp_path / "lab", {}, "--llm", "worker=openai:gpt-5.2")
    assert done.returncode == 2 and "--brain llm" in done.stderr


def test_no_llm_brain_where_an_agents_shell_could_read_the_workers_keys(tmp_path: Path) -> None:
    """Without a sandbox that hides other processes (here: ALPHALAB_SANDBOX=none), the agents' shell
    commands could read the API keys from their Worker's environment: refused before any preflight."""
    done, _ = _run(
        tmp_path / "lab",
        {"ALPHALAB_SANDBOX": "none", "ANTHROPIC_API_KEY": "sk-test-key-0000"},
        "--brain",
        "llm",
    )
    assert done.returncode == 2 and "reading other processes' environments" in done.stderr, done.stderr
