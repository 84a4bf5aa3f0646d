"""Replay cost of the local Durable runner: CPU time per completed activity for fan-outs of 10, 100, 1,000.

An orchestrator is replayed from its whole history every time it resumes, so a runner that replays once per
completion costs O(n^2) for a fan-out of n. The runner batches: each replay consumes every completion that
arrived since the previous one (plus a few milliseconds' window while activities are still running). This
benchmark runs a fan-out / fan-in orchestration with a trivial activity through the runner (SQLite store on
disk, the SDK's replay engine) and reports, per size:

* ``cpu_ms_per_activity``     - process CPU time (all threads) from start to completion / n
* ``replay_cpu_ms_per_activity`` - CPU time spent inside orchestrator replays / n
* ``replays``, ``replayed_events`` - how many replays and how many history events they processed

For comparison it also runs the naive runner (``RunnerConfig(batch_replays=False)``: one replay per
completion) for the sizes in ``--naive-sizes`` (10 and 100 by default; 1,000 takes minutes, which is the
point). Results go to ``artifacts/benchmarks/replay_cost.json``.

    python -m benchmarks.replay_cost [--sizes 10 100 1000] [--repeat 3] [--naive-sizes 10 100]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import azure.durable_functions as df

from sandbox.clock import VirtualClock
from sandbox.durable import DurableRunner, RunnerConfig

OUTPUT = Path("artifacts/benchmarks/replay_cost.json")

bench_app = df.DFApp()


@bench_app.activity_trigger(input_name="item")
def bench_square(item: int) -> int:
    return item * item


@bench_app.orchestration_trigger(context_name="context")
def bench_fan_out(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    count = context.get_input()["count"]
    results = yield context.task_all([context.call_activity(bench_square, i) for i in range(count)])
    return sum(results)


def run_once(size: int, batched: bool, workdir: Path, run: int) -> dict[str, Any]:
    config = RunnerConfig(db_path=str(workdir / f"bench-{size}-{batched}-{run}.sqlite"), batch_replays=batched)
    with DurableRunner(bench_app, config, clock=VirtualClock()) as runner:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        instance = runner.start_new("bench_fan_out", None, {"count": size})
        status = runner.wait_for(instance, timeout=600)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        assert status["output"] == sum(i * i for i in range(size)), status
        stats = runner.stats
        return {
            "cpu_ms_per_activity": 1000 * cpu / size,
            "replay_cpu_ms_per_activity": 1000 * stats.replay_cpu_seconds / size,
            "wall_seconds": wall,
            "replays": stats.replays,
            "replayed_events": stats.replayed_events,
        }


def measure(sizes: list[int], repeat: int, batched: bool) -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="replay-cost-") as tmp:
        for size in sizes:
            runs = [run_once(size, batched, Path(tmp), n) for n in range(repeat)]
            best = min(runs, key=lambda r: r["cpu_ms_per_activity"])
            rows.append({
                "fan_out": size,
                "replays_batched": batched,
                "cpu_ms_per_activity": round(best["cpu_ms_per_activity"], 3),
                "cpu_ms_per_activity_median": round(statistics.median(r["cpu_ms_per_activity"] for r in runs), 3),
                "replay_cpu_ms_per_activity": round(best["replay_cpu_ms_per_activity"], 3),
                "wall_seconds": round(best["wall_seconds"], 3),
                "replays": best["replays"],
                "replayed_events": best["replayed_events"],
                "runs": repeat,
            })
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    head = (f"{'fan-out':>8} {'runner':>8} {'CPU ms/activity':>16} {'median':>8} {'replay ms/act':>14} "
            f"{'replays':>8} {'events replayed':>16} {'wall s':>7}")
    lines = [head, "-" * len(head)]
    for r in rows:
        kind = "batched" if r["replays_batched"] else "naive"
        lines.append(f"{r['fan_out']:>8} {kind:>8} {r['cpu_ms_per_activity']:>16.3f} "
                     f"{r['cpu_ms_per_activity_median']:>8.3f} {r['replay_cpu_ms_per_activity']:>14.3f} "
                     f"{r['replays']:>8} {r['replayed_events']:>16} {r['wall_seconds']:>7.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.replay_cost", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--naive-sizes", type=int, nargs="*", default=[10, 100],
                        help="fan-outs to run through the naive one-replay-per-completion runner too")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    rows = measure(args.sizes, args.repeat, batched=True)
    if args.naive_sizes:
        rows += measure(args.naive_sizes, args.repeat, batched=False)
    result = {
        "benchmark": "replay_cost",
        "description": "CPU time per completed activity of a fan-out/fan-in through the local Durable runner",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "activity_workers": RunnerConfig().max_activity_workers,
        "results": rows,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(table(rows))
    print(f"\nwritten to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
