"""``qfm`` commands for the real data sets: ``data check|split|cache``, ``protocol``, ``paper``
(the protocol stage) and ``cross``. Argument parsing only; each calls one library function.
"""

from __future__ import annotations

import json


def _config(args):
    from qfm.config import run_config

    return run_config(args.params, args.set)


def cmd_data_check(args) -> int:
    from qfm.data.check import data_check_main

    return data_check_main(args.dataset, args.root, args.json)


def cmd_protocol(args) -> int:
    from qfm.runs.protocol import parse_splits, run_protocol

    cfg = _config(args)
    res = run_protocol(cfg, args.dataset, parse_splits(args.splits), args.runs)
    for r in res["splits"]:
        print(f"split {r['split']}: SRCC {r['srcc']:.4f} PLCC {r['plcc']:.4f} "
              f"KRCC {r['krcc']:.4f}")
    s = res["summary"]
    print(f"{args.dataset}: median SRCC {s['srcc']['median']:.4f} PLCC {s['plcc']['median']:.4f}"
          f" (mean SRCC {s['srcc']['mean']:.4f} ± {s['srcc']['std']:.4f}, n={s['srcc']['n']})")
    return 0


def cmd_paper(args) -> int:
    from qfm.runs.protocol import protocol_stage

    res = protocol_stage(args.params, args.out)
    if res["status"] != "run":
        print(f"protocol: {res['reason']} (wrote {args.out}/protocol.json)")
    for v, s in res.get("variants", {}).items():
        print(f"{res['dataset']} {v}: median SRCC {s['srcc']['median']:.4f} "
              f"PLCC {s['plcc']['median']:.4f} (n={s['srcc']['n']})")
    return 0


def cmd_cross(args) -> int:
    from qfm.runs.protocol import cross_dataset

    print(json.dumps(cross_dataset(args.checkpoint, args.dataset, _config(args)), indent=2,
                     sort_keys=True))
    return 0


def cmd_data_cache(args) -> int:
    from qfm.data.cache import build_cache, cache_dir
    from qfm.data.facts import canonical_name
    from qfm.data.readers import read_dataset

    key = canonical_name(args.dataset)
    out = build_cache(key, read_dataset(key, args.root), args.root, args.out or cache_dir(key))
    print(f"cached {len(out)} images of {key} in {args.out or cache_dir(key)}")
    return 0


def cmd_data_split(args) -> int:
    from qfm.data.protocol_splits import data_split_main

    return data_split_main(args.dataset, args.root, args.n, args.seed)


def add_data_commands(sub, common) -> None:
    """Add the real-data-set sub-commands to ``qfm``'s parser (``common`` adds --params/--set)."""
    data = sub.add_parser("data", help="real data sets: check, split")
    dsub = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    sp = dsub.add_parser("check", help="validate a data set tree before training")
    sp.add_argument("--dataset", required=True, help="data set name, e.g. koniq10k")
    sp.add_argument("--root", required=True, help="the data set's root folder")
    sp.add_argument("--json", action="store_true", help="print one JSON object")
    sp.set_defaults(func=cmd_data_check)
    sp = dsub.add_parser("split", help="write the seeded splits of a data set")
    sp.add_argument("--dataset", required=True)
    sp.add_argument("--root", required=True)
    sp.add_argument("--n", type=int, default=10, help="number of random splits")
    sp.add_argument("--seed", type=int, default=0)
    sp.set_defaults(func=cmd_data_split)
    sp = dsub.add_parser("cache", help="write resized copies (SPAQ short side 512, KonIQ "
                         "512x384) so training does not decode full-size photos")
    sp.add_argument("--dataset", required=True)
    sp.add_argument("--root", required=True)
    sp.add_argument("--out", default=None, help="cache folder (default: <data root>/cache/NAME)")
    sp.set_defaults(func=cmd_data_cache)

    sp = common(sub.add_parser("protocol", help="train + test on N seeded splits; median and "
                               "mean ± std of SRCC/PLCC/KRCC"))
    sp.add_argument("--dataset", required=True, help="world or a real data set name")
    sp.add_argument("--splits", default="0-9", help="e.g. 0-9, 0,1,2 or official")
    sp.add_argument("--runs", default="runs/protocol", help="folder for the runs and "
                    "protocol.json (finished splits are reused)")
    sp.set_defaults(func=cmd_protocol)

    sp = sub.add_parser("paper", help="the protocol stage: params.yaml's protocol section "
                        "(data set, splits, variants, profile) on a real data set")
    sp.add_argument("--params", default="params.yaml", help="params file")
    sp.add_argument("--out", default="results/protocol", help="folder for protocol.json and "
                    "the runs")
    sp.set_defaults(func=cmd_paper)

    sp = common(sub.add_parser("cross", help="cross-data-set test: a checkpoint on all images "
                               "of another data set"))
    sp.add_argument("--checkpoint", required=True)
    sp.add_argument("--dataset", required=True)
    sp.set_defaults(func=cmd_cross)
