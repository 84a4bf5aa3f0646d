"""``steward protect|teardown|drill`` without an app: where they call, how they fail (exit codes and one line),
the progress line, the help texts. The same commands against the local host: tests/e2e/test_cli_jobs.py."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import socket
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import azure.durable_functions as df
import azure.functions as func
import pytest
from azure.core.exceptions import ClientAuthenticationError

from steward import api_cli
from steward.api_cli import EXIT_REFUSED, EXIT_UNREACHABLE, EXIT_USAGE, Connection, Progress, Waiter
from steward.domain.teardown import TeardownRequest, instance_id_for, plan_instance_id, run_instance_id
from steward.domain.teardown.request import RequestSource

SUB = "/subscriptions/00000000-0000-4000-8000-000000000001/resourceGroups/rg/providers"
VAULT = f"{SUB}/Microsoft.RecoveryServices/vaults/rsv-Old"
FP = "sha256:" + "ab" * 32


def run(job: str, *argv: str, env: dict[str, str] | None = None, **kwargs: Any) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = api_cli.main(job, list(argv), stdout=out, stderr=err, env=env or {}, **kwargs)
    return code, out.getvalue(), err.getvalue()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_vault_names_the_same_instances_the_routes_start() -> None:
    plan = TeardownRequest(VAULT, "me", RequestSource.HTTP, True, None)
    ran = TeardownRequest(VAULT, "me", RequestSource.HTTP, False, FP)
    assert plan_instance_id(VAULT) == instance_id_for(plan)
    assert run_instance_id(VAULT, FP) == instance_id_for(ran)
    assert plan_instance_id(VAULT.upper().replace("SUBSCRIPTIONS", "subscriptions")) == instance_id_for(plan)


def test_without_an_api_or_a_local_stack_it_says_how_to_configure_one_and_exits_2(tmp_path: Path) -> None:
    code, out, err = run("protect", "/subscriptions/x", "--state-dir", str(tmp_path))
    assert (code, out) == (EXIT_USAGE, "")
    assert err.count("\n") == 1 and "BACKUP_STEWARD_API" in err and "make local" in err


def test_without_a_way_to_get_a_token_it_exits_2(tmp_path: Path) -> None:
    code, _, err = run("teardown", "status", VAULT, "--state-dir", str(tmp_path), env={"BACKUP_STEWARD_API": "http://x"})
    assert code == EXIT_USAGE and "--audience" in err


def test_an_unreachable_app_exits_3_with_one_line(tmp_path: Path) -> None:
    env = {"BACKUP_STEWARD_API": f"http://127.0.0.1:{closed_port()}/api", "BACKUP_STEWARD_TOKEN": "t"}
    code, out, err = run("teardown", "status", VAULT, "--state-dir", str(tmp_path), env=env)
    assert (code, out) == (EXIT_UNREACHABLE, "")
    assert err.startswith("steward teardown: cannot reach http://127.0.0.1:") and err.count("\n") == 1


def test_a_credential_that_has_no_token_exits_2_and_names_the_scope(tmp_path: Path) -> None:
    class NoCredential:
        def get_token(self, *scopes: str, **_: Any) -> Any:
            raise ClientAuthenticationError("DefaultAzureCredential failed to retrieve a token\nand more lines")

    env = {"BACKUP_STEWARD_API": f"http://127.0.0.1:{closed_port()}/api", "BACKUP_STEWARD_AUDIENCE": "api://steward/"}
    code, _, err = run("drill", "status", "drill-1", "--state-dir", str(tmp_path), env=env, credential=NoCredential())
    assert code == EXIT_USAGE
    assert err == ("steward drill: no access token for api://steward/.default from azure-identity: "
                   "DefaultAzureCredential failed to retrieve a token\n")


def test_a_problem_answer_is_one_line_and_its_status_picks_the_exit_code() -> None:
    body = {"type": "tag:x", "title": "t", "status": 409, "code": "FingerprintMismatch", "detail": "not current"}
    assert (api_cli.Problem(409, body).exit_code, api_cli.Problem(409, body).message) == (
        EXIT_REFUSED, "refused (409 FingerprintMismatch): not current")
    assert api_cli.Problem(400, {**body, "code": "InvalidVaultId"}).exit_code == EXIT_USAGE
    assert api_cli.Problem(401, {}).message == "rejected (401): no detail: the function key is missing or wrong?"
    assert api_cli.Problem(503, {"code": "AuthorityUnavailable", "detail": "d"}, "30").message == (
        "unavailable (503 AuthorityUnavailable): d (retry after 30 s)")
    assert api_cli.Problem(503, {}).exit_code == EXIT_UNREACHABLE
    assert api_cli.Problem(429, {}).exit_code == EXIT_REFUSED


class Scripted(Connection):
    def __init__(self, answers: list[dict[str, Any]]) -> None:
        super().__init__(api="http://unused/api", key=None, token_source=lambda: "t")
        self.answers, self.calls = answers, []

    def call(self, method: str, path: str, body: Any = None) -> Any:
        self.calls.append((method, path, body))
        return self.answers.pop(0)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_waiting_shows_one_progress_line_on_a_terminal_and_clears_it() -> None:
    answers = [{"runtimeStatus": "Running", "customStatus": {"phase": "delete", "done": i, "total": 3}}
               for i in range(3)] + [{"runtimeStatus": "Completed", "customStatus": {"phase": "done"}}]
    err, slept = Terminal(), []
    waiter = Waiter(Scripted(answers), Progress(err, enabled=err.isatty()), timeout=60, interval=2, sleep=slept.append)
    assert waiter.until_done("/teardowns/t", "teardown", api_cli._phase)["runtimeStatus"] == "Completed"
    text = err.getvalue()
    assert "\rteardown: Running delete 1/3 [0 s]" in text and "\n" not in text and text.endswith("\r")
    assert slept == [2, 2, 2]
    quiet = io.StringIO()
    Waiter(Scripted([{"runtimeStatus": "Completed"}]), Progress(quiet, enabled=quiet.isatty()), 1).until_done(
        "/x", "x", api_cli._phase)
    assert quiet.getvalue() == "", "no progress line into a pipe or a file"


def test_waiting_past_the_timeout_exits_1() -> None:
    now = iter([0.0, 5.0, 11.0])
    waiter = Waiter(Scripted([{"runtimeStatus": "Running"}] * 3), Progress(io.StringIO(), False), timeout=10,
                    sleep=lambda _: None, clock=lambda: next(now))
    with pytest.raises(api_cli.CliError) as error:
        waiter.until_done("/drills/d", "drill", api_cli._phase)
    assert error.value.exit_code == EXIT_REFUSED and "still Running after 10 s" in error.value.message


RECORDED: dict[str, Any] = json.loads(
    (Path(__file__).parents[1] / "orchestrators" / "data" / "outputs_before_typed.json").read_text())
#: the vault and the plan's fingerprint of the teardown ``make demo`` recorded (a plan, then its approved run)
LEGACY: str = RECORDED["teardown_vault_plan"]["output"]["vaultId"]
LEGACY_FP: str = RECORDED["teardown_vault_plan"]["output"]["fingerprint"]
API = "http://127.0.0.1:7071/api"


def route_answer(name: str, runtime: str = "Completed", **status: Any) -> dict[str, Any]:
    """What ``GET /api/teardowns/{id}`` answers for a recorded teardown: the route's own body
    (entrypoints/teardown_http.py ``_show_status``) over a Durable status holding the recorded output and custom
    status (``status`` replaces them: ``output=None`` while it runs)."""
    from entrypoints import teardown_http

    recorded = RECORDED[name]
    durable = SimpleNamespace(runtime_status=df.OrchestrationRuntimeStatus(runtime), output=recorded["output"],
                              custom_status=recorded["customStatus"], created_time=None, last_updated_time=None)
    for key, value in status.items():
        setattr(durable, key, value)

    async def found(*_: Any) -> tuple[str, Any]:
        return recorded["instanceId"], durable

    request = func.HttpRequest("GET", f"{API}/teardowns/{recorded['instanceId']}", body=b"")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(teardown_http, "_teardown_shown", found)
        response = asyncio.run(teardown_http._show_status(request, None, None))  # type: ignore[arg-type]
    assert response.status_code == 200
    answer: dict[str, Any] = json.loads(response.get_body())
    return answer


def approve_answer(run_id: str, fingerprint: str) -> dict[str, Any]:
    """``POST /api/teardowns/{id}/approve``'s 202 answer (entrypoints/teardown_http.py ``_approve``)."""
    from entrypoints import teardown_http

    request = func.HttpRequest("POST", f"{API}/teardowns/{RECORDED['teardown_vault_plan']['instanceId']}/approve",
                               body=b"")
    return {"id": run_id, "approved": fingerprint, "links": teardown_http._links(request, run_id)}


