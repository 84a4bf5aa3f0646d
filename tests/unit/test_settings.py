"""Settings: read once from the environment, validated, every problem named together, secrets never shown."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from steward import settings as s
from steward.cloud.clients import PUBLIC_ARM_ENDPOINT, CloudTarget
from steward.domain.ids import ResourceId
from steward.domain.rules import Protect, ResourceFacts, route
from steward.settings import InvalidSettings, Settings, ncrontab_problem

SUB = "11111111-1111-1111-1111-111111111111"
OID = "AAAAAAAA-0000-0000-0000-000000000001"


def problems(env: dict[str, str]) -> dict[str, str]:
    with pytest.raises(InvalidSettings) as caught:
        Settings.from_env(env)
    return {p.name: p.message for p in caught.value.problems}


def test_an_empty_environment_gives_safe_defaults_and_the_default_rules() -> None:
    current = Settings.from_env({})
    assert current.arm_endpoint == PUBLIC_ARM_ENDPOINT
    assert current.credential == "default"
    assert current.subscriptions == ()
    assert not current.manages(SUB)
    assert current.opt_out_tag == "backup-steward:opt-out"
    assert current.teardown_opt_in_tag == "backup-steward:teardown"
    assert current.vault_default_tag == "backup-steward:default"
    assert current.reports_container == "steward-reports"
    assert current.audit_schedule == "0 0 6 * * *"
    assert current.max_parallel_writes == 8
    assert current.auto_create_vaults is False
    assert current.teardown_allowed_principals == frozenset()
    assert current.teardown_four_eyes is True and current.teardown_requests_topic_id is None
    assert current.rules is not None
    assert current.rules.rules[0].name == "virtual-machines"
    assert current.cloud_target() == CloudTarget()


def test_a_sandbox_configuration_reaches_the_cloud_target(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    current = Settings.from_env(
        {
            s.ARM_ENDPOINT: "https://127.0.0.1:8443/",
            s.CREDENTIAL: "Sandbox",
            s.SANDBOX_TOKEN_URL: "https://127.0.0.1:8443/sandbox/token",
            s.SANDBOX_PRINCIPAL_ID: OID,
            s.CA_BUNDLE: str(bundle),
            s.SUBSCRIPTIONS: f" {SUB.upper()}, {SUB} ;22222222-2222-2222-2222-222222222222 ",
            s.TEARDOWN_ALLOWED_PRINCIPALS: OID,
            s.TEARDOWN_ALLOWED_ROLES: "Backup.Admin, backup.admin,Ops",
            s.MAX_PARALLEL_WRITES: "50",
            s.AUTO_CREATE_VAULTS: "Yes",
        }
    )
    assert current.cloud_target() == CloudTarget(
        arm_endpoint="https://127.0.0.1:8443",
        credential_kind="sandbox",
        sandbox_token_url="https://127.0.0.1:8443/sandbox/token",
        sandbox_principal_id=OID.lower(),
        ca_bundle=str(bundle),
        connection_pool_size=100,  # two connections per parallel write (50), so fan-outs reuse connections
    )
    assert current.subscriptions == (SUB, "22222222-2222-2222-2222-222222222222")
    assert current.manages(SUB.upper())
    assert current.teardown_allowed_principals == {OID.lower()}
    assert current.teardown_allowed_roles == {"backup.admin", "ops"}
    assert current.max_parallel_writes == 50
    assert current.auto_create_vaults is True


def test_every_problem_is_reported_together_naming_each_setting(tmp_path: Path) -> None:
    found = problems(
        {
            s.ARM_ENDPOINT: "http://management.example.com",
            s.CREDENTIAL: "password",
            s.MANAGED_IDENTITY_CLIENT_ID: "me",
            s.CA_BUNDLE: str(tmp_path / "missing.pem"),
            s.SUBSCRIPTIONS: f"{SUB},not-a-sub",
            s.OPT_OUT_TAG: "opt/out",
            s.REPORTS_CONTAINER: "Reports_2024",
            s.AUDIT_SCHEDULE: "0 6 * * *",
            s.MAX_PARALLEL_WRITES: "0",
            s.AUTO_CREATE_VAULTS: "maybe",
            s.TEARDOWN_ALLOWED_PRINCIPALS: "alice",
        }
    )
    assert set(found) == {
        s.ARM_ENDPOINT,
        s.CREDENTIAL,
        s.MANAGED_IDENTITY_CLIENT_ID,
        s.CA_BUNDLE,
        s.SUBSCRIPTIONS,
        s.OPT_OUT_TAG,
        s.REPORTS_CONTAINER,
        s.AUDIT_SCHEDULE,
        s.MAX_PARALLEL_WRITES,
        s.AUTO_CREATE_VAULTS,
        s.TEARDOWN_ALLOWED_PRINCIPALS,
    }
    assert "https" in found[s.ARM_ENDPOINT]
    assert "default, managed-identity, sandbox" in found[s.CREDENTIAL]
    assert "does not exist" in found[s.CA_BUNDLE]
    assert "'not-a-sub'" in found[s.SUBSCRIPTIONS]
    assert "6 fields" in found[s.AUDIT_SCHEDULE]
    assert "from 1 to 50" in found[s.MAX_PARALLEL_WRITES]


def test_the_sandbox_credential_needs_its_token_url_and_sandbox_settings_need_it() -> None:
    assert problems({s.CREDENTIAL: "sandbox"}) == {s.SANDBOX_TOKEN_URL: "is required"}
    found = problems({s.SANDBOX_TOKEN_URL: "https://127.0.0.1/token"})
    assert "only used with STEWARD_CREDENTIAL=sandbox" in found[s.SANDBOX_TOKEN_URL]


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("https://management.usgovcloudapi.net", True),
        ("http://127.0.0.1:9000", True),
        ("http://[::1]:9000", True),
        ("http://localhost:9000", True),
        ("http://10.0.0.1", False),
        ("ftp://127.0.0.1", False),
        ("https://", False),
        ("https://user:pw@management.azure.com", False),
        ("https://management.azure.com/?x=1", False),
        ("https://127.0.0.1:99999", False),
        ("management.azure.com", False),
    ],
)
def test_endpoints_need_https_except_on_loopback(value: str, ok: bool) -> None:
    if ok:
        assert Settings.from_env({s.ARM_ENDPOINT: value}).arm_endpoint == value
    else:
        assert s.ARM_ENDPOINT in problems({s.ARM_ENDPOINT: value})


def test_secrets_are_never_shown_in_errors_or_repr() -> None:
    secret = "SharedAccessKey=hunter2-very-secret"
    found = problems({s.EVENTS_TOPIC_KEY: secret + "\x07", s.REPORTS_CONNECTION_STRING: secret})
    assert "control characters" in found[s.EVENTS_TOPIC_KEY]
    assert all("hunter2" not in message for message in found.values())
    current = Settings.from_env(
        {s.EVENTS_TOPIC_ENDPOINT: "https://t.westeurope-1.eventgrid.azure.net/api/events", s.EVENTS_TOPIC_KEY: secret}
    )
    assert current.events_topic_key == secret
    assert "hunter2" not in repr(current)


def test_a_topic_key_without_a_topic_and_both_report_targets_are_refused() -> None:
    found = problems(
        {
            s.EVENTS_TOPIC_KEY: "k",
            s.REPORTS_ACCOUNT_URL: "https://acct.blob.core.windows.net",
            s.REPORTS_CONNECTION_STRING: "c",
        }
    )
    assert "STEWARD_EVENTS_TOPIC_ENDPOINT" in found[s.EVENTS_TOPIC_KEY]
    assert "not both" in found[s.REPORTS_ACCOUNT_URL]


def test_rules_come_from_a_file_or_inline_text_with_errors_naming_the_setting_and_line(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("version: 1\nrules:\n  - name: all\n    protect: {vault: regional-default}\n")
    current = Settings.from_env({s.RULES_PATH: str(path), s.OPT_OUT_TAG: "skip"})
    assert current.rules is not None and current.rules.rules[0].name == "all"
    assert current.rules.opt_out_tag == "skip"
    vm = ResourceFacts(
        ResourceId.parse(f"/subscriptions/{SUB}/resourceGroups/r/providers/Microsoft.Compute/virtualMachines/v"),
        "westeurope",
        {"skip": "true"},
    )
    assert not isinstance(route(vm, current.rules), Protect)
    document_tag = Settings.from_env({s.RULES: "version: 1\noptOutTag: no-backup\nrules: [{name: a, optOut: x}]\n"})
    assert document_tag.opt_out_tag == document_tag.rules.opt_out_tag == "no-backup"
    overridden = Settings.from_env(
        {s.RULES: "version: 1\noptOutTag: no-backup\nrules: [{name: a, optOut: x}]\n", s.OPT_OUT_TAG: "mine"}
    )
    assert overridden.opt_out_tag == overridden.rules.opt_out_tag == "mine"
    found = problems({s.RULES: "version: 1\nrules:\n  - name: a\n    protect: {vault: nowhere}\n"})
    assert "STEWARD_RULES:4: rules[0].protect.vault" in found[s.RULES]
    found = problems({s.RULES_PATH: str(tmp_path / "nope.yaml")})
    assert "cannot read the rules file" in found[s.RULES_PATH]
    found = problems({s.RULES_PATH: str(path), s.RULES: "version: 1"})
    assert "not both" in found[s.RULES_PATH]


def test_rules_may_only_target_vaults_in_subscriptions_the_app_manages() -> None:
    other = "33333333-3333-3333-3333-333333333333"
    text = (
        "version: 1\nrules:\n"
        f"  - name: central\n    protect: {{vault: {{regionalDefault: {{subscription: '{other}'}}}}}}\n"
        f"  - name: pinned\n    protect: {{vault: {{id: '/subscriptions/{other}/resourceGroups/r/providers/"
        "Microsoft.DataProtection/backupVaults/bv', region: westeurope}}\n"
    )
    found = problems({s.RULES: text, s.SUBSCRIPTIONS: SUB})
    assert "rule 'central' (line 3)" in found[s.RULES] or "rule 'pinned' (line 5)" in found[s.RULES]
    with pytest.raises(InvalidSettings) as caught:
        Settings.from_env({s.RULES: text, s.SUBSCRIPTIONS: SUB})
    assert [p.name for p in caught.value.problems] == [s.RULES, s.RULES]
    assert Settings.from_env({s.RULES: text, s.SUBSCRIPTIONS: f"{SUB},{other}"}).rules is not None


def test_from_env_without_a_mapping_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(s.MAX_PARALLEL_WRITES, "3")
    assert Settings.from_env().max_parallel_writes == 3


def test_the_requests_topic_is_a_resource_id_and_four_eyes_a_boolean() -> None:
    topic = f"/subscriptions/{SUB}/resourceGroups/rg-app/providers/Microsoft.EventGrid/topics/evgt-requests"
    current = Settings.from_env({s.TEARDOWN_REQUESTS_TOPIC_ID: topic + "/", s.TEARDOWN_FOUR_EYES: "false"})
    assert current.teardown_requests_topic_id == topic and current.teardown_four_eyes is False
    found = problems(
        {s.TEARDOWN_REQUESTS_TOPIC_ID: f"/subscriptions/{SUB}/resourceGroups/rg-app", s.TEARDOWN_FOUR_EYES: "maybe"}
    )
    assert "must name a resource" in found[s.TEARDOWN_REQUESTS_TOPIC_ID]
    assert "true or false" in found[s.TEARDOWN_FOUR_EYES]
    name_only = problems({s.TEARDOWN_REQUESTS_TOPIC_ID: "evgt-requests"})
    assert "not a resource id" in name_only[s.TEARDOWN_REQUESTS_TOPIC_ID]


def test_every_setting_has_a_reference_entry_and_a_unique_name() -> None:
    names = [
        value
        for key, value in vars(s).items()
        if key.isupper() and isinstance(value, str) and value.startswith("STEWARD_")
    ]
    assert len(names) == len(set(names)) == 38
    assert sorted(entry[0] for entry in s.REFERENCE) == sorted(names)


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("0 0 6 * * *", None),
        ("0 */5 * * * *", None),
        ("0 30 9 * * Mon-Fri", None),
        ("0 0 0 1 Jan,Jul *", None),
        ("0 0 12 * * 0,6", None),
        ("0 0 6 * *", "6 fields"),
        ("60 0 6 * * *", "within 0-59"),
        ("0 0 24 * * *", "within 0-23"),
        ("0 0 6 0 * *", "within 1-31"),
        ("0 0 6 * 13 *", "within 1-12"),
        ("0 0 6 * * 7", "within 0-6"),
        ("0 */0 * * * *", "bad step"),
        ("0 10-5 * * * *", "backwards"),
        ("0 x * * * *", "not a number"),
        ("0 0 6 * * Funday", "not a number or name"),
    ],
)
def test_audit_schedules_are_six_field_ncrontab(expression: str, problem: str | None) -> None:
    found = ncrontab_problem(expression)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


_names = st.sampled_from([entry[0] for entry in s.REFERENCE])


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(_names, st.text(max_size=80), max_size=6))
def test_arbitrary_values_give_settings_or_invalid_settings_only(env: dict[str, Any]) -> None:
    try:
        Settings.from_env(env)
    except InvalidSettings as error:
        assert error.problems
        assert all(p.name in dict.fromkeys(e[0] for e in s.REFERENCE) for p in error.problems)


def test_a_misspelt_setting_is_named_with_the_setting_it_resembles() -> None:
    env = {
        "STEWARD_SUBSCRIPTION": "x",  # missing S
        "STEWARD_TEARDOWN_REPORTS_DIR": "/tmp/r",  # no such setting; STEWARD_REPORTS_DIR is
        "STEWARD_SOMETHING_ELSE": "1",
        "STEWARD_FUZZ_SECONDS": "5",  # the tests' own
        s.AUDIT_SCHEDULE: "0 0 6 * * *",
        "PATH": "/bin",
    }
    assert s.unknown_settings(env) == [
        ("STEWARD_SOMETHING_ELSE", None),
        ("STEWARD_SUBSCRIPTION", s.SUBSCRIPTIONS),
        ("STEWARD_TEARDOWN_REPORTS_DIR", s.REPORTS_DIR),
    ]
    assert s.unknown_settings({s.SUBSCRIPTIONS: "", s.RULES: ""}) == []


def test_bootstrap_logs_a_setting_it_ignores(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from steward import bootstrap

    monkeypatch.setenv("STEWARD_MAX_PARALEL_WRITES", "4")
    bootstrap.reset()
    try:
        with caplog.at_level("WARNING", logger="steward.settings"):
            bootstrap.settings()
    finally:
        bootstrap.reset()
    assert any("STEWARD_MAX_PARALEL_WRITES is not a Backup Steward setting" in r.getMessage()
               and s.MAX_PARALLEL_WRITES in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("value", "expected"), [(None, 10), ("1", 1), ("600", 600), ("0", None), ("601", None), ("ten", None)]
)
def test_the_audit_rate_is_validated_like_the_teardown_rate(value: str | None, expected: int | None) -> None:
    env = {} if value is None else {s.AUDIT_RATE_PER_MINUTE: value}
    if expected is None:
        assert s.AUDIT_RATE_PER_MINUTE in problems(env)
    else:
        assert Settings.from_env(env).audit_rate_per_minute == expected
    assert s.DEFAULT_AUDIT_RATE_PER_MINUTE == s.DEFAULT_TEARDOWN_RATE_PER_MINUTE


TENANT = "11111111-1111-4111-8111-111111111111"
CLIENT = "5a9d0000-0000-4000-8000-0000000b5a1d"


def test_token_validation_settings_are_read_and_checked_together() -> None:
    parsed = Settings.from_env(
        {s.AUTH_TENANTS: TENANT.upper(), s.AUTH_AUDIENCES: f"api://backup-steward, {CLIENT.upper()}"}
    )
    assert parsed.auth_tenants == (TENANT,) and parsed.auth_audiences == ("api://backup-steward", CLIENT)
    assert parsed.auth_authority == s.DEFAULT_AUTH_AUTHORITY
    assert Settings.from_env({}).auth_tenants == ()  # nothing configured: nobody can authenticate (fail closed)
    assert s.AUTH_AUDIENCES in problems({s.AUTH_TENANTS: TENANT})
    assert s.AUTH_TENANTS in problems({s.AUTH_AUDIENCES: CLIENT})
    assert s.AUTH_TENANTS in problems({s.AUTH_TENANTS: "contoso.onmicrosoft.com", s.AUTH_AUDIENCES: CLIENT})
    assert s.AUTH_AUDIENCES in problems({s.AUTH_TENANTS: TENANT, s.AUTH_AUDIENCES: "not an audience"})
    assert "https" in problems({s.AUTH_AUTHORITY: "http://127.0.0.1:8443/sandbox/entra"})[s.AUTH_AUTHORITY]


def test_the_vault_fill_percent_reaches_the_rules_and_is_bounded() -> None:
    assert s.Settings.from_env({s.VAULT_FILL_PERCENT: "75"}).rules.vault_fill_percent == 75
    assert s.Settings.from_env({}).rules.vault_fill_percent == 90
    for bad in ("0", "101", "ninety"):
        assert s.VAULT_FILL_PERCENT in problems({s.VAULT_FILL_PERCENT: bad}), bad


def test_the_role_assignment_warning_share_defaults_to_80_and_is_bounded() -> None:
    assert s.Settings.from_env({}).role_assignment_warn_percent == 80
    assert s.Settings.from_env({s.ROLE_ASSIGNMENT_WARN_PERCENT: "95"}).role_assignment_warn_percent == 95
    for bad in ("0", "101", "eighty", "-5"):
        assert s.ROLE_ASSIGNMENT_WARN_PERCENT in problems({s.ROLE_ASSIGNMENT_WARN_PERCENT: bad}), bad
