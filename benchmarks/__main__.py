"""Run every benchmark module's ``main()`` with its defaults, or the ones named: ``python -m benchmarks
[module ...]``. A benchmark that fails does not stop the others; the exit status says whether any failed."""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
import traceback
from pathlib import Path

import benchmarks

#: modules of the package that are not benchmarks
NOT_BENCHMARKS = frozenset({"common"})


def benchmark_modules() -> list[str]:
    return sorted(
        m.name for m in pkgutil.iter_modules([str(Path(benchmarks.__file__).parent)])
        if not m.name.startswith("_") and m.name not in NOT_BENCHMARKS
    )


def run(names: list[str]) -> int:
    known = benchmark_modules()
    unknown = [n for n in names if n not in known]
    if unknown:
        print(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(known)}", file=sys.stderr)
        return 2
    failed = []
    for name in names or known:
        module = importlib.import_module(f"benchmarks.{name}")
        print(f"== benchmarks.{name}", flush=True)
        started = time.perf_counter()
        try:
            status = module.main([])
        except Exception:  # noqa: BLE001 - one broken benchmark must not hide the others' figures
            traceback.print_exc()
            status = 1
        print(f"== benchmarks.{name}: exit {status} after {time.perf_counter() - started:.0f} s", flush=True)
        if status:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
