"""The vault-set benchmark at a small size (so it cannot rot): 30 VMs with a fill threshold of 1 % (10 of Azure's
1,000 VMs) on the discrete clock. The set grows by the app's own vaults; every VM is protected exactly once, no
vault is above Azure's limit, and a vault is passed over only once it holds its threshold."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks import vault_sets


def test_a_small_burst_fills_the_set_vault_by_vault(tmp_path: Path) -> None:
    output = tmp_path / "vault_sets.json"
    assert vault_sets.main(["--vms", "30", "--fill-percent", "1", "--seed", "3", "--output", str(output)]) == 0
    burst = json.loads(output.read_text())["burst"]
    assert burst["exactly_once"]["every_vm_protected"] is True
    once = burst["exactly_once"]
    assert once["vms_with_several_items"] == 0 and once["vms_with_several_outcomes"] == 0
    assert burst["no_vault_above_its_limit"] is True
    vaults = burst["vaults"]
    assert sum(vaults.values()) == 30 and burst["vaults_created"] >= 1 and len(vaults) == 1 + burst["vaults_created"]
    assert list(vaults) == [f"rsv-bench-{n:02d}" for n in range(1, len(vaults) + 1)]
    # counts are a moment old, never ahead: a vault is passed over only once it really holds its 10
    assert all(count >= 10 for count in list(vaults.values())[:-1])
    assert burst["clock"]["clock"] == "discrete" and burst["elapsed_virtual_seconds"] > 60
    assert burst["app"]["throttled_429"]["write"] == 0
