"""ResourceId: parsing, normalisation, case-insensitive identity, relatives, and hostile input."""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from steward.domain.errors import StewardError
from steward.domain.ids import MAX_ID_LENGTH, InvalidResourceId, ResourceId

SUB = "00000000-1111-2222-3333-444444444444"
VM = f"/subscriptions/{SUB}/resourceGroups/rg-app/providers/Microsoft.Compute/virtualMachines/vm1"
RG = f"/subscriptions/{SUB}/resourceGroups/rg"
VAULT = f"{RG}/providers/Microsoft.RecoveryServices/vaults/v"
ITEM = (
    f"{RG}/providers/Microsoft.RecoveryServices/vaults/v"
    "/backupFabrics/Azure/protectionContainers/IaasVMContainer;iaasvmcontainerv2;rg;vm1"
    "/protectedItems/VM;iaasvmcontainerv2;rg;vm1"
)
ROLE = f"{VM}/providers/Microsoft.Authorization/roleAssignments/0f0e0d0c-0000-0000-0000-000000000001"


def test_a_virtual_machine_id_exposes_its_parts() -> None:
    rid = ResourceId.parse(VM)
    assert rid.subscription_id == SUB
    assert rid.resource_group == "rg-app"
    assert rid.provider == "Microsoft.Compute"
    assert rid.full_type == "Microsoft.Compute/virtualMachines"
    assert rid.name == "vm1"
    assert str(rid) == VM
    assert rid.key == VM.lower()
    assert str(rid.parent) == f"/subscriptions/{SUB}/resourceGroups/rg-app"
    assert rid.resource_group_id == rid.parent
    assert str(rid.subscription_scope) == f"/subscriptions/{SUB}"
    assert not rid.is_extension and not rid.is_resource_group and not rid.is_subscription


def test_nested_child_types_append_to_the_full_type_and_parents_walk_back() -> None:
    rid = ResourceId.parse(ITEM)
    assert rid.full_type == ("Microsoft.RecoveryServices/vaults/backupFabrics/protectionContainers/protectedItems")
    assert rid.name == "VM;iaasvmcontainerv2;rg;vm1"
    assert rid.types == ("vaults", "backupFabrics", "protectionContainers", "protectedItems")
    chain = [r.full_type for r in rid.ancestors()]
    assert chain == [
        "Microsoft.RecoveryServices/vaults/backupFabrics/protectionContainers",
        "Microsoft.RecoveryServices/vaults/backupFabrics",
        "Microsoft.RecoveryServices/vaults",
        "Microsoft.Resources/resourceGroups",
        "Microsoft.Resources/subscriptions",
    ]
    assert str(rid.top_level) == VAULT
    assert rid.is_within(rid.top_level)
    assert not rid.top_level.is_within(rid)


def test_subscription_and_resource_group_scopes() -> None:
    sub = ResourceId.parse(f"/subscriptions/{SUB}")
    assert sub.is_subscription
    assert sub.parent is None
    assert sub.resource_group_id is None
    assert sub.full_type == "Microsoft.Resources/subscriptions"
    assert sub.name == SUB
    rg = ResourceId.parse(f"/SUBSCRIPTIONS/{SUB}/resourcegroups/My-RG")
    assert rg.is_resource_group
    assert str(rg) == f"/subscriptions/{SUB}/resourceGroups/My-RG"
    assert rg.full_type == "Microsoft.Resources/resourceGroups"
    assert rg.parent == sub
    assert rg.name == "My-RG"


def test_subscription_level_resources_have_no_group() -> None:
    rid = ResourceId.parse(f"/subscriptions/{SUB}/providers/Microsoft.RecoveryServices/locations/westeurope")
    assert rid.resource_group is None
    assert rid.full_type == "Microsoft.RecoveryServices/locations"
    assert rid.parent == ResourceId.subscription(SUB)


def test_extension_resources_keep_the_extended_resource_as_parent() -> None:
    rid = ResourceId.parse(ROLE)
    assert rid.is_extension
    assert rid.full_type == "Microsoft.Authorization/roleAssignments"
    assert rid.provider == "Microsoft.Authorization"
    assert rid.parent == ResourceId.parse(VM)
    assert rid.resource_group == "rg-app"


