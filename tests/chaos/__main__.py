"""``make chaos``: python -m tests.chaos [--size full|small] [--seed N] — figures on stdout and in
artifacts/chaos/chaos.json; exit status 1 unless nothing was lost, duplicated or deleted unintendedly."""

from __future__ import annotations

import argparse
import json
import sys

from tests.chaos.scenario import OUTPUT, SIZES, render, run, write


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__)
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument("--seed", type=int, default=9)
    args = parser.parse_args(argv)
    figures = run(args.size, args.seed)
    write(figures)
    print(render(figures))
    print(json.dumps({k: figures[k] for k in ("lost", "duplicated_protections", "unintended_deletions", "kills",
                                              "converged")}))
    print(f"written to {OUTPUT}")
    clean = figures["converged"] and not (figures["lost"] or figures["duplicated_protections"]
                                          or figures["unintended_deletions"])
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
