"""Resource store (case-insensitive ids, children, moves) and the sandbox's id parsing."""

from __future__ import annotations

import threading

from sandbox.arm.ids import id_key, operation_name, parse_id
from sandbox.arm.store import ResourceStore

GROUP = "/subscriptions/s1/resourceGroups/RG-One"
VAULT = GROUP + "/providers/Microsoft.RecoveryServices/vaults/Vault1"


def record(rid: str, rtype: str, **extra: object) -> dict[str, object]:
    return {"id": rid, "name": rid.rsplit("/", 1)[-1], "type": rtype, **extra}


def test_ids_parse_into_scope_type_and_parent() -> None:
    item = VAULT + "/backupFabrics/Azure/protectionContainers/c1"
    parsed = parse_id(item)
    assert (parsed.subscription_id, parsed.resource_group, parsed.namespace) == (
        "s1", "RG-One", "Microsoft.RecoveryServices")
    assert parsed.full_type == "Microsoft.RecoveryServices/vaults/backupFabrics/protectionContainers"
    assert parsed.name == "c1"
    assert parsed.parent == VAULT + "/backupFabrics/Azure"
    assert parse_id(VAULT).parent == GROUP
    assert parse_id(GROUP).parent == "/subscriptions/s1"
    assert parse_id(GROUP).full_type == "Microsoft.Resources/subscriptions/resourceGroups"
    assert parse_id("/subscriptions/s1").parent is None
    assert operation_name(GROUP, "moveResources/action") == (
        "Microsoft.Resources/subscriptions/resourceGroups/moveResources/action")
    assert id_key(VAULT.upper() + "/") == id_key(VAULT)


def test_keys_are_case_insensitive_and_the_first_casing_is_kept() -> None:
    store = ResourceStore()
    store.put(record(VAULT, "Microsoft.RecoveryServices/vaults", location="westeurope"))
    assert store.get(VAULT.lower())["location"] == "westeurope"
    store.put(record(VAULT.upper(), "Microsoft.RecoveryServices/vaults", location="westeurope", tags={"a": "b"}))
    assert store.get(VAULT)["id"] == VAULT and store.get(VAULT)["tags"] == {"a": "b"}


def test_reads_are_copies_and_private_state_is_separate() -> None:
    store = ResourceStore()
    store.put(record(VAULT, "Microsoft.RecoveryServices/vaults", properties={"x": 1}), private={"secret": 1})
    copy = store.get(VAULT)
    copy["properties"]["x"] = 2
    assert store.get(VAULT)["properties"] == {"x": 1}
    assert store.private(VAULT) == {"secret": 1} and "secret" not in store.get(VAULT)


def test_children_by_prefix_direct_or_deep_and_delete_with_children() -> None:
    store = ResourceStore()
    store.put(record(GROUP, "Microsoft.Resources/resourceGroups"))
    store.put(record(VAULT, "Microsoft.RecoveryServices/vaults"))
    policy = VAULT + "/backupPolicies/p1"
    store.put(record(policy, "Microsoft.RecoveryServices/vaults/backupPolicies"))
    store.put(record(GROUP + "2/providers/X.Y/z/other", "X.Y/z"))  # a prefix look-alike, not a child
    assert [r["id"] for r in store.children(GROUP)] == [VAULT, policy]
    assert [r["id"] for r in store.children(GROUP, direct=True)] == [VAULT]
    assert [r["id"] for r in store.children(VAULT, resource_type="microsoft.recoveryservices/vaults/backuppolicies")] \
        == [policy]
    removed = store.delete(VAULT.lower())
    assert [r["id"] for r in removed] == [VAULT, policy]
    assert store.get(policy) is None and store.exists(GROUP)


def test_rekey_moves_a_resource_with_its_children() -> None:
    store = ResourceStore()
    store.put(record(VAULT, "Microsoft.RecoveryServices/vaults"), private={"p": 1})
    store.put(record(VAULT + "/backupPolicies/p1", "Microsoft.RecoveryServices/vaults/backupPolicies"))
    target = "/subscriptions/s2/resourceGroups/rg-two/providers/Microsoft.RecoveryServices/vaults/Vault1"
    moved = store.rekey(VAULT.lower(), target)
    assert [new for _, new in moved] == [target, target + "/backupPolicies/p1"]
    assert store.get(VAULT) is None and store.get(target + "/backupPolicies/p1")["id"].startswith(target)
    assert store.private(target) == {"p": 1}


def test_dump_and_load_round_trip() -> None:
    store = ResourceStore()
    store.put(record(VAULT, "Microsoft.RecoveryServices/vaults"), private={"p": 1})
    copy = ResourceStore()
    copy.load(store.dump())
    assert copy.get(VAULT) == store.get(VAULT) and copy.private(VAULT) == {"p": 1}


def test_concurrent_read_modify_write_in_transactions_loses_nothing() -> None:
    store = ResourceStore()
    store.put(record(VAULT, "Microsoft.RecoveryServices/vaults", properties={"n": 0}))

    def bump() -> None:
        for _ in range(200):
            with store.transaction():
                current = store.get(VAULT)
                current["properties"]["n"] += 1
                store.put(current)

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.get(VAULT)["properties"]["n"] == 800
