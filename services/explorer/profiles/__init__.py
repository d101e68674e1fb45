"""Profiles of a domain's training data, one per data kind the manifest may declare (`[data] kind`).

Each is a pure function from the frame the harness exported to a `Profile`: one-line findings, report
sections and plots. `custom` adapters profile their data themselves (`harness.py explore`, see
`services.explorer.harness`); the explorer only assembles what they wrote.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from services.explorer.profiles.kernels import kernels_profile
from services.explorer.profiles.profile import Profile
from services.explorer.profiles.tabular import tabular_profile
from services.explorer.profiles.text import text_profile
from services.explorer.profiles.timeseries import timeseries_profile
from shared.domain import Data

__all__ = ["Profile", "profile"]

_PROFILES: dict[str, Callable[[pd.DataFrame, Data], Profile]] = {
    "timeseries": timeseries_profile,
    "tabular": tabular_profile,
    "text": text_profile,
    "kernels": kernels_profile,
}


def profile(frame: pd.DataFrame, data: Data) -> Profile:
    """The profile of `frame` for the manifest's data kind."""
    return _PROFILES[data.kind](frame, data)
