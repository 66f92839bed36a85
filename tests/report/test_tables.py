"""The book's one table formatter: no index, "–" for missing values, formats per column."""

from __future__ import annotations

import numpy as np
import pandas as pd

from qfm.report.tables import ci_text, html_table, mean_sd, note


def test_html_table_drops_the_index_and_never_shows_nan_or_none():
    df = pd.DataFrame({"variant": ["a", "b"], "srcc": [0.91234, np.nan],
                       "note": [None, "x"], "ok": [True, False], "n": [10, 9]},
                      index=[7, 8])
    t = html_table(df, {"srcc": ".3f"})
    html = t._repr_html_()
    assert ">0.912<" in html and html.count(">–<") == 2
    assert "nan" not in html.lower() and "None" not in html
    assert ">7<" not in html and ">8<" not in html  # no index column
    assert '<td class="num" data-label="n">10</td>' in html and ">yes<" in html and ">no<" in html
    assert "0.912" in repr(t) and "7" not in repr(t).split("\n")[1][:2]


def test_number_formats_for_the_prose_and_the_tables():
    assert mean_sd([0.9, 0.8]) == "0.850 ± 0.071"
    assert mean_sd([np.nan]) == "–" and mean_sd([0.5]) == "0.500"
    assert ci_text(0.0123, -0.004, 0.03) == "+0.012 [-0.004, +0.030]"
    assert ci_text(0.01, np.nan, np.nan) == "+0.010"
    assert "<pre" not in note("not measured yet")._repr_html_()
