"""The Function App's settings in Bicep are the ones the app reads (``steward.settings.REFERENCE``), carry no
secret, agree with the app's defaults, and make a valid ``Settings`` once the deployment fills them in."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from sandbox.durable.errors import AppLoadError
from steward import settings as app_settings
from tests.infra.templates import INFRA, MAIN, MODULES, REPO, app_catalog, body, one_resource, parse

FUNCTION_APP = MODULES / "function-app.bicep"
EXAMPLE = INFRA / "main.parameters.example.json"
REFERENCE_NAMES = {name for name, _, _ in app_settings.REFERENCE}
#: What the deployment computes (module outputs) for the function-app parameters main.bicep wires from them.
COMPUTED = {
    "identityClientId": "7a3c0000-0000-4000-8000-00000000c1d0",
    "eventsTopicEndpoint": "https://evgt-steward-outcomes.westeurope-1.eventgrid.azure.net/api/events",
    "reportsAccountUrl": "https://sdstewardabc12345.blob.core.windows.net",
    "reportsContainerName": "steward-reports",
    "teardownRequestsTopicId": (
        "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-steward/providers/"
        "Microsoft.EventGrid/topics/evgt-steward-abc12345-requests"
    ),
}


def _app_settings() -> list[dict[str, Any]]:
    site = one_resource(FUNCTION_APP, "Microsoft.Web/sites")
    entries = site["properties"]["siteConfig"]["appSettings"]
    assert all(isinstance(e["name"], str) for e in entries), "setting names must be literals"
    return entries


def _names() -> list[str]:
    return [e["name"] for e in _app_settings()]


def _param_defaults() -> dict[str, Any]:
    return {name: spec.get("default") for name, spec in parse(FUNCTION_APP)["parameters"].items()}


def _module_inputs(given: dict[str, Any]) -> dict[str, Any]:
    """The function-app module's parameters in a deployment of main.bicep with parameters ``given``: what main
    passes (a main parameter: given, else its default; a module output: ``COMPUTED``), else the module default."""
    main_params = parse(MAIN)["parameters"]
    module = next(e for e in parse(MAIN)["modules"].values() if e["detail"]["path"] == "modules/function-app.bicep")
    passed = body(module)["params"]
    inputs = {}
    for name, spec in parse(FUNCTION_APP)["parameters"].items():
        expression = passed.get(name)
        if isinstance(expression, str) and expression in main_params:
            inputs[name] = given.get(expression, main_params[expression].get("default"))
        elif name in COMPUTED:
            inputs[name] = COMPUTED[name]
        else:
            inputs[name] = spec.get("default")
    return inputs


def _value(expression: Any, inputs: dict[str, Any]) -> str:
    """The deployed value of a setting: a literal, a parameter, ``join(param, ',')`` or ``string(param)``."""
    if isinstance(expression, str):
        return str(inputs.get(expression, expression))
    function = expression["function"]
    argument = next(iter(function["parameters"].values()))
    if function["type"] == "join":
        return ",".join(inputs[argument])
    if function["type"] == "string":
        return str(inputs[argument]).lower()
    raise AssertionError(f"no model for setting expression {expression!r:.200}")


def _example() -> dict[str, Any]:
    return {name: spec["value"] for name, spec in json.loads(EXAMPLE.read_text())["parameters"].items()}


def test_every_steward_setting_is_one_the_app_reads() -> None:
    names = _names()
    assert len(names) == len(set(names)), "a setting is set twice"
    steward = {n for n in names if n.startswith("STEWARD_")}
    assert steward <= REFERENCE_NAMES, f"not in steward.settings.REFERENCE: {sorted(steward - REFERENCE_NAMES)}"


def test_the_settings_a_deployment_needs_are_set() -> None:
    needed = {
        app_settings.CREDENTIAL,
        app_settings.MANAGED_IDENTITY_CLIENT_ID,
        app_settings.SUBSCRIPTIONS,
        app_settings.EVENTS_TOPIC_ENDPOINT,
        app_settings.REPORTS_ACCOUNT_URL,
        app_settings.REPORTS_CONTAINER,
        app_settings.AUDIT_SCHEDULE,
    }
    assert needed <= set(_names()), f"missing: {sorted(needed - set(_names()))}"


def test_every_app_setting_placeholder_of_a_trigger_is_set() -> None:
    """Trigger bindings like the audit timer's ``%STEWARD_AUDIT_SCHEDULE%`` resolve from app settings: the host
    refuses to start when one is missing. Described with only the deployed settings, every binding resolves."""
    with pytest.raises(AppLoadError, match="%STEWARD_AUDIT_SCHEDULE%"):
        app_catalog(env={})
    timers = app_catalog().timers
    assert timers
    assert all(t.schedule and app_settings.ncrontab_problem(t.schedule) is None for t in timers)


def test_no_secret_and_no_key_based_connection() -> None:
    names = set(_names())
    assert not names & {app_settings.EVENTS_TOPIC_KEY, app_settings.REPORTS_CONNECTION_STRING}
    assert not names & {app_settings.SANDBOX_TOKEN_URL, app_settings.SANDBOX_PRINCIPAL_ID, app_settings.CA_BUNDLE}
    assert "AzureWebJobsStorage" not in names, "the host storage must be identity-based (AzureWebJobsStorage__*)"
    identity_based = {f"AzureWebJobsStorage__{part}" for part in ("accountName", "credential", "clientId")}
    assert identity_based <= names
    text = FUNCTION_APP.read_text()
    for secret_marker in ("AccountKey=", "SharedAccessSignature", "listKeys(", "InstrumentationKey="):
        assert secret_marker not in text


@pytest.mark.parametrize(
    "given",
    [
        pytest.param(lambda: {"targetSubscriptionIds": _example()["targetSubscriptionIds"]}, id="main-defaults"),
        pytest.param(_example, id="example-parameters"),
        pytest.param(
            lambda: {
                **_example(),
                "rules": (REPO / "steward" / "domain" / "default_rules.yaml").read_text(),
                "optOutTag": "backup:skip",
                "autoCreateVaults": True,
                "maxParallelWrites": 50,
                "auditRatePerMinute": 600,
                "teardownFourEyes": False,
            },
            id="everything-set",
        ),
    ],
)
def test_deployed_settings_are_valid_for_the_app(given: Callable[[], dict[str, Any]]) -> None:
    """What a deployment writes into the app settings loads as valid ``Settings`` (no InvalidSettings)."""
    parameters = given()
    inputs = _module_inputs(parameters)
    env = {e["name"]: _value(e["value"], inputs) for e in _app_settings() if e["name"].startswith("STEWARD_")}
    loaded = app_settings.Settings.from_env(env)  # raises InvalidSettings naming every problem
    assert loaded.credential == "managed-identity"
    assert loaded.managed_identity_client_id == COMPUTED["identityClientId"]
    assert loaded.subscriptions == tuple(s.lower() for s in parameters["targetSubscriptionIds"])
    assert loaded.teardown_allowed_principals == frozenset(parameters.get("teardownAllowedPrincipalIds", []))
    assert loaded.auto_create_vaults is bool(parameters.get("autoCreateVaults", False))
    rate = parameters.get("auditRatePerMinute", app_settings.DEFAULT_AUDIT_RATE_PER_MINUTE)
    assert loaded.audit_rate_per_minute == rate
    assert loaded.auth_tenants == tuple(t.lower() for t in parameters.get("authTenantIds", []))
    assert loaded.auth_audiences == tuple(parameters.get("authAudiences", []))
    if parameters.get("rules"):
        assert loaded.rules.rules, "the inline rules parameter reached STEWARD_RULES and loaded"
    assert loaded.events_topic_key is None
    assert loaded.reports_connection_string is None
    # custom teardown events are accepted from the deployment's requests topic only; four eyes unless turned off
    assert loaded.teardown_requests_topic_id == COMPUTED["teardownRequestsTopicId"]
    assert loaded.teardown_four_eyes is bool(parameters.get("teardownFourEyes", True))


def test_defaults_agree_with_the_app() -> None:
    """Where the templates default a setting, it is the app's own default."""
    main = {name: spec.get("default") for name, spec in parse(MAIN)["parameters"].items()}
    module = _param_defaults()
    storage = {name: spec.get("default") for name, spec in parse(MODULES / "storage.bicep")["parameters"].items()}
    assert main["teardownOptInTag"] == module["teardownOptInTag"] == app_settings.DEFAULT_TEARDOWN_OPT_IN_TAG
    assert main["auditSchedule"] == module["auditSchedule"] == app_settings.DEFAULT_AUDIT_SCHEDULE
    assert main["maxParallelWrites"] == module["maxParallelWrites"] == app_settings.DEFAULT_MAX_PARALLEL_WRITES
    assert main["autoCreateVaults"] is module["autoCreateVaults"] is False
    assert main["auditRatePerMinute"] == module["auditRatePerMinute"] == app_settings.DEFAULT_AUDIT_RATE_PER_MINUTE
    assert main["teardownFourEyes"] is module["teardownFourEyes"] is True
    assert app_settings.Settings().teardown_four_eyes is True
    assert storage["reportsContainerName"] == app_settings.DEFAULT_REPORTS_CONTAINER
    assert app_settings.ncrontab_problem(main["auditSchedule"]) is None


def test_main_passes_every_setting_parameter_through() -> None:
    """Each function-app parameter that feeds a STEWARD_* setting is set by main.bicep (none silently defaulted)."""
    feeding = set()
    for entry in _app_settings():
        value = entry["value"]
        if not entry["name"].startswith("STEWARD_") or not isinstance(value, (str, dict)):
            continue
        if isinstance(value, str) and value in _param_defaults():
            feeding.add(value)
        elif isinstance(value, dict):
            feeding.add(next(iter(value["function"]["parameters"].values())))
    module = next(e for e in parse(MAIN)["modules"].values() if e["detail"]["path"] == "modules/function-app.bicep")
    passed = set(body(module)["params"])
    assert feeding <= passed, f"not passed by main.bicep: {sorted(feeding - passed)}"