def test_the_recorded_teardown_is_the_one_its_vault_names() -> None:
    assert route_answer("teardown_vault_plan")["id"] == plan_instance_id(LEGACY)
    assert route_answer("teardown_vault_run")["id"] == run_instance_id(LEGACY, LEGACY_FP)


def test_approving_needs_the_reviewed_fingerprint_or_yes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    plan = route_answer("teardown_vault_plan")
    scripted = Scripted([plan])
    monkeypatch.setattr(api_cli, "connect", lambda *a, **k: scripted)
    code, _, err = run("teardown", "approve", LEGACY, "--state-dir", str(tmp_path))
    assert code == EXIT_USAGE and f"--fingerprint {LEGACY_FP}" in err
    run_id = run_instance_id(LEGACY, LEGACY_FP)
    scripted.answers = [plan, approve_answer(run_id, LEGACY_FP), route_answer("teardown_vault_run")]
    code, out, _ = run("teardown", "approve", LEGACY, "--yes", "--output", "csv", "--state-dir", str(tmp_path))
    assert code == 0
    assert scripted.calls[-2] == ("POST", f"/teardowns/{plan_instance_id(LEGACY)}/approve",
                                  {"fingerprint": LEGACY_FP})
    assert out.splitlines()[0] == "id,runtimeStatus,phase,outcome,fingerprint,vaultId"
    assert ",deleted," in out.splitlines()[1]
    assert out.splitlines()[1] == f"{run_id},Completed,finished,deleted,{LEGACY_FP},{LEGACY}"


