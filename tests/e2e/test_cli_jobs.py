"""``steward protect|teardown|drill`` against the local host (``make local``): each command over HTTP on loopback,
with no configuration (the local stack's var/local/stack.json and its Entra ID), their exit codes, and the
azure-identity token path (a TokenCredential asked for ``<audience>/.default``, answered by the sandbox's Entra ID;
the app validates that token as every route does)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import AccessToken

from steward import api_cli, bootstrap
from tests.e2e.test_local_playground import Running

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Any]]]:
    saved = dict(os.environ)
    state = tmp_path_factory.mktemp("cli") / "var"
    try:
        with Running(state):
            yield state, json.loads((state / "local" / "stack.json").read_text())
    finally:
        os.environ.clear()
        os.environ.update(saved)
        bootstrap.reset()


def cli(state: Path, job: str, *argv: str, env: dict[str, str] | None = None, **kwargs: Any) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = api_cli.main(job, [*argv, "--state-dir", str(state)], stdout=out, stderr=err, env=env or {},
                        interval=0.2, **kwargs)
    return code, out.getvalue(), err.getvalue()


def test_protect_plan_approve_status_cancel_and_drill_against_the_local_host(
    stack: tuple[Path, dict[str, Any]],
) -> None:
    state, described = stack
    vm, vault = described["estate"]["vm-erp"], described["estate"]["rsv-legacy"]

    code, out, err = cli(state, "protect", vm, "--output", "json")
    assert code == 0, err
    outcome = json.loads(out)["outcome"]
    assert (outcome["status"], outcome["resourceId"].lower()) == ("Protected", vm.lower()), out
    assert outcome["vaultId"] and outcome["rule"]
    code, out, err = cli(state, "protect", vm, "--output", "csv")
    assert code == 0, err
    assert out.splitlines()[0] == "resourceId,status,reason,vaultId,policy,rule"
    assert ",AlreadyProtected," in out.splitlines()[1], "the same resource again: already protected"

    code, out, err = cli(state, "teardown", "plan", vault, "--output", "json")
    assert code == 0, err
    planned = json.loads(out)
    fingerprint = planned["fingerprint"]
    assert fingerprint.startswith("sha256:") and planned["plan"]["steps"], out

    code, out, err = cli(state, "teardown", "approve", vault, "--fingerprint", "sha256:" + "0" * 64)
    assert (code, out) == (1, ""), "a fingerprint that is not the plan's is refused"
    assert err == (f"steward teardown: refused (409 FingerprintMismatch): fingerprint sha256:{'0' * 64} is not the "
                   f"current plan's; the current fingerprint is {fingerprint}: review that plan and approve it\n")

    code, out, err = cli(state, "teardown", "approve", vault, "--fingerprint", fingerprint, "--output", "json")
    assert code == 0, err
    assert json.loads(out)["report"]["outcome"] == "deleted", out

    code, out, err = cli(state, "teardown", "status", vault, "--output", "csv")
    assert code == 0, err
    header, row = out.splitlines()
    assert header == "id,runtimeStatus,phase,outcome,fingerprint,vaultId"
    assert row.startswith("teardown-rsv-legacy-") and "-run-" in row and ",Completed," in row and ",deleted," in row

    code, _, err = cli(state, "teardown", "cancel", vault)
    assert code == 1 and "(409 TeardownNotRunning)" in err, "nothing runs any more: refused"

    code, out, err = cli(state, "drill", "run", "--resource", vm, "--dry-run", "--output", "json")
    assert code == 0, err
    drilled = json.loads(out)
    assert drilled["runtimeStatus"] == "Completed" and drilled["report"]["dryRun"] is True
    code, _, err = cli(state, "drill", "status", "drill-nothing-here")
    assert code == 1 and "(404 DrillNotFound)" in err


def test_refusals_and_usage_errors_of_the_app_exit_1_or_2(stack: tuple[Path, dict[str, Any]]) -> None:
    state, described = stack
    code, _, err = cli(state, "protect", "/subscriptions/not-a-guid/resourceGroups/rg")
    assert code == 2 and "(400 InvalidResourceId)" in err
    code, _, err = cli(state, "teardown", "status", described["estate"]["rsv-legacy"], "--key", "wrong-key")
    assert code == 2 and "(401 FunctionKeyInvalid)" in err, err
    code, _, err = cli(state, "teardown", "status", "not-a-vault")
    assert code == 2 and "neither a vault id nor a teardown id" in err
    code, _, err = cli(state, "teardown", "plan", described["estate"]["rsv-legacy"], "--no-wait",
                       env={"BACKUP_STEWARD_TOKEN": "not.a.token"})
    assert code == 2 and "(401 InvalidToken)" in err, err


def test_the_azure_identity_path_asks_for_the_audience_and_the_app_validates_the_token(
    stack: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    from sandbox.playground import mint_token

    _, described = stack

    class LocalEntra:
        """A TokenCredential (what DefaultAzureCredential is) whose tokens come from the sandbox's Entra ID."""

        def __init__(self, principal: str | None = None) -> None:
            self.principal, self.scopes = principal, []

        def get_token(self, *scopes: str, **_: Any) -> AccessToken:
            self.scopes.extend(scopes)
            return AccessToken(mint_token(described, self.principal), int(time.time()) + 3600)

    env = {"BACKUP_STEWARD_API": described["api"], "BACKUP_STEWARD_KEY": described["keys"]["function"],
           "BACKUP_STEWARD_AUDIENCE": "api://backup-steward-sandbox"}
    vault = described["estate"]["rsv-weu"]
    credential = LocalEntra()
    code, out, err = cli(tmp_path, "teardown", "plan", vault, "--no-wait", "--output", "json", env=env,
                         credential=credential)
    assert code == 0, err
    assert credential.scopes == ["api://backup-steward-sandbox/.default"]
    assert json.loads(out)[0]["id"].startswith("teardown-rsv-prod-weu-")
    stranger = LocalEntra("0000dead-0000-4000-8000-000000000bad")
    code, _, err = cli(tmp_path, "teardown", "status", vault, env=env, credential=stranger)
    assert code == 1 and "(403 CallerNotAllowed)" in err, "a valid token of a caller who is not allowed"


def test_the_steward_command_runs_a_job_in_its_own_process(stack: tuple[Path, dict[str, Any]]) -> None:
    state, _ = stack
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BACKUP_STEWARD_", "STEWARD_"))}
    done = subprocess.run(
        [sys.executable, "-m", "steward.cli", "drill", "run", "--dry-run", "--state-dir", str(state), "-o", "csv"],
        cwd=REPO, capture_output=True, text=True, timeout=120, env={**env, "PYTHONPATH": str(REPO)}, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "resourceId,outcome,rtoSeconds,reason"
    assert done.stderr == "", "no progress line when stderr is not a terminal"
