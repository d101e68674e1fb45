"""A table of examples: column types, missingness, distributions, and how each column relates to the target.

The target is the manifest's `[data] target`. A numeric target with few distinct values (or a text
one) is treated as classes: the report shows their balance and, per numeric column, the correlation
ratio (eta: how much of the column's variance the classes explain); otherwise Pearson's r.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from services.explorer.markdown import num, table
from services.explorer.plots import png
from services.explorer.profiles.profile import BadExport, Profile
from shared.domain import Data

__all__ = ["tabular_profile"]

MAX_CLASSES = 20
MISSING_COLUMN = 0.05
STRONG_ASSOCIATION = 0.3
_HISTOGRAMS = 12


def tabular_profile(frame: pd.DataFrame, data: Data) -> Profile:
    if len(frame) < 2 or frame.shape[1] < 1:
        raise BadExport(
            f"the exported table has {len(frame)} rows and {frame.shape[1]} columns; need 2 and 1"
        )
    frame = frame.rename(columns=str)
    if data.target is not None and data.target not in frame.columns:
        raise BadExport(
            f"domain.toml [data].target: the exported table has no column {data.target!r} "
            f"(columns: {list(frame.columns)[:12]})"
        )
    target = frame[data.target] if data.target else None
    features = frame.drop(columns=[data.target]) if data.target else frame
    classes = target is not None and _is_classes(target)
    association = _association(features, target, classes) if target is not None else pd.Series(dtype=float)
    lines = [
        _shape_line(frame, features),
        *_missing_lines(frame),
        *_target_lines(target, classes, data.target),
        *_association_lines(association, classes),
        *_oddity_lines(frame, features),
    ]
    sections = (
        ("Columns", table(("column", "type", "missing", "distinct", "mean / top", "std", "min", "max"),
                          [_column_row(frame[c]) for c in frame.columns])),
    )  # fmt: skip
    if not association.empty:
        method = "correlation ratio (eta)" if classes else "Pearson r"
        rows = [(name, f"{value:+.3f}") for name, value in association.items()]
        sections += (
            (
                f"Association with {data.target}",
                f"{method}, strongest first\n\n" + table(("column", method), rows),
            ),
        )
    return Profile(
        findings=tuple(lines), sections=sections, plots=_plots(features, target, classes, association)
    )


def _is_classes(target: pd.Series) -> bool:
    return not pd.api.types.is_numeric_dtype(target) or target.nunique(dropna=True) <= MAX_CLASSES


def _numeric(features: pd.DataFrame) -> pd.DataFrame:
    return features.select_dtypes(include="number").astype(float)


def _association(features: pd.DataFrame, target: pd.Series, classes: bool) -> pd.Series:
    values = {}
    for name, column in _numeric(features).items():
        if column.nunique(dropna=True) < 2:
            continue
        values[name] = _eta(column, target) if classes else column.corr(target.astype(float))
    series = pd.Series(values, dtype=float).dropna()
    return series.reindex(series.abs().sort_values(ascending=False).index)


def _eta(column: pd.Series, labels: pd.Series) -> float:
    """The correlation ratio: the share of the column's spread that the class means explain, square-rooted."""
    known = column.notna() & labels.notna()
    column, labels = column[known], labels[known]
    total = float(((column - column.mean()) ** 2).sum())
    if total == 0:
        return float("nan")
    means = column.groupby(labels).transform("mean")
    return float(np.sqrt(((means - column.mean()) ** 2).sum() / total))


def _shape_line(frame: pd.DataFrame, features: pd.DataFrame) -> str:
    numeric = _numeric(features).shape[1]
    return (
        f"{len(frame):,} rows x {features.shape[1]} feature columns "
        f"({numeric} numeric, {features.shape[1] - numeric} categorical or text)"
    )


def _missing_lines(frame: pd.DataFrame) -> list[str]:
    share = frame.isna().mean()
    if share.sum() == 0:
        return ["no missing values"]
    gappy = share[share > MISSING_COLUMN].sort_values(ascending=False)
    line = f"{frame.isna().to_numpy().mean():.1%} of values are missing"
    if not gappy.empty:
        worst = f"{gappy.index[0]} at {gappy.iloc[0]:.1%}"
        line += f"; {len(gappy)} columns miss >{MISSING_COLUMN:.0%} (worst: {worst})"
    return [line]


