"""``make chaos``: python -m tests.chaos [--size full|small] [--seeds N [N ...]] — the figures of each run on
stdout and in artifacts/chaos/ (``chaos.json`` for one seed, ``chaos-seed<N>.json`` each plus a summary table
for several); exit status 1 unless every run converged with nothing lost, duplicated or deleted unintendedly."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from tests.chaos.scenario import OUTPUT, SIZES, render, run, write

HEADLINE = ("lost", "duplicated_protections", "unintended_deletions", "kills", "converged")


def clean(figures: dict[str, Any]) -> bool:
    return bool(figures["converged"]) and not (figures["lost"] or figures["duplicated_protections"]
                                               or figures["unintended_deletions"])


def table(runs: list[dict[str, Any]]) -> str:
    """One Markdown row per seed: what the issue asks to report."""
    rows = ["| seed | events | request faults / ARM requests | LROs slowed / failed | kills | lost | duplicated "
            "| unintended deletions | teardown | converged after (real s / Azure s) |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for f in runs:
        faults, took = f["faults_injected"], f["time_to_converge_seconds"]
        requests = faults["server_error"] + faults["throttle"] + faults["reset"]
        share = 100 * requests / max(1, f["arm_requests"])
        converged = f"{took['real']} / {took['virtual']}" if f["converged"] and took else "no"
        rows.append(f"| {f['seed']} | {f['events']['raised']} | {requests} / {f['arm_requests']} ({share:.1f}%) "
                    f"| {faults['lro_slow']} / {faults['lro_fail']} | {f['kills']} | {f['lost']} "
                    f"| {f['duplicated_protections']} | {f['unintended_deletions']} "
                    f"| {(f['teardown'] or {}).get('outcome')} | {converged} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__)
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument("--seeds", "--seed", type=int, nargs="+", default=[9], metavar="N")
    args = parser.parse_args(argv)
    runs = []
    for seed in args.seeds:
        figures = run(args.size, seed)
        path = OUTPUT if len(args.seeds) == 1 else OUTPUT.with_name(f"chaos-seed{seed}.json")
        write(figures, path)
        print(render(figures))
        print(json.dumps({k: figures[k] for k in HEADLINE}))
        print(f"written to {path}", flush=True)
        runs.append(figures)
    if len(runs) > 1:
        summary = table(runs)
        OUTPUT.with_name("summary.md").write_text(summary + "\n")
        print(summary)
    return 0 if all(clean(f) for f in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
