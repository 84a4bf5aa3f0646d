"""The deployment files a user runs (issue 20 item 6), checked offline: ``azure.yaml`` for ``azd up``, the GitHub
Actions workflows, the parameter files, ``local.settings.json.example``, the scripts. Each must parse and name
only what exists: service paths, hook scripts, make targets, Bicep parameters, the app's binding settings.

Shapes follow the azd schema (Azure/azure-dev ``schemas/v1.0/azure.yaml.json``: ``name`` pattern, ``infra``
provider/path/module, ``services.*.host`` required, ``project`` required for host ``function``, hook names and
their ``shell``/``run``; a service's resource is found by the tag ``azd-service-name``) and the GitHub OIDC
sign-in of ``azure/login`` (``client-id``, ``tenant-id``, ``subscription-id``, permission ``id-token: write``).
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.infra.templates import MAIN, REPO, app_catalog, parse, target_scope

AZURE_YAML = REPO / "azure.yaml"
WORKFLOWS = REPO / ".github" / "workflows"
PARAMETER_FILES = [REPO / "infra" / "main.parameters.json", REPO / "infra" / "main.parameters.example.json"]
#: azd's service-level and command-level hook names (azure.yaml.json: hooks definitions)
AZD_HOOKS = {f"{when}{event}" for when in ("pre", "post") for event in (
    "provision", "deploy", "up", "down", "restore", "build", "package", "publish", "refresh")}
NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def _azd() -> dict[str, Any]:
    document = yaml.safe_load(AZURE_YAML.read_text())
    assert isinstance(document, dict)
    return document


def _workflow(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text())
    assert isinstance(document, dict), path
    if True in document:  # YAML 1.1 reads the key `on` as a boolean
        document["on"] = document.pop(True)
    return document


def _make_targets() -> set[str]:
    return set(re.findall(r"^([a-z][a-z0-9-]*):", (REPO / "Makefile").read_text(), flags=re.MULTILINE))


def test_azure_yaml_provisions_the_subscription_scope_template_and_publishes_the_function_app() -> None:
    azd = _azd()
    assert NAME.fullmatch(azd["name"]) and len(azd["name"]) >= 2
    infra = azd["infra"]
    assert infra.get("provider", "bicep") == "bicep"
    template = REPO / infra.get("path", "infra") / f"{infra.get('module', 'main')}.bicep"
    assert template == MAIN and template.is_file()
    assert target_scope(parse(MAIN)) == "subscription", "azd deploys main.bicep at subscription scope"
    assert azd["services"], "at least one service"
    for name, service in azd["services"].items():
        assert service["host"] == "function" and service["language"] in ("py", "python")
        project = REPO / service["project"]
        assert (project / "function_app.py").is_file() and (project / "host.json").is_file()
        assert (project / "requirements.txt").is_file(), "the remote build installs requirements.txt"
        assert f"'azd-service-name': '{name}'" in MAIN.read_text(), "azd finds the app by this tag"
        group = service.get("resourceGroup")
        if group:
            parameters = json.loads(PARAMETER_FILES[0].read_text())["parameters"]
            assert parameters["resourceGroupName"]["value"] == group, "the service's group is the one provisioned"


def _hook_scripts(hooks: dict[str, Any]) -> list[Path]:
    scripts = []
    for event, hook in hooks.items():
        assert event in AZD_HOOKS, f"azd has no hook {event!r}"
        for variant in [hook.get("posix"), hook.get("windows"), hook] if isinstance(hook, dict) else []:
            if isinstance(variant, dict) and "run" in variant:
                assert variant.get("shell", "sh") in ("sh", "pwsh")
                scripts.append(REPO / variant["run"])
    return scripts


def test_azd_hooks_exist_are_executable_and_parse() -> None:
    azd = _azd()
    scripts = _hook_scripts(azd.get("hooks") or {})
    for service in azd["services"].values():
        scripts += _hook_scripts(service.get("hooks") or {})
    assert any(p.name == "postdeploy.sh" for p in scripts), "the second Event Grid pass runs after the deploy"
    for script in scripts:
        assert script.is_file() and script.stat().st_mode & 0o111, script
        assert subprocess.run(["sh", "-n", str(script)], capture_output=True, check=False).returncode == 0, script
    postdeploy = (REPO / "scripts/azd-hooks/postdeploy.sh").read_text()
    assert "deployEventSubscriptions=true" in postdeploy and "infra/main.bicep" in postdeploy


@pytest.mark.parametrize("path", PARAMETER_FILES, ids=lambda p: p.name)
def test_parameter_files_name_only_template_parameters_and_every_required_one(path: Path) -> None:
    declared = parse(MAIN)["parameters"]
    given = json.loads(path.read_text())["parameters"]
    assert set(given) <= set(declared), f"unknown parameters: {sorted(set(given) - set(declared))}"
    required = {name for name, spec in declared.items() if spec.get("default") is None}
    assert required <= set(given), f"missing required parameters: {sorted(required - set(given))}"


def test_azd_parameter_placeholders_are_ones_azd_or_the_docs_provide() -> None:
    text = PARAMETER_FILES[0].read_text()
    names = set(re.findall(r"\$\{([A-Z0-9_]+)\}", text))
    documented = (REPO / "docs" / "deploy.md").read_text()
    azd_provided = {"AZURE_ENV_NAME", "AZURE_LOCATION", "AZURE_SUBSCRIPTION_ID"}
    assert {"AZURE_ENV_NAME", "AZURE_LOCATION"} <= names, "the file uses azd's variables"
    for name in names - azd_provided:
        assert name in documented, f"{name} is not explained in docs/deploy.md"


def test_ci_runs_make_test_and_every_make_target_a_workflow_names_exists() -> None:
    targets = _make_targets()
    seen = []
    for path in sorted(WORKFLOWS.glob("*.yml")):
        workflow = _workflow(path)
        assert workflow["on"] and workflow["jobs"], path
        for job in workflow["jobs"].values():
            for step in job["steps"]:
                assert ("uses" in step) != ("run" in step), step
                if "uses" in step:
                    assert re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+", step["uses"]), f"unpinned action {step['uses']}"
                for target in re.findall(r"\bmake\s+([a-z][a-z0-9-]*)", step.get("run", "")):
                    assert target in targets, f"{path.name}: make {target} does not exist"
                    seen.append(target)
    assert "test" in seen
    ci = _workflow(WORKFLOWS / "ci.yml")
    assert "pull_request" in ci["on"]


def test_the_tag_deploy_signs_in_with_oidc_and_holds_no_secret() -> None:
    path = WORKFLOWS / "deploy.yml"
    workflow = _workflow(path)
    assert workflow["on"]["push"]["tags"], "deploys on a tag"
    assert workflow["permissions"]["id-token"] == "write"
    logins = [s for job in workflow["jobs"].values() for s in job["steps"]
              if str(s.get("uses", "")).lower().startswith("azure/login@")]
    assert logins, "azure/login signs in"
    for login in logins:
        assert set(login["with"]) == {"client-id", "tenant-id", "subscription-id"}
    text = path.read_text()
    assert "secrets." not in text and "client-secret" not in text and "creds:" not in text
    assert "--federated-credential-provider github" in text, "azd signs in with the same federated identity"


def test_local_settings_example_sets_every_binding_setting_the_app_needs() -> None:
    example = json.loads((REPO / "local.settings.json.example").read_text())
    values = example["Values"]
    assert values["FUNCTIONS_WORKER_RUNTIME"] == "python"
    assert values["AzureWebJobsStorage"] == "UseDevelopmentStorage=true", "Azurite"
    functions_text = "".join((REPO / "entrypoints" / f).read_text() for f in ("audit_timer.py", "event_grid.py"))
    for name in set(re.findall(r"%([A-Z0-9_]+)%", functions_text)):
        assert name in values, f"func start cannot resolve %{name}%"
    assert app_catalog(values).timers, "the example resolves the timer's schedule"


def test_funcignore_keeps_what_the_app_imports_and_drops_the_sandbox() -> None:
    ignored = {line.strip().rstrip("/") for line in (REPO / ".funcignore").read_text().splitlines() if line.strip()}
    for package in ("steward", "activities", "entrypoints", "orchestrators", "openapi"):
        assert package not in ignored
    for package in ("sandbox", "tests", ".venv", "var"):
        assert package in ignored


def test_scripts_parse() -> None:
    scripts = sorted((REPO / "scripts").rglob("*.sh"))
    assert REPO / "scripts" / "register-entra-app.sh" in scripts
    for script in scripts:
        done = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True, check=False)
        assert done.returncode == 0, f"{script}: {done.stderr}"
    entra = (REPO / "scripts" / "register-entra-app.sh").read_text()
    # the README's registration steps ("Registering the app in Entra ID"), each one in the script
    for needed in ("az ad app create", "--sign-in-audience AzureADMyOrg", "--identifier-uris", "api://",
                   "--app-roles", "BackupSteward.Teardown", "BackupSteward.Audit", "requestedAccessTokenVersion",
                   "preAuthorizedApplications", "04b07795-8ddb-461a-bbee-02f9e1bf7b46", "az ad sp create",
                   "appRoleAssignmentRequired=true", "STEWARD_AUTH_TENANTS", "STEWARD_AUTH_AUDIENCES"):
        assert needed in entra, needed
    readme = (REPO / "README.md").read_text()
    for documented in ("--sign-in-audience AzureADMyOrg", "appRoleAssignmentRequired=true",
                       "preAuthorizedApplications"):
        assert documented in readme, f"the README's registration no longer says {documented}: update the script"


def test_the_workbook_charts_coverage_outcomes_and_failures_from_metrics_the_app_records() -> None:
    from steward import telemetry

    workbook = json.loads((REPO / "infra" / "workbook.json").read_text())
    assert workbook["version"] == "Notebook/1.0"
    queries = {item["name"]: item["content"] for item in workbook["items"] if item["type"] == 3}
    assert {"coverage", "outcomes", "failures", "drill-rto"} <= set(queries)
    recorded = {telemetry.OUTCOMES, telemetry.DURATION, telemetry.COVERAGE, telemetry.ITEMS_DELETED,
                telemetry.DRILL_RTO}
    readme = (REPO / "README.md").read_text()
    for name, content in queries.items():
        assert content["version"] == "KqlItem/1.0" and content["resourceType"] == "microsoft.insights/components"
        metrics = set(re.findall(r'name == "([^"]+)"', content["query"]))
        assert metrics and metrics <= recorded, f"{name} charts {metrics - recorded}, which the app never records"
        assert content["query"] in readme, f"the README documents the {name} query as the workbook runs it"


def test_the_readme_quick_start_is_what_make_local_prints() -> None:
    from sandbox.playground import EXAMPLES

    printed = {curl for _, curl, _ in EXAMPLES}
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Local stack"):readme.index("## How it is built")]
    commands = [line for line in section.splitlines() if line.startswith(("ID=$(curl", "curl "))]
    assert commands and all(line in printed for line in commands)
