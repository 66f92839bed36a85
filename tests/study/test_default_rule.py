"""The default model's regime by rule (qfm.study.default_rule): each regime's winner on its own
splits, then the regimes on the splits they share; a regime competes from 5 splits; a choice
with no refit built is a one-line error; the sidecar says which regime."""

from __future__ import annotations

import json

import pytest

from qfm.files import FileError
from qfm.study import default_rule


def _record(path, vals):  # vals: {variant: [val_srcc per seed 0..]}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"rows": [{"variant": v, "seed": s, "val_srcc": x}
                                         for v, xs in vals.items()
                                         for s, x in enumerate(xs)]}))


def _measured(tmp_path, whole=None):
    m = tmp_path / "measured"
    # frozen: full best over 10 splits (0.80), though gate is better on splits 0-4
    _record(m / "livec" / "livec.json", {"full": [0.80] * 10,
                                         "gate": [0.81] * 5 + [0.70] * 5})
    (m / "livec" / "default_head.safetensors").write_bytes(b"")  # its refit, built
    _record(m / "livec_finetune" / "finetune.json", {"baseline": [0.78] * 5})
    if whole is not None:
        _record(m / "livec_whole" / "livec_whole.json", whole)
    return m


def test_each_regime_keeps_its_own_winner_and_regimes_meet_on_common_splits(tmp_path):
    got = default_rule.choose(_measured(tmp_path))
    assert (got["regime"], got["variant"], got["val_srcc"]) == ("frozen", "full", 0.8)
    assert got["common_splits"] == [0, 1, 2, 3, 4]
    table = {r["regime"]: r for r in got["table"]}
    assert table["last stage"]["variant"] == "baseline" and table["last stage"]["competes"]
    assert table["whole upstream"]["splits"] == 0 and not table["whole upstream"]["competes"]
    assert got["refit"].endswith("livec/default_head.safetensors")
    (tmp_path / "measured" / "livec" / "default_head.safetensors").unlink()
    got = default_rule.choose(tmp_path / "measured")
    assert got["refit"] is None and "livec stage" in got["build"]  # not built: named


def test_a_regime_competes_from_five_splits(tmp_path):
    four = default_rule.choose(_measured(tmp_path, whole={"baseline": [0.9] * 4}))
    assert four["regime"] == "frozen"
    five = _measured(tmp_path, whole={"baseline": [0.9] * 5, "full": [0.85] * 5})
    got = default_rule.choose(five)
    assert (got["regime"], got["variant"], got["refit"]) == ("whole upstream", "baseline", None)
    assert "qfm whole --refit" in got["build"]  # its refit is not built yet
    (five / "livec_whole" / "default.safetensors").write_bytes(b"")  # once built, it is named
    assert default_rule.choose(five)["refit"].endswith("livec_whole/default.safetensors")


def test_a_tie_keeps_the_earlier_cheaper_regime(tmp_path):
    got = default_rule.choose(_measured(tmp_path, whole={"baseline": [0.80] * 5}))
    assert got["regime"] == "frozen"


def test_no_record_is_a_one_line_error(tmp_path):
    with pytest.raises(FileError, match="no CLIVE record"):
        default_rule.choose(tmp_path / "nowhere")


def test_the_default_refuses_a_head_the_rule_did_not_choose(tmp_path):
    from qfm.study.default_model import export_default

    m = _measured(tmp_path, whole={"baseline": [0.9] * 5})
    with pytest.raises(FileError, match="rule chose the whole upstream regime's baseline"):
        export_default(m / "livec" / "default_head.safetensors", tmp_path / "d.safetensors",
                       rule_out=tmp_path / "rule.json", measured=m)
    assert not (tmp_path / "d.safetensors").exists() and not (tmp_path / "rule.json").exists()


def test_a_refit_from_fewer_splits_than_the_regime_has_now_is_refused(tmp_path):
    import torch

    from qfm.core.checkpoint import save_tensors
    from qfm.study.default_model import export_default

    m = _measured(tmp_path, whole={"baseline": [0.9] * 6})
    refit = m / "livec_whole" / "default.safetensors"
    save_tensors({"w": torch.zeros(1)}, refit, {"variant": "baseline", "splits": [0, 1, 2, 3, 4]})
    with pytest.raises(FileError, match="refit from 5 splits' rows, the whole upstream "
                                        "regime's baseline has 6 now: .*qfm whole --refit"):
        export_default(refit, tmp_path / "d.safetensors", rule_out=tmp_path / "rule.json",
                       measured=m)
    assert not (tmp_path / "d.safetensors").exists()
