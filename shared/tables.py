"""Reading a Parquet file into a DataFrame, by its path through pyarrow.

Not `pandas.read_parquet`: pandas opens a Python file object and hands it to pyarrow, whose thread
pool then sometimes aborts the interpreter at exit ("terminate called without an active exception",
apache/arrow#34314 and #50482). On 2 busy cores that killed 8 of 150 short harness runs with
SIGABRT after they had printed their answer; reading by path, 0 of 150.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


def read_parquet(path: Path) -> pd.DataFrame:
    import pyarrow.parquet

    return pyarrow.parquet.read_table(str(path)).to_pandas()
