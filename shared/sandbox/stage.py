"""Where a run's file tree is staged before bwrap builds its root, so that no host path is named in it.

As root, the child (before it executes bwrap) enters a mount namespace of its own and covers /tmp with
a small tmpfs, limited in bytes and inodes, that lives and dies with the run. Into it go:

    .scratch     the run's /tmp and /dev/shm (what the run writes there counts against tmp_mb)
    .workspace   a bind of the workspace
    .python      the base interpreter's folder, as an overlay
    .venv        a venv made on the spot (pyvenv.cfg, bin/python) whose site-packages are overlays

An overlay is used instead of a bind because /proc/self/mountinfo shows where a bind comes from
(`/root/.pyenv/...`, `/work/...`); an overlay shows only its lower folders, given here as
/proc/self/fd/N. bwrap then binds these at /opt/python, /opt/venv and /workspace, so the run sees
neutral paths only, and its command line and environment are translated to them (`Layout.inside`).
The child then drops to the run's uid and executes bwrap unprivileged, in a user namespace of its own.
"""

from __future__ import annotations

import ctypes
import functools
import os
import site
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from shared.sandbox.access import SYSTEM_PATHS

__all__ = ["STAGE", "Layout", "layout", "prepare"]

STAGE = "/tmp"  # covered, in the run's own mount namespace only
WORKSPACE = "/workspace"
PYTHON = "/opt/python"
VENV = "/opt/venv"
_CLONE_NEWNS = 0x00020000
_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_BIND, _MS_REC, _MS_PRIVATE = 0x1, 0x2, 0x4, 0x1000, 0x4000, 0x40000
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_libc = ctypes.CDLL(None, use_errno=True)


@dataclass(frozen=True)
class Layout:
    """Where this interpreter lives on the host and where the run sees it."""

    base: Path  # sys.base_prefix, resolved
    overlaid: bool  # False where the base lies inside the system folders (bound as it is)
    sites: tuple[tuple[Path, str], ...]  # the venv's site-packages: host path, path inside .venv
    executable: str  # the interpreter's file name in bin/ (python3.11)
    version: str

    @property
    def base_inside(self) -> str:
        return PYTHON if self.overlaid else str(self.base)

    @property
    def python(self) -> str:
        """The interpreter to run inside."""
        return f"{VENV}/bin/python" if self.sites else f"{self.base_inside}/bin/{self.executable}"

    def masked(self) -> list[str]:
        """Files inside site-packages that name host paths (editable installs), as seen inside."""
        found = []
        for host, inside in self.sites:
            for path in host.glob("__editable__*"):
                found.append(f"{VENV}/{inside}/{path.name}")
            for path in host.glob("*.egg-link"):
                found.append(f"{VENV}/{inside}/{path.name}")
            for path in host.glob("*.dist-info/direct_url.json"):
                found.append(f"{VENV}/{inside}/{path.parent.name}/{path.name}")
        return found

    def translations(self, workspace: Path) -> list[tuple[str, str]]:
        """(host prefix, inside prefix), longest first: for argv, env and the working folder."""
        pairs = [(str(workspace), WORKSPACE), (sys.executable, self.python)]
        pairs.append((str(Path(sys.executable).parent), str(Path(self.python).parent)))
        pairs += [(str(host), f"{VENV}/{inside}") for host, inside in self.sites]
        if self.sites:
            pairs.append((sys.prefix, VENV))
        if self.overlaid:
            pairs.append((str(self.base), PYTHON))
        return sorted(pairs, key=lambda pair: -len(pair[0]))

    def inside(self, text: str, workspace: Path) -> str:
        """`text` (a path, or a PATH-like list) with every host prefix replaced by the inside one."""
        return ":".join(self._inside_entry(part, workspace) for part in text.split(":"))

    def _inside_entry(self, part: str, workspace: Path) -> str:
        for host, inside in self.translations(workspace):
            if part == host or part.startswith(host + "/"):
                return inside + part[len(host) :]
        return part


@functools.cache
def layout() -> Layout:
    base = Path(sys.base_prefix).resolve()
    overlaid = not any(base.is_relative_to(p) for p in SYSTEM_PATHS)
    sites: list[tuple[Path, str]] = []
    if sys.prefix != sys.base_prefix:
        prefix = Path(sys.prefix)
        for path in dict.fromkeys(Path(p) for p in site.getsitepackages()):
            if path.is_dir() and path.is_relative_to(prefix) and not path.is_symlink():
                sites.append((path.resolve(), str(path.relative_to(prefix))))
    executable = Path(os.path.realpath(sys.executable)).name
    version = ".".join(str(part) for part in sys.version_info[:3])
    return Layout(base, overlaid, tuple(sites), executable, version)


def prepare(workspace: Path, uid: int, tmp_mb: int, tmp_inodes: int) -> Callable[[], None]:
    """The child's steps before it executes bwrap; everything is computed here, in the parent."""
    plan = layout()
    cfg = f"home = {plan.base_inside}/bin\ninclude-system-site-packages = false\nversion = {plan.version}\n"
    options = f"size={tmp_mb}m,nr_inodes={tmp_inodes},mode=0755,uid={uid},gid={uid}".encode()
    base, workspace_path = os.fsencode(plan.base), os.fsencode(workspace)
    sites = [(os.fsencode(host), os.fsencode(f"{STAGE}/.venv/{inside}")) for host, inside in plan.sites]
    python_link = f"{plan.base_inside}/bin/{plan.executable}"

    def apply() -> None:
        _check(_libc.unshare(_CLONE_NEWNS), "unshare")
        _mount(None, b"/", None, _MS_REC | _MS_PRIVATE)
        # Reach everything under /tmp now: the tmpfs below covers it.
        held = [os.open(workspace_path, _DIR), os.open(base, _DIR), *(os.open(h, _DIR) for h, _ in sites)]
        try:
            _mount(b"tmpfs", STAGE.encode(), b"tmpfs", _MS_NOSUID | _MS_NODEV, options)
            for name in (".scratch", ".workspace", ".empty", ".venv", ".venv/bin", ".python"):
                os.mkdir(f"{STAGE}/{name}", 0o755)
            os.chmod(f"{STAGE}/.scratch", 0o1777)
            os.chown(f"{STAGE}/.scratch", uid, uid)
            _mount(_fd_path(held[0]), f"{STAGE}/.workspace".encode(), None, _MS_BIND)
            empty = os.open(f"{STAGE}/.empty", _DIR)
            held.append(empty)
            if plan.overlaid:
                _overlay(held[1], empty, f"{STAGE}/.python".encode())
            for fd, (_, target) in zip(held[2:], sites, strict=False):
                os.makedirs(target, 0o755)
                _overlay(fd, empty, target)
            if sites:
                with open(f"{STAGE}/.venv/pyvenv.cfg", "w") as out:
                    out.write(cfg)
                os.symlink(python_link, f"{STAGE}/.venv/bin/python")
        finally:
            for fd in held:
                os.close(fd)
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)

    return apply


def _overlay(lower: int, empty: int, target: bytes) -> None:
    data = f"lowerdir={_fd_path(lower).decode()}:{_fd_path(empty).decode()}".encode()
    _mount(b"overlay", target, b"overlay", _MS_RDONLY | _MS_NOSUID | _MS_NODEV, data)


def _fd_path(fd: int) -> bytes:
    return f"/proc/self/fd/{fd}".encode()


def _mount(
    source: bytes | None, target: bytes, fstype: bytes | None, flags: int, data: bytes | None = None
) -> None:
    _check(_libc.mount(source, target, fstype, flags, data), f"mount {target!r}")


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")