def test_status_shows_the_run_the_plan_s_approval_started(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    scripted = Scripted([route_answer("teardown_vault_plan"), route_answer("teardown_vault_run")])
    monkeypatch.setattr(api_cli, "connect", lambda *a, **k: scripted)
    code, out, err = run("teardown", "status", LEGACY, "-o", "csv", "--state-dir", str(tmp_path))
    assert (code, err) == (0, "")
    assert [c[1] for c in scripted.calls] == [f"/teardowns/{plan_instance_id(LEGACY)}",
                                              f"/teardowns/{run_instance_id(LEGACY, LEGACY_FP)}"]
    run_id = run_instance_id(LEGACY, LEGACY_FP)
    assert out.splitlines()[1] == f"{run_id},Completed,finished,deleted,{LEGACY_FP},{LEGACY}"


def test_a_plan_shows_each_step_s_count_from_the_report_s_plan(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    plan = route_answer("teardown_vault_plan")
    scripted = Scripted([{"id": plan["id"], "started": True, "dryRun": True, "vaultId": LEGACY}, plan])
    monkeypatch.setattr(api_cli, "connect", lambda *a, **k: scripted)
    code, out, err = run("teardown", "plan", LEGACY, "-o", "csv", "--state-dir", str(tmp_path))
    assert (code, err) == (0, "")
    rows = out.splitlines()[1:]
    assert len(rows) == 20 and rows[3] == f"delete-vm-items,2,{LEGACY_FP}" and rows[-1].startswith("delete-vault,1,")


def test_a_running_teardown_s_progress_line_names_the_step_under_way() -> None:
    running = dict(RECORDED["teardown_vault_run"]["customStatus"], phase="running", currentStep="delete-vm-items")
    running["steps"] = [dict(s, done=1) if s["kind"] == "delete-vm-items" else s for s in running["steps"]]
    answers = [route_answer("teardown_vault_run", "Running", output=None, custom_status=running),
               route_answer("teardown_vault_run")]
    err = Terminal()
    waiter = Waiter(Scripted(answers), Progress(err, enabled=True), timeout=60, sleep=lambda _: None)
    assert waiter.until_done("/teardowns/t", "teardown", api_cli._teardown_phase)["runtimeStatus"] == "Completed"
    assert "\rteardown: Running delete-vm-items 1/2 [0 s]" in err.getvalue()
    assert "\rteardown: Completed finished [0 s]" in err.getvalue()


def _partial_report(answer: dict[str, Any]) -> None:
    answer["report"] = {"outcome": "planned", "fingerprint": answer["report"]["fingerprint"]}


def _unknown_outcome(answer: dict[str, Any]) -> None:
    answer["report"]["outcome"] = "exploded"


def _plan_of_strings(answer: dict[str, Any]) -> None:
    answer["plan"] = "sha256:" + "0" * 64


def _step_of_no_kind(answer: dict[str, Any]) -> None:
    answer["plan"]["steps"][0]["kind"] = "rm -rf"


def _garbled_status(answer: dict[str, Any]) -> None:
    answer["customStatus"]["deletedCount"] = "many"


def _no_id(answer: dict[str, Any]) -> None:
    del answer["id"]


GARBLED = [_partial_report, _unknown_outcome, _plan_of_strings, _step_of_no_kind, _garbled_status, _no_id]


@pytest.mark.parametrize("garble", GARBLED, ids=lambda f: f.__name__.strip("_"))
def test_an_unreadable_plan_is_refused_and_nothing_is_approved(
    garble: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    plan = route_answer("teardown_vault_plan")
    garble(plan)
    scripted = Scripted([plan])
    monkeypatch.setattr(api_cli, "connect", lambda *a, **k: scripted)
    code, out, err = run("teardown", "approve", LEGACY, "--fingerprint", LEGACY_FP, "--state-dir", str(tmp_path))
    assert (code, out) == (EXIT_REFUSED, "")
    assert err.startswith("steward teardown: ") and "cannot be read" in err and err.count("\n") == 1, err
    assert [c[0] for c in scripted.calls] == ["GET"], "no approval sent on an answer it could not read"


@pytest.mark.parametrize("garble", GARBLED, ids=lambda f: f.__name__.strip("_"))
def test_an_unreadable_run_status_is_refused(garble: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    ended = route_answer("teardown_vault_run")
    garble(ended)
    run_id = run_instance_id(LEGACY, LEGACY_FP)
    scripted = Scripted([route_answer("teardown_vault_plan"), approve_answer(run_id, LEGACY_FP), ended])
    monkeypatch.setattr(api_cli, "connect", lambda *a, **k: scripted)
    code, out, err = run("teardown", "approve", LEGACY, "--yes", "-o", "json", "--state-dir", str(tmp_path))
    assert (code, out) == (EXIT_REFUSED, "")
    assert "cannot be read" in err and err.count("\n") == 1, err
    # the same answer asked for with status: refused too, rather than shown as a deleted vault
    scripted.answers, scripted.calls = [route_answer("teardown_vault_plan"), ended], []
    code, out, err = run("teardown", "status", LEGACY, "--state-dir", str(tmp_path))
    assert (code, out) == (EXIT_REFUSED, "") and "cannot be read" in err


def test_an_approval_answer_that_names_no_run_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    scripted = Scripted([route_answer("teardown_vault_plan"), {"approved": LEGACY_FP}])
    monkeypatch.setattr(api_cli, "connect", lambda *a, **k: scripted)
    code, out, err = run("teardown", "approve", LEGACY, "--yes", "--state-dir", str(tmp_path))
    assert (code, out) == (EXIT_REFUSED, "")
    assert err == ('steward teardown: steward teardown approve: the answer cannot be read: it names no instance '
                   '({"approved": "' + LEGACY_FP + '"})\n')


@pytest.mark.parametrize(
    "argv",
    [["protect"], ["teardown"], ["teardown", "plan"], ["teardown", "approve"], ["teardown", "status"],
     ["teardown", "cancel"], ["drill"], ["drill", "run"], ["drill", "status"], ["drill", "validate"],
     ["drill", "cancel"]],
)
def test_every_command_has_help_with_an_example(argv: list[str]) -> None:
    from steward.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main([*argv, "--help"])
    assert code == 0
    assert f"usage: steward {' '.join(argv)}" in out.getvalue()
    assert "example:\n  steward " + argv[0] in out.getvalue()


def test_protect_prints_the_outcome_and_a_failed_one_exits_1(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    vm = f"{SUB}/Microsoft.Compute/virtualMachines/vm1"
    outcome = {"status": "NoVault", "resourceId": vm, "reason": "no vault in westeurope", "rule": "vms"}
    scripted = Scripted([{"id": "protect-" + "0" * 24}, {"runtimeStatus": "Completed", "outcome": outcome}])
    monkeypatch.setattr(api_cli, "connect", lambda *a, **k: scripted)
    code, out, _ = run("protect", vm, "-o", "json", "--state-dir", str(tmp_path))
    assert code == EXIT_REFUSED and json.loads(out)["outcome"] == outcome
    assert scripted.calls[0] == ("POST", "/protect", {"resourceId": vm})


def test_the_failed_protection_outcomes_are_outcome_names_and_none_is_a_successful_one() -> None:
    from steward.domain.protection import SUCCESSFUL, OutcomeStatus

    names = {s.value for s in OutcomeStatus}
    assert names >= api_cli.FAILED_PROTECTIONS
    assert not api_cli.FAILED_PROTECTIONS & {s.value for s in SUCCESSFUL}