def test_equality_and_hash_ignore_case_but_text_keeps_it() -> None:
    upper = ResourceId.parse(VM)
    lower = ResourceId.parse(VM.lower())
    assert upper == lower
    assert hash(upper) == hash(lower)
    assert len({upper, lower}) == 1
    assert str(lower) == f"/subscriptions/{SUB}/resourceGroups/rg-app/providers/microsoft.compute/virtualmachines/vm1"
    assert upper.same_as(VM.upper().replace("SUBSCRIPTIONS", "subscriptions"))
    assert not upper.same_as("not an id")
    assert upper != ResourceId.parse(VM + "2")
    assert upper != VM  # an id never equals a plain string


def test_a_trailing_slash_is_normalised_away() -> None:
    assert str(ResourceId.parse(VM + "/")) == VM


def test_child_builds_and_validates() -> None:
    vault = ResourceId.parse(VAULT)
    policy = vault.child("backupPolicies", "DefaultPolicy")
    assert policy.full_type == "Microsoft.RecoveryServices/vaults/backupPolicies"
    assert policy.parent == vault
    rg = vault.resource_group_id
    assert rg is not None
    disk = rg.child("Microsoft.Compute/disks", "d1")
    assert disk.full_type == "Microsoft.Compute/disks"
    with pytest.raises(InvalidResourceId, match="traversal"):
        vault.child("backupPolicies", "..")
    with pytest.raises(InvalidResourceId, match="namespace"):
        rg.child("disks", "d1")
    with pytest.raises(InvalidResourceId):
        vault.child("backupPolicies", "a/b/c")


def test_ids_sort_by_their_key() -> None:
    a = ResourceId.parse(f"/subscriptions/{SUB}/resourceGroups/A")
    b = ResourceId.parse(f"/subscriptions/{SUB}/resourceGroups/b")
    assert sorted([b, a]) == [a, b]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("subscriptions/" + SUB, "must start with '/subscriptions/'"),
        ("/providers/Microsoft.Management/managementGroups/mg", "must start with '/subscriptions/'"),
        ("/subscriptions", "subscription id is missing"),
        ("/subscriptions/not-a-guid", "not a GUID"),
        (f"/subscriptions/{SUB}x", "not a GUID"),
        (f"/subscriptions/{SUB}//resourceGroups/rg", "empty segment"),
        (f"/subscriptions/{SUB}/resourceGroups", "resource group name is missing"),
        (f"/subscriptions/{SUB}/resourceGroups/rg/Microsoft.Compute", "expected 'providers'"),
        (f"{RG}/providers", "namespace is missing"),
        (f"{RG}/providers/Microsoft.Compute", "no resource type"),
        (f"{RG}/providers/Compute/virtualMachines/x", "not a provider namespace"),
        (f"{RG}/providers/Microsoft.Compute/virtualMachines", "name after"),
        (f"/subscriptions/{SUB}/resourceGroups/..", "traversal"),
        (f"{RG}/providers/Microsoft.Compute/virtualMachines/.", "traversal"),
        (f"{VM}/../../../rg2", "traversal"),
        (f"{VM}?api-version=2020-01-01", "query string"),
        (f"{VM}#frag", "fragment"),
        (f"/subscriptions/{SUB}/resourceGroups/rg%2F..", "percent-escapes"),
        (f"{VM}' or 1 eq 1", "quotes"),
        (f'{VM}"', "quotes"),
        (f"{VM}\\x", "backslash"),
        (f"{VM} ", "whitespace"),
        (f" {VM}", "whitespace"),
        (f"{VM}\n", "whitespace"),
        (f"{VM}\x00", "control"),
        (f"{VM}\u200b", "format character"),
        (f"/subscriptions/{SUB}/resourceGroups/{'r' * 91}", "at most 90"),
        (f"/subscriptions/{SUB}/resourceGroups/rg.", "must not end with '.'"),
        (f"{VM[:-3]}{'v' * 261}", "at most 260"),
        ("/subscriptions/" + SUB + "/resourceGroups/rg" * 200, "at most 2048"),
        (f"{VM}/extensions", "name after"),
        (f"{VM}/providers/Microsoft.Authorization", "no resource type"),
        (f"{RG}/providers/Microsoft.Compute/virtual.Machines/x", "not a resource type"),
    ],
)
def test_malformed_and_hostile_ids_are_rejected_with_the_reason(text: str, reason: str) -> None:
    with pytest.raises(InvalidResourceId, match=None) as caught:
        ResourceId.parse(text)
    assert reason in str(caught.value)
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, StewardError)