def _target_lines(target: pd.Series | None, classes: bool, name: str | None) -> list[str]:
    if target is None:
        return ["no target column declared ([data].target in domain.toml): associations not measured"]
    if classes:
        counts = target.value_counts(normalize=True, dropna=True)
        return [
            f"target {name}: {len(counts)} classes; most common {counts.index[0]!r} {counts.iloc[0]:.1%}, "
            f"rarest {counts.index[-1]!r} {counts.iloc[-1]:.1%}"
        ]
    values = target.astype(float)
    return [
        f"target {name}: mean {values.mean():.4g}, std {values.std():.4g}, "
        f"range {values.min():.4g} to {values.max():.4g}, skew {values.skew():.2f}"
    ]


def _association_lines(association: pd.Series, classes: bool) -> list[str]:
    if association.empty:
        return []
    word = "eta" if classes else "r"
    top = ", ".join(f"{name} ({word} = {value:+.2f})" for name, value in association.head(3).items())
    strong = int((association.abs() >= STRONG_ASSOCIATION).sum())
    return [
        f"most informative columns: {top}; {strong} of {len(association)} numeric columns "
        f"reach |{word}| >= {STRONG_ASSOCIATION}"
    ]


def _oddity_lines(frame: pd.DataFrame, features: pd.DataFrame) -> list[str]:
    lines = []
    constant = [c for c in features.columns if features[c].nunique(dropna=True) <= 1]
    if constant:
        lines.append(f"{len(constant)} constant columns carry no information (e.g. {constant[0]})")
    duplicates = int(frame.duplicated().sum())
    if duplicates:
        lines.append(f"{duplicates} duplicate rows ({duplicates / len(frame):.1%})")
    return lines


def _column_row(column: pd.Series) -> tuple[str, ...]:
    missing, distinct = f"{column.isna().mean():.1%}", str(column.nunique(dropna=True))
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        values = column.astype(float)
        stats = (num(values.mean(), 4), num(values.std(), 4), num(values.min(), 4), num(values.max(), 4))
        return (str(column.name), str(column.dtype), missing, distinct, *stats)
    top = column.mode(dropna=True)
    return (
        str(column.name),
        str(column.dtype),
        missing,
        distinct,
        repr(top.iloc[0]) if len(top) else "-",
        "-",
        "-",
        "-",
    )


def _plots(
    features: pd.DataFrame, target: pd.Series | None, classes: bool, association: pd.Series
) -> dict[str, bytes]:
    plots = {}
    numeric = _numeric(features)
    if numeric.shape[1]:
        plots["distributions.png"] = _histograms(
            numeric[list(association.index[:_HISTOGRAMS]) or numeric.columns[:_HISTOGRAMS]]
        )
    if target is not None:
        plots["target.png"] = _target_plot(target, classes)
    if not association.empty:
        plots["association.png"] = _association_plot(association.head(20), classes)
    return plots


def _histograms(numeric: pd.DataFrame) -> bytes:
    columns = 4
    rows = -(-numeric.shape[1] // columns)
    fig = Figure(figsize=(10, 2.2 * rows))
    for index, name in enumerate(numeric.columns):
        ax = fig.add_subplot(rows, columns, index + 1)
        ax.hist(numeric[name].dropna(), bins=30, color="tab:blue")
        ax.set_title(str(name), fontsize=8)
        ax.tick_params(labelsize=6)
    return png(fig)


def _target_plot(target: pd.Series, classes: bool) -> bytes:
    fig = Figure(figsize=(6, 3))
    ax = fig.add_subplot()
    if classes:
        counts = target.value_counts(dropna=True)
        ax.bar([str(i) for i in counts.index], counts.to_numpy(), color="tab:green")
    else:
        ax.hist(target.astype(float).dropna(), bins=40, color="tab:green")
    ax.set_title(f"Target: {target.name}")
    return png(fig)


def _association_plot(association: pd.Series, classes: bool) -> bytes:
    fig = Figure(figsize=(7, 0.3 * len(association) + 1.2))
    ax = fig.add_subplot()
    ax.barh([str(i) for i in association.index][::-1], association.to_numpy()[::-1], color="tab:purple")
    ax.set_xlabel("correlation ratio (eta)" if classes else "Pearson r")
    ax.set_title("Association with the target")
    return png(fig)
