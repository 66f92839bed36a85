"""What the study's own notebooks (tune, study@<group>, livec) display: plain tables of the
rows they just wrote. The book's tables and figures live in qfm.report (stage figures); these
stay here so that a change to the book's look never reruns a training stage."""

from __future__ import annotations

import pandas as pd

from qfm.knobs import symbol

SEED_COLUMNS = ["variant", "seed", "best_epoch", "epochs", "val_srcc", "test_srcc", "test_plcc"]


def seed_frame(rows):
    """One row per run: variant, seed, best epoch, epochs run, validation and test SRCC."""
    frame = pd.DataFrame(list(rows))
    if frame.empty:
        return pd.DataFrame(columns=SEED_COLUMNS)
    return frame[[c for c in SEED_COLUMNS if c in frame]].sort_values(["variant", "seed"]) \
        .round(4).reset_index(drop=True)


def trials_frame(tune: dict):
    """Every tuning trial in the order tuned: knob, variant, value, validation SRCC, share of
    its runs whose best epoch was the last, whether it was chosen (test is never read)."""
    chosen = {(k["knob"], k["on"]): k["value"] for k in tune.get("knobs", [])
              if k.get("status") == "tuned"}
    return pd.DataFrame([{"knob": symbol(t["knob"]), "variant": t["variant"],
                          "value": t[t["knob"]], "val_srcc": round(t["val_srcc"], 4),
                          "best_is_last": t.get("best_is_last"),
                          "chosen": t[t["knob"]] == chosen.get((t["knob"], t["variant"])),
                          "reused": bool(t.get("reused"))} for t in tune["trials"]])


def chosen_text(tune: dict) -> str:
    """``learning rate = 0.002 (baseline), 0.004 (gate), ρ = 0.2 (gate_qfm), ...; fixed by
    params.yaml: τ = 0.05`` (in the order tuned)."""
    parts, fixed, moot = {}, [], []
    for k in tune.get("knobs", []):
        sym = symbol(k["knob"])
        if k.get("status") == "tuned":
            parts.setdefault(sym, []).append(f"{k['value']:g} ({k['on']})")
        elif str(k.get("status", "")).startswith("moot"):
            moot.append(sym)
        else:
            fixed.append(f"{sym} = {k['value']:g}")
    text = ", ".join(f"{s} = {', '.join(v)}" for s, v in parts.items())
    text += f"; fixed by params.yaml: {', '.join(fixed)}" if fixed else ""
    return text + (f"; not tuned, moot once λ_qfm = 0: {', '.join(moot)}" if moot else "")


def styled(frame, name: str):
    """``frame`` as a notebook shows it: HTML, index hidden, the table's ids fixed to ``name``
    (pandas draws a random id per table, and a Styler's plain-text form is its memory address:
    either would change an executed notebook's bytes on every run)."""
    from IPython.display import HTML  # only where a notebook runs (the pipeline's extra)

    return HTML(frame.style.set_uuid(name).hide(axis="index").to_html())
