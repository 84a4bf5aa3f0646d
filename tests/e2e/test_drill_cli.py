"""``steward drill run|status|validate`` against the local host (``function_app.py`` on the local Functions host,
the Durable runner, the ARM sandbox), with the API, function key and an Entra ID token from the environment as a
pipeline would set them: a drill whose rule has a validation hook waits; ``validate --fail`` answers it, the
waiting ``run`` exits 1 (ValidationFailed) and the drill deletes what it restored; the next ``validate`` exits 1
(409: not waiting); ``--pass`` decides a second drill, whose ``run`` exits 0; no ``--pass``/``--fail`` is usage."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from steward import api_cli
from tests.e2e.conftest import Harness, drill_harness
from tests.e2e.test_drill_validation import HOOKED, awaiting
from tests.e2e.test_drills import ADMIN, drill_leftovers, protected_estate, restored_by


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Harness]:
    with drill_harness(tmp_path, HOOKED, operator=ADMIN) as harness:
        yield harness


def cli(app: Harness, tmp_path: Path, *argv: str) -> tuple[int, str, str]:
    host = app.stack.host
    env = {"BACKUP_STEWARD_API": f"{host.origin}/api", "BACKUP_STEWARD_KEY": host.keys.function_key,
           "BACKUP_STEWARD_TOKEN": app.sandbox.app_token(ADMIN)}
    out, err = io.StringIO(), io.StringIO()
    code = api_cli.main("drill", [*argv, "--state-dir", str(tmp_path)], stdout=out, stderr=err, env=env,
                        interval=0.1)
    return code, out.getvalue(), err.getvalue()


class Background:
    """``steward drill run ... --output json`` waiting in a thread (as a pipeline's step would)."""

    def __init__(self, app: Harness, tmp_path: Path, *argv: str) -> None:
        self.answer: tuple[int, str, str] | None = None
        self.thread = threading.Thread(target=self._run, args=(app, tmp_path, argv), daemon=True)
        self.thread.start()

    def _run(self, app: Harness, tmp_path: Path, argv: tuple[str, ...]) -> None:
        self.answer = cli(app, tmp_path, *argv)

    def result(self, timeout: float = 120.0) -> tuple[int, dict[str, Any], str]:
        self.thread.join(timeout)
        assert self.answer is not None, "the run command did not return"
        code, out, err = self.answer
        return code, json.loads(out) if out else {}, err


def waiting_drill(app: Harness) -> str:
    def one() -> str | None:
        running = [i.instance_id for i in app.stack.runner.query()
                   if i.name == "restore_drill" and app.stack.runner.status(i.instance_id)["runtimeStatus"]
                   in ("Pending", "Running")]
        return running[0] if running else None

    drill_id: str = app.wait_for(one, 60, "the drill to start")
    awaiting(app, drill_id)
    return drill_id


@pytest.mark.slow
def test_drill_run_waits_validate_fail_and_pass_decide_it_and_the_exit_codes_say_so(
    app: Harness, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _vm, disk = protected_estate(app)
    run = Background(app, tmp_path, "run", "--resource", disk, "--output", "json", "--quiet")
    drill_id = waiting_drill(app)
    code, out, err = cli(app, tmp_path, "status", drill_id, "--output", "csv")
    assert code == 0, err
    assert out.splitlines() == ["id,runtimeStatus,phase", f"{drill_id},Running,validation"], out

    capsys.readouterr()
    code, out, _ = cli(app, tmp_path, "validate", drill_id)
    assert code == 2 and out == "", "neither --pass nor --fail: a usage error (argparse)"
    assert "one of the arguments --pass --fail is required" in capsys.readouterr().err
    code, out, err = cli(app, tmp_path, "validate", drill_id, "--fail", "--detail", "checksum", "--output", "json")
    assert code == 0, err
    answered = json.loads(out)
    assert (answered["id"], answered["resourceId"].lower(), answered["result"]) == (drill_id, disk.lower(), "fail")

    code, status, err = run.result()
    assert code == 1, "a drill that is not Succeeded exits 1"
    [result] = status["report"]["results"]
    assert result["outcome"] == "ValidationFailed"
    assert result["userValidation"] == {"result": "fail", "detail": "checksum", "by": ADMIN}
    assert result["left"] == [] and restored_by(app, disk) == [] and drill_leftovers(app, drill_id) == []
    code, out, err = cli(app, tmp_path, "validate", drill_id, "--pass")
    assert (code, out) == (1, "") and "(409 DrillNotAwaitingValidation)" in err, err

    run = Background(app, tmp_path, "run", "--resource", disk, "--output", "json", "--quiet")
    second = waiting_drill(app)
    code, out, err = cli(app, tmp_path, "validate", second, "--pass")
    assert code == 0, err
    assert out.splitlines()[0].split() == ["ID", "RESOURCEID", "RESULT"] and out.splitlines()[-1].endswith("pass")
    code, status, err = run.result()
    assert code == 0, err
    assert [r["outcome"] for r in status["report"]["results"]] == ["Succeeded"]
    assert drill_leftovers(app, second) == [] and restored_by(app, disk) == []
