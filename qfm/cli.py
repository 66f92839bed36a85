"""``qfm`` command line: argument parsing only; each subcommand calls one library function.

Errors the user can fix (bad config key, missing file, corrupt checkpoint) print one line,
``qfm: error: …``, and exit 2. ``QFM_DEBUG=1`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

EPILOG = "Docs: book/ (Jupyter Book). Every subcommand reads params.yaml; --set overrides keys."


def _config(args):
    from qfm.config import run_config

    return run_config(args.params, args.set)


def cmd_world(args) -> int:
    from qfm.data.world import generate

    cfg = _config(args)
    out = generate(cfg.world, args.out, n_splits=args.splits or cfg.world.splits)
    print(f"wrote the embedded default to {out}")
    return 0


def cmd_weights(args) -> int:
    from qfm import paths
    from qfm.core.weights import import_weights

    out = Path(args.out) if args.out else paths.imagenet_weights(args.name)
    meta = import_weights(args.name, out)
    print(f"wrote {out}: {meta['tensors']} tensors of {meta['timm_model']} from "
          f"{meta['source_file']} (sha256 {meta['source_sha256'][:12]}…)")
    return 0


def cmd_features(args) -> int:
    from qfm import paths
    from qfm.study.tokens import extract

    cfg = _config(args)
    out = Path(args.out) if args.out else paths.features_dir() / f"{cfg.model.weights}.safetensors"
    if args.tail:  # the fine-tuning regime: what enters the trainable last stage(s)
        from qfm.study.finetune import extract_world

        meta = extract_world(cfg.model, out, args.tail, progress=not args.quiet)
    else:
        meta = extract(cfg.model, out, max_images=0, progress=not args.quiet)
    print(f"wrote {out}: tokens {tuple(meta['shape'])} in {meta['seconds']:.0f}s")
    return 0


def cmd_study(args) -> int:
    from qfm.study import stages as study_stage

    if args.action == "tune":
        res = study_stage.tune(args.params, args.out)
        print(f"chosen on validation: {res['chosen']}")
    elif args.action == "run":
        if not args.group:
            raise ValueError("qfm study run: --group is required")
        rows = study_stage.run_group(args.params, args.group, args.out, args.tuned,
                                     args.head_out)
        print(f"wrote {args.out}: {len(rows)} runs")
    return 0


def cmd_livec(args) -> int:
    from qfm.study.livec import run_livec

    res = run_livec(args.params, args.out, progress=not args.quiet)
    return 0 if res["status"] in ("measured", "no data") else 1


def cmd_whole(args) -> int:
    from qfm.study.whole import run_whole
    from qfm.study.whole_refit import refit_whole

    if args.refit:  # the regime's candidate default model, from its split rows
        refit_whole(args.params, args.out, device=args.device, smoke=args.smoke,
                    progress=not args.quiet)
        return 0
    res = run_whole(args.params, args.out, only=args.only, seeds=args.seeds,
                    max_runs=args.max_runs, device=args.device, smoke=args.smoke,
                    if_data=args.if_data, survey_only=args.survey, progress=not args.quiet)
    return 0 if res["status"] in ("measured", "partial", "surveyed", "no data") else 1


def cmd_default(args) -> int:
    from qfm.study.default_model import export_default

    meta = export_default(args.head, args.out, args.check_out, args.rule_out)
    print(f"wrote {args.out} (variant {meta['variant']}, trained on "
          f"{meta.get('dataset', 'world')})")
    return 0


def cmd_upstream(args) -> int:
    from qfm import paths
    from qfm.runs.upstream import pretrain

    cfg = _config(args)
    out = Path(args.out) if args.out else paths.upstream_checkpoint()
    meta = pretrain(cfg.model, cfg.upstream, out, seed=cfg.shared.seed,
                    steps=20 if cfg.shared.smoke else None, device=cfg.train.device)
    print(f"wrote {out}: held-out accuracy {meta['heldout_accuracy']:.3f} "
          f"(chance {meta['chance']:.3f}) in {meta['seconds']:.0f}s")
    return 0


def cmd_train(args) -> int:
    from qfm.runs.train import fit

    cfg = _config(args)
    if cfg.distill.enabled:  # teacher → pseudo-labels → student (same as `qfm distill`)
        from qfm.runs.distill import run_distill

        m = run_distill(cfg, args.run_dir)
    else:
        m = fit(cfg, args.run_dir)
    t = m["test"]
    if os.environ.get("RANK", "0") == "0":  # under torchrun, one summary line
        print(f"test SRCC {t['srcc']:.4f} PLCC {t['plcc']:.4f} (best val epoch "
              f"{m['best_epoch'] + 1}); wrote {Path(args.run_dir) / 'metrics.json'}")
    return 0


def cmd_distill(args) -> int:
    from qfm.config import override
    from qfm.runs.distill import run_distill

    cfg = override(_config(args), {"distill.enabled": True})
    m = run_distill(cfg, args.run_dir)
    t, tt = m["test"], m["teacher"]["test"]
    if os.environ.get("RANK", "0") == "0":  # under torchrun, one summary line
        print(f"student test SRCC {t['srcc']:.4f} PLCC {t['plcc']:.4f}; teacher SRCC "
              f"{tt['srcc']:.4f} PLCC {tt['plcc']:.4f}; wrote "
              f"{Path(args.run_dir) / 'metrics.json'}")
    return 0


def cmd_analyze(args) -> int:
    from qfm.runs.noise import analyze

    cfg = _config(args)
    r = analyze(cfg, args.out, checkpoint=args.checkpoint, upstream=args.upstream,
                part=args.part)
    shares = ", ".join(f"{k} {v:.3f}" for k, v in r["share"].items())
    print(f"share of the 10% closest pairs with |dq| > 0.2: {shares} (all pairs: "
          f"{r['base_rate']:.3f}); wrote {Path(args.out) / 'semantic_noise.json'}")
    return 0


def cmd_evaluate(args) -> int:
    from qfm.runs.evaluate import evaluate_checkpoint

    cfg = _config(args)
    split = None if args.split is None else -1 if args.split == "official" else int(args.split)
    metrics = evaluate_checkpoint(args.checkpoint, cfg, args.part, args.dataset, split)
    print(json.dumps(metrics, indent=2, sort_keys=True))
    return 0


def cmd_predict(args) -> int:
    from qfm.predict import score_files, write_scores

    table = score_files(args.paths, args.checkpoint, batch_size=args.batch_size,
                        device=args.device, crops_per_image=args.crops, workers=args.workers,
                        runtime=args.runtime)
    write_scores(table, args.out)
    failed = int((table["error"] != "").sum())
    where = f"; wrote {args.out}" if args.out not in (None, "-") else ""
    print(f"scored {len(table) - failed} of {len(table)} image(s){where}"
          + (f"; {failed} failed (see the error column)" if failed else ""), file=sys.stderr)
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and docs)."""
    p = argparse.ArgumentParser(prog="qfm", description="QFM-IQM: no-reference image quality "
                                "assessment, reproducible.", epilog=EPILOG)
    p.add_argument("--version", action="version", version=_version())
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common(sp):
        sp.add_argument("--params", default="params.yaml", help="params file (default: "
                        "params.yaml if present, else built-in defaults)")
        sp.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="override a parameter, e.g. --set train.epochs=2 (repeatable)")
        return sp

    sp = common(sub.add_parser("world", help="generate the embedded default data set"))
    sp.add_argument("--out", default=None, help="output folder (default: data/world)")
    sp.add_argument("--splits", type=int, default=0,
                    help="number of seeded content splits (default: world.splits)")
    sp.set_defaults(func=cmd_world)

    sp = sub.add_parser("weights", help="map shipped ImageNet weights onto timm (offline)")
    sp.add_argument("name", help="efficientnet_lite0 | efficientnet_lite1 | efficientnet_lite2")
    sp.add_argument("--out", default=None, help="file (default: models/NAME.safetensors)")
    sp.set_defaults(func=cmd_weights)

    sp = common(sub.add_parser("features", help="cache the frozen upstream's tokens of "
                               "every world image"))
    sp.add_argument("--out", default=None, help="file (default: data/features/WEIGHTS."
                    "safetensors)")
    sp.add_argument("--quiet", action="store_true", help="no progress bar")
    sp.add_argument("--tail", type=int, default=0, help="cache instead what enters the last "
                    "TAIL stages (the fine-tuning regime's packed inputs; 0 = tokens)")
    sp.set_defaults(func=cmd_features)

    sp = sub.add_parser("study", help="the embedded default's study (tune | run)")
    sp.add_argument("action", choices=["tune", "run"])
    sp.add_argument("--params", default="params.yaml", help="params file")
    sp.add_argument("--group", default=None, help="run: a key of study.groups")
    sp.add_argument("--out", required=True, help="the JSON file")
    sp.add_argument("--tuned", default=None, help="run: tune.json whose choices apply")
    sp.add_argument("--head-out", default=None, help="run: save the best-val full run's head")
    sp.set_defaults(func=cmd_study)

    sp = sub.add_parser("livec", aliases=["clive"], help="the study on CLIVE's real MOS, where the data is "
                        "(else the committed results in measured/livec stand)")
    sp.add_argument("--params", default="params.yaml", help="params file")
    sp.add_argument("--out", default=None, help="folder (default: measured/livec)")
    sp.add_argument("--quiet", action="store_true", help="no progress output")
    sp.set_defaults(func=cmd_livec)

    sp = sub.add_parser("whole", help="the whole-upstream regime on CLIVE: every run trains "
                        "all of Lite0 and the head from pixels (resumable; e.g. --device cuda)")
    sp.add_argument("--params", default="params.yaml", help="params file")
    sp.add_argument("--out", default=None, help="folder (default: measured/livec_whole; "
                    "--smoke: runs/whole_smoke)")
    sp.add_argument("--only", default=None, help="variants, comma-separated (default: "
                    "whole.variants; a student's teacher runs too)")
    sp.add_argument("--seeds", default=None, help="CLIVE splits, e.g. 5-9 or 0,2 (default: "
                    "whole.seeds)")
    sp.add_argument("--max-runs", type=int, default=0, help="stop after N runs (0: all); "
                    "rerun to go on")
    sp.add_argument("--device", default=None, choices=["auto", "cpu", "cuda"],
                    help="default: whole.device")
    sp.add_argument("--smoke", action="store_true", help="a few steps on a few photos of "
                    "two splits (tests, a GPU's first check)")
    sp.add_argument("--if-data", action="store_true", help="without a CLIVE copy, report the "
                    "committed rows and change nothing (the DVC stage) instead of failing")
    sp.add_argument("--survey", action="store_true", help="train nothing: rewrite the index "
                    "of current, stale and missing rows (the DVC stage)")
    sp.add_argument("--refit", action="store_true", help="refit the best variant by validation "
                    "on all photos (needs 5 splits' rows) → <record>/default.safetensors")
    sp.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    sp.set_defaults(func=cmd_whole)

    sp = sub.add_parser("default", help="join the frozen upstream and the study's chosen head "
                        "into the default model")
    sp.add_argument("--head", required=True, help="the head saved by `qfm study run`")
    sp.add_argument("--out", required=True, help="the checkpoint to write")
    sp.add_argument("--check-out", default=None, help="score distortion ladders of a photo no "
                    "world contains and write them here (JSON)")
    sp.add_argument("--rule-out", default=None, help="check the head is the regime rule's "
                    "choice across CLIVE's regimes (qfm.study.default_rule); write it here")
    sp.set_defaults(func=cmd_default)

    sp = common(sub.add_parser("upstream", help="pre-train the backbone on the upstream "
                               "semantic task"))
    sp.add_argument("--out", default=None, help="checkpoint (default: models/upstream."
                    "safetensors)")
    sp.set_defaults(func=cmd_upstream)

    sp = common(sub.add_parser("train", help="train and evaluate one IQA model"))
    sp.add_argument("--run-dir", required=True, help="folder for state, checkpoint, metrics "
                    "(rerun the same command to resume)")
    sp.set_defaults(func=cmd_train)

    sp = common(sub.add_parser("evaluate", help="evaluate a checkpoint on the split it was "
                               "trained on"))
    sp.add_argument("--checkpoint", required=True, help="a .safetensors checkpoint")
    sp.add_argument("--part", default="test", choices=["train", "val", "test"])
    sp.add_argument("--dataset", default=None, help="another data set (default: the "
                    "checkpoint's)")
    sp.add_argument("--split", default=None, help="another split index or 'official' "
                    "(default: the checkpoint's; params.yaml's train.split is not used)")
    sp.set_defaults(func=cmd_evaluate)

    sp = sub.add_parser("predict", help="score image files with a trained checkpoint")
    sp.add_argument("paths", nargs="+", metavar="PATH", help="image files, folders "
                    "(recursive) or glob patterns")
    sp.add_argument("--checkpoint", default=None, help="a .safetensors checkpoint (default: "
                    "models/default.safetensors)")
    sp.add_argument("--out", default="-", help="CSV path, written atomically (default: stdout)")
    sp.add_argument("--batch-size", type=int, default=32, help="images per forward pass")
    sp.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    sp.add_argument("--crops", type=int, default=None, help="deterministic crops per image "
                    "(default: the checkpoint's train.test_crops)")
    sp.add_argument("--workers", type=int, default=None, help="decoding processes (default: "
                    "none on 2 CPU cores, else half the cores, at most 4; up to 8 with a GPU)")
    sp.add_argument("--runtime", default="torch", help="torch (default) | onnx: ONNX Runtime "
                    "on the CPU, exported once per checkpoint (pip install 'qfm[onnx]')")
    sp.set_defaults(func=cmd_predict)

    sp = common(sub.add_parser("distill", help="QFM-IQM distillation: teacher, pseudo-labels "
                               "of an expanded set, student"))
    sp.add_argument("--run-dir", required=True, help="student folder; teacher/ and expanded/ "
                    "go inside (rerun the same command to resume)")
    sp.set_defaults(func=cmd_distill)

    sp = common(sub.add_parser("analyze", help="semantic-noise observation: feature distance "
                               "vs quality gap of every pair"))
    src = sp.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="a trained model (.safetensors)")
    src.add_argument("--upstream", help="a raw upstream backbone (.safetensors)")
    sp.add_argument("--part", default="test", choices=["train", "val", "test"])
    sp.add_argument("--out", required=True, help="folder for semantic_noise.json/.png")
    sp.set_defaults(func=cmd_analyze)

    from qfm.cli_data import add_data_commands  # the real data sets' commands

    add_data_commands(sub, common)
    return p


def _version() -> str:
    from qfm import __version__

    return f"qfm {__version__}"


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``qfm`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("qfm: interrupted", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, RuntimeError, OSError) as err:
        if os.environ.get("QFM_DEBUG"):
            raise
        msg = str(err).splitlines()[0] if str(err) else type(err).__name__
        print(f"qfm: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
