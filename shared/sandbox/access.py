"""What an untrusted process may see and change: its workspace, the system's programs, and Python."""

from __future__ import annotations

import site
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SYSTEM_PATHS", "Access", "python_roots"]

# Read-only everywhere: programs, shared libraries, and the system configuration they read.
SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc", "/sys")


@dataclass(frozen=True)
class Access:
    """The workspace (writable, or read-only with a private scratch /tmp) and what must stay unseen.

    `hidden` holds held-out data: files and folders that are masked even where they lie inside a
    folder the process may read (a package's data inside site-packages, say).
    """

    workspace: Path
    writable: bool = True
    hidden: tuple[Path, ...] = ()


def python_roots() -> tuple[Path, ...]:
    """The folders this interpreter and its packages live in, outermost only, resolved."""
    candidates: list[str | Path] = [
        sys.prefix,
        sys.base_prefix,
        sys.exec_prefix,
        sys.base_exec_prefix,
        Path(sys.executable).resolve().parent.parent,
        *site.getsitepackages(),
    ]
    roots: list[Path] = []
    for path in sorted({Path(p).resolve() for p in candidates}, key=lambda p: len(p.parts)):
        if path.exists() and not any(path.is_relative_to(root) for root in roots):
            roots.append(path)
    return tuple(roots)
