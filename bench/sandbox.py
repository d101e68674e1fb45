"""The cost of the per-run isolation of issue 9, side by side with the isolation before it.

    .venv/bin/python bench/sandbox.py [--runs N]

Times N trivial sandboxed runs (`python -c pass` and `true`) three ways, interleaved so that load on a
shared machine hits all alike, and prints the mean ms per run and the ratio new / old:

  old: the bwrap command line before issue 9 (bwrap as root with CAP_SETUID/SETGID, setpriv to the
       run's uid, host paths bound as they are, a size-limited /tmp, no seccomp, no cgroup), built
       here as it was, with the same rlimits and the same Popen;
  new: `shared.sandbox.run` as every run is now launched: a memory cgroup, the staged tree (private
       mount namespace, tmpfs /tmp, overlays of Python), a user namespace owned by the run's uid,
       seccomp, and the watch thread.
Also the per-grading cost of the limited workspace (mount and unmount a tmpfs). Needs root and bwrap.
"""

from __future__ import annotations

import argparse
import functools
import glob
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shared.sandbox import Access, Limits, run, tree, workspace  # noqa: E402
from shared.sandbox import limits as rlimit  # noqa: E402
from shared.sandbox.access import SYSTEM_PATHS, python_roots  # noqa: E402


def old_command(argv: list[str], workspace_dir: Path, uid: int, tmp_mb: int = 64) -> list[str]:
    """bubblewrap.command as of commit 59b3d30 (before issue 9), for a writable workspace."""
    system = [Path(p) for p in SYSTEM_PATHS]

    def parents(path: Path) -> list[str]:
        ps = [p for p in reversed(path.parents[:-1]) if not any(p.is_relative_to(s) for s in system)]
        return [arg for p in ps for arg in ("--perms", "0755", "--dir", str(p))]

    args = ["bwrap", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts"]
    args += ["--unshare-cgroup-try"]
    args += ["--die-with-parent", "--new-session", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    args += ["--proc", "/proc", "--dev", "/dev", "--size", str(tmp_mb << 20), "--tmpfs", "/tmp"]
    for path in SYSTEM_PATHS:
        args += ["--ro-bind-try", path, path]
    for root in python_roots():
        args += [*parents(root), "--ro-bind", str(root), str(root)]
    for device in sorted(glob.glob("/dev/nvidia*")):
        args += ["--dev-bind", device, device]
    ws = workspace_dir.resolve()
    args += [*parents(ws), "--bind", str(ws), str(ws), "--remount-ro", "/", "--chdir", str(ws), "--"]
    args += ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]
    args += ["--inh-caps=-all", "--bounding-set=-all", "--"]
    return args + argv


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    arguments = parser.parse_args()
    if os.geteuid() != 0 or not shutil.which("bwrap"):
        sys.exit("needs root and bwrap")
    limits = Limits(wall_seconds=30, memory_mb=1024, file_mb=64, processes=64)
    wanted = rlimit.rlimits(limits)
    programs = {"python -c pass": [sys.executable, "-c", "pass"]}
    programs["true"] = [shutil.which("true") or "/bin/true"]
    with tempfile.TemporaryDirectory() as scratch:
        space = Path(scratch)
        times: dict[tuple[str, str], list[float]] = {}
        for _ in range(arguments.runs):
            for name, argv in programs.items():
                uid = 100_000 + secrets.randbelow(100_000)
                tree.chown(space, uid)
                begun = time.perf_counter()
                subprocess.run(
                    old_command(argv, space, uid),
                    check=True,
                    cwd=space,
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    start_new_session=True,
                    preexec_fn=functools.partial(rlimit.apply, wanted),
                )
                times.setdefault((name, "old"), []).append(time.perf_counter() - begun)
                begun = time.perf_counter()
                outcome = run(argv, cwd=space, limits=limits, access=Access(space))
                assert outcome.returncode == 0, outcome.stderr_tail
                times.setdefault((name, "new"), []).append(time.perf_counter() - begun)
        mounts = []
        for _ in range(arguments.runs):
            target = space / "limited"
            target.mkdir(exist_ok=True)
            begun = time.perf_counter()
            with workspace.limited(target, 64, 4096):
                pass
            mounts.append(time.perf_counter() - begun)
    print(f"{arguments.runs} runs each, interleaved; mean (median) ms per run")
    print(f"{'program':16} {'old':>16} {'new':>16} {'new/old':>8}")
    for name in programs:
        old, new = times[(name, "old")], times[(name, "new")]
        cells = [f"{statistics.mean(t) * 1e3:7.1f} ({statistics.median(t) * 1e3:6.1f})" for t in (old, new)]
        print(f"{name:16} {cells[0]:>16} {cells[1]:>16} {statistics.mean(new) / statistics.mean(old):8.2f}")
    print(f"limited workspace (once per grading): mount + unmount {statistics.mean(mounts) * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
