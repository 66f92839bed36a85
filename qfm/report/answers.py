"""The answer lines and verdict words the book's prose glues, read from the verdict record.

Every function takes the record :func:`qfm.report.verdicts.verdict_record` built (and, where it
needs the run rows or params.yaml's ``figures`` section, the :class:`StudyInputs`) and returns
``{glue name: text}``, or the notes the notebook shows under a table. No verdict is computed
here: a line is an entry of ``results/verdicts.json`` as text (:func:`qfm.report.claims.answer`),
so the prose and the tables never disagree. JSON only (no torch).
"""

from __future__ import annotations

from qfm.report import claims
from qfm.report.ledger import NOT_MEASURED
from qfm.report.study import share_direction
from qfm.report.study_inputs import StudyInputs
from qfm.report.study_views import sweep_base, sweep_variants
from qfm.report.tables import Table, ci_text, mean_sd, note
from qfm.report.verdicts import TOY_KEY, main_group

# glue-name suffix → (variant, reference): the intro's attribution of the answer to its parts
ATTRIBUTION_GLUE = {"gate_over_baseline": ("gate", "baseline"),
                    "qfm_over_gate": ("gate_qfm", "gate"), "full_over_gate": ("full", "gate"),
                    "full_over_qfm": ("full", "gate_qfm")}
SWEEP_INTERACTIONS = ("gate_qfm", "full")  # their slopes against the gate, glued


def _baseline(inputs: StudyInputs, metric: str) -> str:
    return mean_sd(inputs.rows.loc[inputs.rows["variant"] == "baseline", metric])


def intro_values(record: dict, inputs: StudyInputs) -> dict[str, str]:
    """The intro's answer: per intro variant (params ``figures.intro``) against the baseline
    ``verdict_<v>``, ``delta_<v>`` (Δ [CI]) and ``answer_<v>`` (a line that says so where it did
    not run); ``answer_<attribution>`` (:data:`ATTRIBUTION_GLUE`); the slopes over the sweep
    ``answer_sweep_interaction_<v>``; the baseline's test SRCC (mean ± sd)."""
    main, intro = main_group(record, inputs), inputs.fig["intro"]
    out = {}
    for r in claims.record_frame(main, intro).itertuples():
        out[f"verdict_{r.variant}"] = r.verdict
        out[f"delta_{r.variant}"] = r.delta_ci
    out |= {f"answer_{v}": claims.answer_of(main, v) for v in intro}
    out["baseline_test_srcc"] = _baseline(inputs, "test_srcc")
    out |= {f"answer_{name}": claims.answer_of(main, v, ref)
            for name, (v, ref) in ATTRIBUTION_GLUE.items()}
    out |= {f"answer_sweep_interaction_{v}": claims.interaction_answer(record, v, "gate")
            for v in SWEEP_INTERACTIONS}
    return out


def attribution_notes(record: dict, inputs: StudyInputs) -> list[Table]:
    """One note per attribution comparison (``gate vs baseline: better (…)``)."""
    main = main_group(record, inputs)
    return [note(f"{v} vs {ref}: {claims.answer_of(main, v, ref)}")
            for v, ref in ATTRIBUTION_GLUE.values()]


def finetune_values(record: dict) -> dict[str, str]:
    """The attribution under the fine-tuning regime: ``ft_answer_<attribution>`` (the world)
    and ``livec_ft_answer_<attribution>`` (LIVEC; "not measured yet" where it never ran)."""
    world, livec = record["finetune"], record["livec_finetune"]
    out = {}
    for name, (v, ref) in ATTRIBUTION_GLUE.items():
        out[f"ft_answer_{name}"] = claims.answer_of(world, v, ref)
        out[f"livec_ft_answer_{name}"] = (claims.answer_of(livec, v, ref) if livec
                                          else NOT_MEASURED)
    return out


def livec_values(record: dict) -> dict[str, str]:
    """The attribution on LIVEC, ``livec_answer_<attribution>`` ("not measured yet" where the
    record has no LIVEC group)."""
    livec = record.get("livec")
    return {f"livec_answer_{name}": claims.answer_of(livec, v, ref) if livec else NOT_MEASURED
            for name, (v, ref) in ATTRIBUTION_GLUE.items()}


def heldout_values(record: dict, inputs: StudyInputs) -> dict[str, str]:
    """On the held-out photos: ``heldout_answer_<v>`` per main variant against the baseline,
    and the baseline's held-out SRCC (mean ± sd)."""
    held = claims.record_frame(main_group(record, inputs), inputs.variants, metric="heldout_srcc")
    out = {f"heldout_answer_{r.variant}": claims.answer(r) for r in held.itertuples()}
    out["baseline_heldout_srcc"] = _baseline(inputs, "heldout_srcc")
    return out


def sweep_values(record: dict, inputs: StudyInputs) -> dict[str, str]:
    """The sweep at its strongest spurious strength: ``spurious_max``, ``sweep_answer_<v>``
    (the gate and the sweep's variants against the baseline there), and the baseline's drop
    from the weakest strength to the strongest (``baseline_drop``)."""
    top = max(inputs.fig["sweep_groups"], key=lambda g: record[g]["spurious"])
    out = {"spurious_max": f"{record[top]['spurious']:g}"}
    out |= {f"sweep_answer_{v}": claims.answer_of(record[top], v)
            for v in sweep_variants(inputs)}
    base = sweep_base(inputs)
    b0, b1 = base.iloc[0], base.iloc[-1]
    out["baseline_drop"] = (f"{b0['mean']:.3f} at strength {b0['spurious']:g} to "
                            f"{b1['mean']:.3f} at strength {b1['spurious']:g}")
    return out


def slope_notes(record: dict, inputs: StudyInputs) -> list[Table]:
    """One note per slope over the spurious strength (:data:`qfm.report.claims.SWEEP`, then
    each sweep variant against the baseline)."""
    pairs = [*claims.SWEEP, *((v, "baseline") for v in inputs.fig["sweep"])]
    return [note(f"slope of {v} − {ref} over the strength: "
                 f"{claims.interaction_answer(record, v, ref)}") for v, ref in pairs]


def share_values(record: dict, inputs: StudyInputs) -> dict[str, str]:
    """The semantic-noise share: full against the baseline in one word (``share_word``) and in
    percentage points (``share_delta``), and the answers of gate_qfm vs gate and gate vs
    baseline on the share."""
    main = main_group(record, inputs)
    word, r = share_direction(main, "full")
    return {"share_word": word,
            "share_answer_qfm_over_gate": claims.answer_of(main, "gate_qfm", "gate", "share"),
            "share_answer_gate": claims.answer_of(main, "gate", "baseline", "share"),
            "share_delta": ci_text(100 * r.delta, 100 * r.ci_lo, 100 * r.ci_hi, "+.1f")
            + " percentage points"}


def toy_values(record: dict, inputs: StudyInputs) -> dict[str, str]:
    """The toy upstream against the ImageNet upstream (``answer_toy``) and the seeds it ran
    (``toy_seeds``)."""
    return {"answer_toy": claims.answer(record["toy"][TOY_KEY]["test_srcc"]),
            "toy_seeds": ", ".join(map(str, sorted(inputs.toy["seed"].unique())))}