def test_try_parse_returns_none_for_scopes_we_do_not_accept() -> None:
    assert ResourceId.try_parse(VM) == ResourceId.parse(VM)
    for scope in ("/", "/providers/Microsoft.Management/managementGroups/mg", None, f"{VM}/.."):
        assert ResourceId.try_parse(scope) is None


def test_non_strings_are_rejected() -> None:
    for value in (None, 42, b"/subscriptions", ["/subscriptions"]):
        with pytest.raises(InvalidResourceId, match="expected a string"):
            ResourceId.parse(value)


def test_over_long_input_is_not_echoed_in_full() -> None:
    text = "/" + "x" * (MAX_ID_LENGTH * 10)
    with pytest.raises(InvalidResourceId) as caught:
        ResourceId.parse(text)
    assert len(str(caught.value)) < 300


def test_nesting_is_bounded() -> None:
    deep = VM + "/c/x" * 20
    with pytest.raises(InvalidResourceId, match="nests more than"):
        ResourceId.parse(deep)


# ---- properties ------------------------------------------------------------------------------------

_name_chars = string.ascii_letters + string.digits + "-_.;()"
names = st.text(_name_chars, min_size=1, max_size=12).filter(lambda n: n not in {".", ".."})
group_names = names.filter(lambda n: not n.endswith("."))
guids = st.uuids().map(str).flatmap(lambda g: st.sampled_from([g, g.upper()]))
_words = st.text(string.ascii_letters + string.digits, max_size=8)
_letters = st.sampled_from(string.ascii_letters)
namespaces = st.builds(lambda a, b, c, d: f"{a}{b}.{c}{d}", _letters, _words, _letters, _words)
type_segments = st.builds(lambda a, b: a + b, _letters, _words).filter(lambda t: t.lower() != "providers")


@st.composite
def resource_id_texts(draw: st.DrawFn) -> str:
    text = f"/subscriptions/{draw(guids)}"
    if draw(st.booleans()):
        text += f"/resourceGroups/{draw(group_names)}"
    for _ in range(draw(st.integers(0, 2))):
        pairs = draw(st.lists(st.tuples(type_segments, names), min_size=1, max_size=3))
        text += f"/providers/{draw(namespaces)}" + "".join(f"/{t}/{n}" for t, n in pairs)
    return text


def _scramble_case(text: str, flips: list[bool]) -> str:
    padded = flips + [False] * len(text)
    return "".join(c.swapcase() if flip else c for c, flip in zip(text, padded, strict=False))


@settings(deadline=None)
@given(resource_id_texts())
def test_parse_of_str_round_trips(text: str) -> None:
    rid = ResourceId.parse(text)
    again = ResourceId.parse(str(rid))
    assert again == rid
    assert str(again) == str(rid)
    assert ResourceId.parse(rid.key) == rid


@settings(deadline=None)
@given(resource_id_texts(), st.lists(st.booleans(), max_size=200))
def test_equality_is_case_insensitive(text: str, flips: list[bool]) -> None:
    assert ResourceId.parse(_scramble_case(text, flips)) == ResourceId.parse(text)


@settings(deadline=None)
@given(resource_id_texts())
def test_parent_chains_end_at_the_subscription_and_stay_within_it(text: str) -> None:
    rid = ResourceId.parse(text)
    chain = list(rid.ancestors())
    if rid.is_subscription:
        assert chain == []
        return
    assert chain[-1] == rid.subscription_scope
    for child, parent in zip([rid, *chain], chain, strict=False):
        assert child.is_within(parent)
        assert child != parent
        assert len(str(child)) > len(str(parent))
        assert ResourceId.parse(str(parent)) == parent
    if rid.resource_group is not None:
        assert rid.resource_group_id in [*chain, rid]


@settings(deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_text_parses_or_raises_invalid_resource_id(text: str) -> None:
    try:
        rid = ResourceId.parse(text)
    except InvalidResourceId as error:
        assert str(error)
    else:
        assert ResourceId.parse(str(rid)) == rid
