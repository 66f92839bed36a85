"""The book's one table formatter, and the number formats its tables share.

Every table of the book goes through :func:`html_table`: no index column, one format per
column, "–" for a missing value (never NaN or None), numbers right-aligned, padded cells, a
wrapper that scrolls rather than cutting a wide table off (``book/_static/qfm.css`` styles the
class ``qfm-table``), and each cell's column name (``data-label``), so that on a narrow screen
a row reads as a card of "column: value" lines instead of running past the column. The result displays in a notebook and is what ``myst_nb.glue`` stores.
"""

from __future__ import annotations

import html
import math
from numbers import Number

import numpy as np
import pandas as pd

MISSING = "–"


def is_missing(value) -> bool:
    """None, NaN, or an empty string."""
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and value.strip() == ""


def fmt(value, spec: str = ".3f") -> str:
    """One value as text: numbers with ``spec``, booleans yes/no, missing as "–"."""
    if is_missing(value):
        return MISSING
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, Number):
        return f"{int(round(float(value)))}" if spec == "d" else format(float(value), spec)
    return str(value)


def mean_sd(values, spec: str = ".3f") -> str:
    """``mean ± sd`` of the non-missing values ("–" if none; the mean alone if one)."""
    v = pd.Series(values, dtype="float64").dropna()
    if v.empty:
        return MISSING
    if len(v) == 1:
        return format(float(v.iloc[0]), spec)
    return f"{v.mean():{spec}} ± {v.std(ddof=1):{spec}}"


def ci_text(delta, lo, hi, spec: str = "+.3f") -> str:
    """``Δ [lo, hi]``: a paired difference and its 95 % interval ("–" parts where missing)."""
    if is_missing(delta):
        return MISSING
    if is_missing(lo) or is_missing(hi):
        return format(float(delta), spec)
    return f"{float(delta):{spec}} [{float(lo):{spec}}, {float(hi):{spec}}]"


class Table:
    """An HTML table that displays in Jupyter (and is what glue stores)."""

    def __init__(self, markup: str, frame: pd.DataFrame):
        self.markup = markup
        self.frame = frame

    def _repr_html_(self) -> str:
        return self.markup

    def __repr__(self) -> str:  # text/plain: the same cells, no index
        return self.frame.to_string(index=False)


def html_table(df: pd.DataFrame, formats: dict | None = None, notes: str = "",
               numeric: list[str] | None = None) -> Table:
    """The book's table: formatted cells, no index, "–" for missing values.

    Args:
        df: the rows, columns in display order (the index is dropped).
        formats: column → format spec (``".3f"``, ``"+.3f"``, ``".1%"``, ``"d"``) or a
            callable value → text; other numeric columns use ``.3f``, text as given.
        notes: a line of text under the table (escaped).
        numeric: columns to right-align besides the numeric ones (e.g. ``mean ± sd`` text).
    Returns:
        A :class:`Table` (``_repr_html_``).
    """
    formats = dict(formats or {})
    df = df.reset_index(drop=True)
    right = set(numeric or [])
    cells = pd.DataFrame(index=df.index)
    for col in df.columns:
        spec = formats.get(col)
        series = df[col]
        is_num = pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
        if is_num:
            right.add(col)
        if callable(spec):
            cells[col] = [MISSING if is_missing(v) else str(spec(v)) for v in series]
        else:
            whole = is_num and series.dropna().map(lambda v: float(v).is_integer()).all()
            default = "d" if pd.api.types.is_integer_dtype(series) or whole else ".3f"
            cells[col] = [fmt(v, spec or default) for v in series]
    head = "".join(f'<th class="{"num" if c in right else "text"}">{html.escape(str(c))}</th>'
                   for c in cells.columns)
    body = "".join(
        "<tr>" + "".join(f'<td class="{"num" if c in right else "text"}" '
                         f'data-label="{html.escape(str(c))}">{html.escape(v)}</td>'
                         for c, v in zip(cells.columns, row)) + "</tr>"
        for row in cells.itertuples(index=False))
    note = f'<p class="qfm-table-note">{html.escape(notes)}</p>' if notes else ""
    markup = (f'<div class="qfm-table-wrap"><table class="qfm-table"><thead><tr>{head}</tr>'
              f"</thead><tbody>{body}</tbody></table>{note}</div>")
    return Table(markup, cells)


def note(text: str) -> Table:
    """A one-line note in place of a table (e.g. "not measured yet"), never a code block."""
    frame = pd.DataFrame({"note": [text]})
    return Table(f'<p class="qfm-table-note"><em>{html.escape(text)}</em></p>', frame)
