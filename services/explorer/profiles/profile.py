"""What every data profile yields."""

from __future__ import annotations

from dataclasses import dataclass

from shared.errors import AlphaLabError

__all__ = ["BadExport", "Profile"]


class BadExport(AlphaLabError):
    """The exported training data is not what the manifest's data kind says it is."""


@dataclass(frozen=True, slots=True)
class Profile:
    findings: tuple[str, ...]
    sections: tuple[tuple[str, str], ...]  # (heading, markdown); the first comes before the baselines
    plots: dict[str, bytes]  # PNG by file name
