"""Old vs new code on the same inputs (the house redesign): study runs, token, tail and LIVEC
token extraction. Run it once per checkout (old: PYTHONPATH=<old checkout>, cwd there; both with
QFM_HOME pointing at one project holding data/world and the Lite0 token cache) and compare the two
result.json files (scripts/redesign_equivalence.json)."""
import hashlib, json, sys
from pathlib import Path
import torch
torch.set_num_threads(1)
which, out = sys.argv[1], Path(sys.argv[2])
new = which == "new"
from qfm.config import load_params, override, read_params
from qfm import paths
if new:
    from qfm.study.runner import make_specs, run_specs
    from qfm.study.stages import base_config as B, features_path as FP, study_params
else:
    from qfm.study.runs import make_specs, run_specs
    from qfm.study.stages import _base as B, _features as FP, study_params
from qfm.study import tokens, finetune, real
raw = read_params("params.yaml"); st = study_params(raw); base = B("params.yaml", st)
res = {}
# 1) token extraction, tail extraction, CLIVE extraction on small subsets
def th(path):
    from safetensors.torch import load_file
    t = load_file(str(path))
    return {k: hashlib.sha256(v.numpy().tobytes()).hexdigest()[:16] for k, v in sorted(t.items())}
tokens.extract(base.model, out / "tok.safetensors", max_images=48, progress=False)
res["tokens"] = th(out / "tok.safetensors")
finetune.extract_world(base.model, out / "tail.safetensors", stages=1, max_images=24, progress=False)
res["tail"] = th(out / "tail.safetensors")
src = real.source("livec", Path("/work/shared/data/livec"), 10)
few = src.table.iloc[:4]
real.extract(base.model, Path("/work/shared/data/livec"), few, real.TokenRecipe(500, 1, 384), out / "livec.safetensors", progress=False)
res["livec_tokens"] = th(out / "livec.safetensors")
# 2) study runs on the world's cached tokens (4 epochs), every main variant, seed 0 and 3
b = override(base, {"train.epochs": 4})
specs = make_specs(raw, b, ["baseline", "gate", "gate_static", "gate_params", "gate_qfm", "full"], [0, 3], 0.0)
rows = run_specs(specs, FP(st), str(paths.world_dir()), workers=2, progress=False)
res["rows"] = []
for r in rows:
    state = r.get("state") or {}
    h = hashlib.sha256(b"".join(v.float().numpy().tobytes() for _, v in sorted(state.items()))).hexdigest()[:16]
    res["rows"].append({k: v for k, v in sorted(r.items()) if k not in ("state", "model_cfg", "_key", "seconds")} | {"state": h})
json.dump(res, open(out / "result.json", "w"), indent=1, sort_keys=True, default=str)
print("done", which)
