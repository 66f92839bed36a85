"""The analysis plan (``analysis_plan.yaml``): how every comparison of the book is judged.

One place fixes α, the interval by number of paired seeds, the rule for a degenerate interval,
when a Wilcoxon p is shown, the Holm families, the yardstick (the paper's own reported gain) and
how a comparison reads against it, and which runs count. :class:`Plan`'s defaults equal the
file (tested), so a Python user of :mod:`qfm.report.verdict` gets the book's rules; the figures
notebook loads the file (:func:`load`), so changing it reruns the verdicts (stage ``figures``
reads it as a params file). Alternatives of :attr:`Plan.sensitivity` make the sensitivity table
(:mod:`qfm.report.sensitivity`); they never decide a verdict.

The yardstick reading, on a comparison's unadjusted interval [lo, hi] of Δ (n ≥ min_seeds):
``ruled out`` (hi < yardstick: the paper's gain lies outside the interval), ``consistent``
(lo > 0 and hi ≥ yardstick: a gain, and the paper's is inside or below the interval),
``undecided`` (lo ≤ 0 and hi ≥ yardstick: no gain and the paper's gain both fit).
Imports nothing of qfm but the file helpers.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import yaml

PLAN_FILE = "analysis_plan.yaml"
INTERVALS = ("auto", "t", "bootstrap-t")  # auto: bootstrap-t from interval.bootstrap_t_from
FAMILIES = ("group_metric", "declared", "pooled")
READINGS = ("ruled out", "consistent", "undecided")
TOO_FEW = "too few seeds"


class PlanError(ValueError):
    """An analysis plan file that cannot be used (its message names the file and key)."""


@dataclass(frozen=True)
class Plan:
    """The rules (field meanings: ``analysis_plan.yaml``'s comments)."""

    alpha: float = 0.05
    level: float = 0.95
    min_seeds: int = 5
    interval: str = "auto"  # the file has no key for it: the sensitivity alternatives set it
    bootstrap_t_from: int = 10
    resamples: int = 9999
    boot_seed: int = 0
    degenerate: str = "t"  # t: a bootstrap-t interval beyond the range of Δ → the t interval
    wilcoxon_from: int = 8
    families: str = "group_metric"
    yardstick: float = 0.016
    yardstick_source: str = ("Li et al., ICML 2024 (QFM-IQM, LIVEC column); "
                             "Qin et al., AAAI 2023 (DEIQT)")
    yardstick_metrics: tuple[str, ...] = ("test_srcc", "heldout_srcc")
    parts: str = "total"
    world: str = "same"
    failed: str = "pairwise"
    flagged: str = "keep"  # keep | drop (the sensitivity alternative)
    ties: str = "zero"
    sensitivity: tuple = field(default=(
        ("t everywhere", (("interval", "t"),)),
        ("bootstrap-t everywhere", (("interval", "bootstrap-t"), ("degenerate", "keep"))),
        ("degenerate kept", (("degenerate", "keep"),)),
        ("pooled families", (("families", "pooled"),)),
        ("declared families", (("families", "declared"),)),
        ("without flagged runs", (("flagged", "drop"),))))
    history: tuple = ()  # ({version, date, sha256, commit, note}, ...): the file's record

    def interval_kind(self, n: int) -> str:
        """``t`` or ``bootstrap-t``: the interval this plan uses at ``n`` paired seeds."""
        if self.interval != "auto":
            return self.interval
        return "bootstrap-t" if n >= self.bootstrap_t_from else "t"

    def alternatives(self) -> list[tuple[str, Plan]]:
        """(name, plan) of every sensitivity alternative."""
        return [(name, replace(self, **dict(changes))) for name, changes in self.sensitivity]

    def reading(self, lo, hi, n: int) -> str | None:
        """The yardstick reading of an interval (the module docstring); None without one."""
        if lo is None or hi is None or n < self.min_seeds or math.isnan(lo) or math.isnan(hi):
            return None
        if hi < self.yardstick:
            return "ruled out"
        return "consistent" if lo > 0 else "undecided"

    def family_key(self, group: str, metric: str, declared: str) -> str:
        """The Holm family of a comparison of ``group`` on ``metric`` (declared: the question's
        own family name)."""
        if self.families == "pooled":
            return metric
        if self.families == "declared":
            return f"{group} · {declared}"
        return f"{group} · {metric}"


_KEYS = {  # file key path → Plan field
    ("alpha",): "alpha", ("level",): "level", ("min_seeds",): "min_seeds",
    ("interval", "bootstrap_t_from"): "bootstrap_t_from",
    ("interval", "resamples"): "resamples", ("interval", "seed"): "boot_seed",
    ("interval", "degenerate"): "degenerate", ("wilcoxon_from",): "wilcoxon_from",
    ("families",): "families", ("yardstick", "srcc"): "yardstick",
    ("yardstick", "source"): "yardstick_source", ("yardstick", "metrics"): "yardstick_metrics",
    ("yardstick", "parts"): "parts", ("yardstick", "world"): "world",
    ("runs", "failed"): "failed", ("runs", "flagged"): "flagged", ("runs", "ties"): "ties",
}
_CHOICES = {"families": FAMILIES, "degenerate": ("t", "keep"), "parts": ("total",),
            "world": ("same",), "failed": ("pairwise",), "flagged": ("keep", "drop"),
            "ties": ("zero",), "interval": INTERVALS}


def rules_hash(raw: dict) -> str:
    """SHA-256 of the plan's rules: the file's mapping without ``history``, as sorted JSON."""
    rules = {k: v for k, v in raw.items() if k != "history"}
    return hashlib.sha256(json.dumps(rules, sort_keys=True).encode()).hexdigest()


def from_dict(raw: dict, where: str = PLAN_FILE) -> Plan:
    """A :class:`Plan` from the file's mapping; a missing, unknown or bad key raises
    :class:`PlanError` naming it."""
    known = {p[0] for p in _KEYS} | {"sensitivity", "history"}
    for k in raw:
        if k not in known:
            raise PlanError(f"{where}: unknown key '{k}'")
    kw = {}
    for path, name in _KEYS.items():
        node = raw
        for part in path:
            if not isinstance(node, dict) or part not in node:
                raise PlanError(f"{where}: missing key '{'.'.join(path)}'")
            node = node[part]
        default = getattr(Plan, name)
        if isinstance(default, tuple):
            node = tuple(node)
        elif isinstance(default, (int, float)) and not isinstance(node, (int, float)):
            raise PlanError(f"{where}: '{'.'.join(path)}' must be a number, got {node!r}")
        if name in _CHOICES and node not in _CHOICES[name]:
            raise PlanError(f"{where}: '{'.'.join(path)}' must be one of "
                            f"{', '.join(_CHOICES[name])}, got {node!r}")
        kw[name] = type(default)(node) if isinstance(default, (int, float)) else node
    alts = []
    for i, alt in enumerate(raw.get("sensitivity") or []):
        alt = dict(alt)
        name = alt.pop("name", None)
        if not name:
            raise PlanError(f"{where}: sensitivity[{i}] needs a name")
        for k, v in alt.items():
            if k not in _CHOICES:
                raise PlanError(f"{where}: sensitivity[{i}]: unknown key '{k}'")
            if v not in _CHOICES[k]:
                raise PlanError(f"{where}: sensitivity[{i}].{k} must be one of "
                                f"{', '.join(_CHOICES[k])}, got {v!r}")
        alts.append((name, tuple(alt.items())))
    history = tuple(dict(h) for h in raw.get("history") or [])
    return Plan(**kw, sensitivity=tuple(alts), history=history)


def read(path: str | Path = PLAN_FILE) -> dict:
    """The plan file as a mapping (a missing or unreadable file: :class:`PlanError`)."""
    p = Path(path)
    if not p.is_file():
        raise PlanError(f"{p}: analysis plan not found")
    try:
        raw = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        raise PlanError(f"{p}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise PlanError(f"{p}: expected a mapping of rules")
    return raw


def load(path: str | Path = PLAN_FILE) -> Plan:
    """The :class:`Plan` of ``path``."""
    return from_dict(read(path), str(path))


def fields_table() -> list[str]:
    """The names of :class:`Plan`'s fields (the plan page lists each rule)."""
    return [f.name for f in fields(Plan)]


PLAN = Plan()  # the defaults: equal to analysis_plan.yaml (tests/report/test_analysis_plan.py)
