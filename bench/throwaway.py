"""A throwaway adapter written to a folder, for the benchmarks that time the lab rather than a model."""

from __future__ import annotations

from pathlib import Path

from shared.domain import ROLES


def write_adapter(folder: Path, *, manifest: str, candidate: str, harness: str) -> Path:
    """An adapter folder with these three files, a knowledge note and a prompt per role."""
    (folder / "prompts").mkdir(parents=True)
    (folder / "domain.toml").write_text(manifest)
    (folder / "knowledge.md").write_text("nothing to know\n")
    (folder / "candidate.py").write_text(candidate)
    (folder / "harness.py").write_text(harness)
    for role in ROLES:
        (folder / "prompts" / f"{role}.md").write_text(f"{role}\n")
    return folder
