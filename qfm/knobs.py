"""The one table of tunable knobs: key, symbol, default, off value, bound, meaning.

Every list of the study's tunable knobs reads :data:`KNOBS`: the typed config (its defaults and
``auto``), the tuner (:mod:`qfm.study.tune`: which ``study.tune`` entries exist, where a grid
may be extended, which value switches a part off), a run's row (the knob values it trained
with), and the book's tables and glossary (symbols and meanings). The grids themselves are
parameters of the tuning stage (``params.yaml``, ``study.tune.<name>.grid``), so ``dvc exp run
-S`` can change them. tests/system/test_knobs.py fails on a second list of these keys.

A knob params.yaml sets to ``auto`` is tuned on validation (stage ``tune``); anywhere else
``auto`` means the table's ``default``. Imports nothing of qfm.
"""

from __future__ import annotations

from dataclasses import dataclass

AUTO = "auto"  # the params.yaml value that leaves a knob to the tuner


@dataclass(frozen=True)
class Knob:
    """One tunable knob.

    Attributes:
        key: its dotted key in params.yaml (``section.field``).
        name: its key under ``study.tune`` and in a run's row.
        symbol: how the book writes it.
        default: its value where ``auto`` is not tuned (a Python user, ``qfm train``).
        off: the value that switches its part off (the tuner tries it once a grid's
            extensions are spent at the low edge), None if no value does.
        upper: a bound the grid never crosses (None: unbounded).
        part: the config section whose switch decides whether the knob acts: ``train``
            (always), ``qfm`` (``qfm.enabled``), ``distill`` (a student: ``teacher``).
        meaning: one line for the glossary.
    """

    key: str
    name: str
    symbol: str
    default: float
    off: float | None
    upper: float | None
    part: str
    meaning: str


KNOBS: tuple[Knob, ...] = (
    Knob("train.lr", "lr", "learning rate", 1e-3, None, None, "train",
         "AdamW's peak learning rate, one per architecture (variants built on it take it)"),
    Knob("qfm.rho", "rho", "ρ", 0.05, 0.0, None, "qfm",
         "radius of the adversarial semantic noise, relative to the tokens' norm "
         "(0: no perturbation)"),
    Knob("qfm.lambda_qfm", "lambda_qfm", "λ_qfm", 1.0, 0.0, None, "qfm",
         "weight of L_qfm in the loss (0: QFM's term off)"),
    Knob("qfm.tau", "tau", "τ", 0.05, None, 1.0, "qfm",
         "largest label gap |Δy| of a partner, on normalised labels (1 admits every partner)"),
    Knob("distill.lambda_kd", "lambda_kd", "λ_kd", 0.5, 0.0, None, "distill",
         "weight of the distillation term on pseudo-labelled images (0: no distillation term)"),
)

BY_KEY: dict[str, Knob] = {k.key: k for k in KNOBS}
BY_NAME: dict[str, Knob] = {k.name: k for k in KNOBS}
KEYS: tuple[str, ...] = tuple(BY_KEY)  # the dotted keys, in the order the tuner tunes them


def symbol(key: str) -> str:
    """The book's symbol of a knob's dotted key (the key itself if it is no knob)."""
    return BY_KEY[key].symbol if key in BY_KEY else key


def qfm_term_off(qfm_section: dict) -> bool:
    """Whether a ``qfm`` section trains exactly as QFM off: disabled, or λ_qfm at its off
    value (0 × L_qfm adds nothing: the same gradients, batches and initialisation)."""
    return not qfm_section.get("enabled") or \
        qfm_section.get("lambda_qfm") == BY_KEY["qfm.lambda_qfm"].off


def row_values(cfg, student: bool) -> dict:
    """A run's knob values by name, None where the knob's part does not act (a row's columns).

    Args:
        cfg: a :class:`qfm.config.RunConfig` (read by attribute).
        student: whether the run is a distilled student (``distill`` knobs act).
    """
    on = {"train": True, "qfm": bool(cfg.qfm.enabled), "distill": student}
    out = {}
    for k in KNOBS:
        section, field = k.key.split(".")
        out[k.name] = getattr(getattr(cfg, section), field) if on[k.part] else None
    return out


def auto_keys(raw: dict) -> list[str]:
    """The knob keys a raw params mapping leaves to the tuner (value ``auto``)."""
    return [k.key for k in KNOBS
            if (raw.get(k.key.split(".")[0]) or {}).get(k.key.split(".")[1]) == AUTO]
