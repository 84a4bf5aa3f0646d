"""Run the sample app's ``sequence`` orchestration to completion in its own process (for the SIGKILL test).

``python sigkill_driver.py DB_PATH INSTANCE_ID COUNT SECONDS``: starts the instance unless it is already
there (a restarted process finds the running instance in the store and resumes it), waits for
it, prints ``DONE <output>``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from sandbox.durable import DurableRunner, RunnerConfig

APP = Path(__file__).with_name("sample_app.py")


def main(db_path: str, instance_id: str, count: int, seconds: float) -> None:
    with DurableRunner(APP, RunnerConfig(db_path=db_path)) as runner:
        if runner.store.instance(instance_id) is None:  # a restarted process resumes the stored instance
            runner.start_new("sequence", instance_id, {"count": count, "seconds": seconds})
        print("STARTED", flush=True)
        status = runner.wait_for(instance_id, timeout=60)
        print("DONE", json.dumps(status["output"]), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
