"""The Paper-protocol route end to end on real-format trees with synthetic pixels.

A KADID-10k tree (``dmos.csv`` + ``images/``, references beside distorted images) and a
KonIQ-10k tree (the distributions CSV with its official sets + 1024×768 JPEGs, so the resize
cache is exercised) go through the commands the book's *Paper protocol* page documents:
``qfm data check`` → ``qfm data split`` → ``qfm data cache`` → ``qfm protocol`` over 2 splits
with distillation → ``qfm cross`` from one set to the other → ``qfm evaluate`` of the split-1
checkpoint. Tiny model, one epoch; about 30 s on 2 cores.
"""

from __future__ import annotations

import json

import pytest
import yaml
from PIL import Image

from qfm.cli import main
from qfm.config import to_dict


def _run(capsys, *argv) -> str:
    code = main([*argv])
    out = capsys.readouterr()
    assert code == 0, f"qfm {' '.join(argv)}: exit {code}\n{out.err[-2000:]}"
    return out.out


def test_paper_route_on_kadid_and_koniq_trees(real_data, tmp_path, capsys, make_cfg):
    home = tmp_path / "home"
    params = tmp_path / "params.yaml"  # a tiny profile; the book's flags change only sizes
    cfg = to_dict(make_cfg(train={"epochs": 1, "batch_size": 4, "test_crops": 2,
                                     "split": 0}))
    params.write_text(yaml.safe_dump(cfg))
    sets = ["--params", str(params)]

    for name in ("kadid10k", "koniq10k"):
        report = json.loads(_run(capsys, "data", "check", "--dataset", name, "--root",
                                 str(real_data / name), "--json"))
        assert report["usable"] and report["errors"] == 0, report
        _run(capsys, "data", "split", "--dataset", name, "--root", str(real_data / name),
             "--n", "2")
        assert (home / "splits" / name / "split_1.csv").is_file()
    assert (home / "splits" / "koniq10k" / "split_official.csv").is_file()

    _run(capsys, "data", "cache", "--dataset", "koniq10k", "--root",
         str(real_data / "koniq10k"))
    cached = sorted((real_data / "cache" / "koniq10k").rglob("*.png"))
    assert len(cached) == 24 and {Image.open(p).size for p in cached} == {(512, 384)}

    runs = tmp_path / "runs"
    out = _run(capsys, "protocol", "--dataset", "koniq10k", "--splits", "0-1", "--runs",
               str(runs), *sets, "--set", "model.gate=true", "--set", "qfm.enabled=true",
               "--set", "distill.enabled=true", "--set", "distill.views=1")
    assert "koniq10k: median SRCC" in out
    proto = json.loads((runs / "koniq10k" / "protocol.json").read_text())
    assert [r["split"] for r in proto["splits"]] == [0, 1] and proto["summary"]["srcc"]["n"] == 2
    for k in (0, 1):
        run = runs / "koniq10k" / f"split_{k}"
        assert (run / "teacher" / "model.safetensors").is_file()  # distillation really ran
        m = json.loads((run / "metrics.json").read_text())
        assert m["expanded"]["views"] > 0 and m["expanded"]["unlabelled"] == 0
        assert "kd" in m["history"][0] and proto["splits"][k]["teacher_srcc"] == \
            m["teacher"]["test"]["srcc"]
        side = json.loads((run / "model.json").read_text())
        assert side["config"]["distill"]["enabled"] and side["dataset"] == "koniq10k"
        assert side["split"] == k

    ck1 = runs / "koniq10k" / "split_1" / "model.safetensors"
    cross = json.loads(_run(capsys, "cross", "--checkpoint", str(ck1), "--dataset",
                            "kadid10k", *sets))
    assert cross["train_dataset"] == "koniq10k" and cross["test_dataset"] == "kadid10k"
    assert cross["n"] == 48  # every distorted image of the other set

    # params.yaml names split 0; the checkpoint was trained on split 1 and is scored there
    ev = json.loads(_run(capsys, "evaluate", "--checkpoint", str(ck1), *sets))
    assert ev["split"] == 1 and ev["dataset"] == "koniq10k"
    assert ev["srcc"] == pytest.approx(proto["splits"][1]["srcc"], abs=1e-6)
