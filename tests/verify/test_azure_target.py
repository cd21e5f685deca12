"""The real-Azure target with its clients faked at their boundary.

The fakes have the azure-mgmt-* method names and return the SDK's own model types. The
Run Command fake goes one step further: it executes the RunShellScript lines with bash,
"on" a sandbox VM, so the inline probe, its heredoc, the base64 spec and the gzip result
are exercised for real; only the transport to the VM is replaced.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.mgmt.authorization.v2022_04_01.models import RoleAssignment
from azure.mgmt.compute.models import (
    InstanceViewStatus,
    RunCommandResult,
    VirtualMachine,
)
from azure.mgmt.msi.models import Identity
from verify_world import RG, SECRET_VALUES, TENANT, World, sample_outputs

from components.errors import ConfigError
from components.testing import arm_shapes
from verify import probe
from verify.model import derive_matrix, load_outputs
from verify.orphans import Candidate, clean_orphans
from verify.runner import check_report
from verify.targets.azure import AzureTarget, run_command_script
from verify.targets.directory import DirectoryAnswer, DirectoryClient

NEW_PID = "99999999-0000-0000-0000-000000000001"
NEW_CID = "99999999-0000-0000-0000-000000000002"


class Poller:
    def __init__(self, value: Any = None) -> None:
        self.value = value

    def wait(self, timeout: float | None = None) -> None:
        self.waited = timeout

    def done(self) -> bool:
        return True

    def result(self) -> Any:
        return self.value


class FakeVirtualMachines:
    """compute.virtual_machines: get, begin_delete, begin_update, begin_run_command."""

    def __init__(self, vms: dict[str, VirtualMachine], run_on_vm: Any = None) -> None:
        self.vms = vms
        self.run_on_vm = run_on_vm
        self.calls: list[tuple[str, ...]] = []
        self.updates: list[Any] = []

    def get(self, rg: str, name: str) -> VirtualMachine:
        if name not in self.vms:
            raise ResourceNotFoundError(f"The Resource '{name}' was not found.")
        return self.vms[name]

    def begin_delete(self, rg: str, name: str, **kwargs: Any) -> Poller:
        self.calls.append(("delete", rg, name))
        self.vms.pop(name, None)
        return Poller()

    def begin_update(self, rg: str, name: str, parameters: Any, **kwargs: Any) -> Poller:
        self.updates.append((name, parameters))
        return Poller(self.vms[name])

    def begin_run_command(self, rg: str, name: str, parameters: Any, **kwargs: Any) -> Poller:
        self.calls.append(("run_command", rg, name, parameters.command_id))
        stdout = self.run_on_vm(name, parameters.script)
        status = InstanceViewStatus(
            code="ProvisioningState/succeeded",
            message=f"Enable succeeded: \n[stdout]\n{stdout}\n[stderr]\n",
        )
        return Poller(RunCommandResult(value=[status]))


class FakeCompute:
    def __init__(self, vms: FakeVirtualMachines) -> None:
        self.virtual_machines = vms


class FakeIdentities:
    def __init__(self, identities: dict[str, Identity]) -> None:
        self.identities = identities
        self.deleted: list[str] = []

    def get(self, rg: str, name: str) -> Identity:
        if name not in self.identities:
            raise ResourceNotFoundError(f"identity {name} not found")
        return self.identities[name]

    def delete(self, rg: str, name: str) -> None:
        self.deleted.append(name)
        self.identities.pop(name, None)

    def create_or_update(self, rg: str, name: str, parameters: Identity) -> Identity:
        created = _identity(name, NEW_PID, NEW_CID)
        self.identities[name] = created
        return created


class FakeMsi:
    def __init__(self, ids: FakeIdentities) -> None:
        self.user_assigned_identities = ids


class FakeRoleAssignments:
    def __init__(self, assignments: list[RoleAssignment]) -> None:
        self.assignments = assignments
        self.filters: list[str | None] = []
        self.scopes: list[str] = []
        self.deleted: list[str] = []
        self.created: list[tuple[str, str, Any]] = []

    def list_for_scope(
        self, scope: str, filter: str | None = None, **kwargs: Any
    ) -> list[RoleAssignment]:
        self.scopes.append(scope)
        self.filters.append(filter)
        pid = filter.split("'")[1] if filter else None
        return [a for a in self.assignments if pid is None or a.principal_id == pid]

    def get_by_id(self, assignment_id: str, **kwargs: Any) -> RoleAssignment:
        for a in self.assignments:
            if a.id == assignment_id and a.id not in self.deleted:
                return a
        raise ResourceNotFoundError(f"The role assignment '{assignment_id}' is not found.")

    def delete_by_id(self, assignment_id: str) -> None:
        self.deleted.append(assignment_id)

    def create(self, scope: str, name: str, parameters: Any) -> RoleAssignment:
        self.created.append((scope, name, parameters))
        made = RoleAssignment(
            scope=scope,
            role_definition_id=parameters.role_definition_id,
            principal_id=parameters.principal_id,
            principal_type=parameters.principal_type,
        )
        made.__dict__.update(
            id=f"{scope}/providers/Microsoft.Authorization/roleAssignments/{name}", name=name
        )
        return made


class FakeAuthorization:
    def __init__(self, ras: FakeRoleAssignments) -> None:
        self.role_assignments = ras


def _assignment(pid: str, name: str, scope: str = RG, role: str = "/r") -> RoleAssignment:
    """A RoleAssignment as the SDK deserializes it from ARM's JSON."""
    doc = arm_shapes.role_assignment(
        scope=scope, name=name, role_definition_id=role, principal_id=pid
    )
    return RoleAssignment.deserialize(doc)


def _vm(name: str, principal: str | None, uais: list[str]) -> VirtualMachine:
    """A VirtualMachine as the SDK builds it from ARM's JSON."""
    doc = arm_shapes.virtual_machine(
        arm_id=f"{RG}/providers/Microsoft.Compute/virtualMachines/{name}",
        location="westeurope",
        vm_id="00000000-0000-0000-0000-00000000000a",
        identity=arm_shapes.vm_identity(
            system_principal_id=principal,
            tenant_id=TENANT,
            user_assigned={u: arm_shapes.AttachedIdentity("p", "c") for u in uais},
        ),
        vm_size="Standard_B2s",
        admin_username="azureuser",
        ssh_public_keys=[],
        disable_password_authentication=True,
        network_interface_ids=[],
        image_reference=None,
    )
    return VirtualMachine(doc)


def _identity(name: str, principal: str, client: str) -> Identity:
    doc = arm_shapes.user_assigned_identity(
        arm_id=f"{RG}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}",
        location="westeurope",
        tenant_id=TENANT,
        principal_id=principal,
        client_id=client,
    )
    return Identity.deserialize(doc)


def _control_plane_target(
    **extra: Any,
) -> tuple[AzureTarget, FakeVirtualMachines, FakeIdentities, FakeRoleAssignments]:
    raw = sample_outputs()
    uai = raw["identities"]["shared"]
    web_pid = raw["vms"]["web"]["system_principal_id"]
    vms = FakeVirtualMachines(
        {
            "vm-web": _vm("vm-web", web_pid, [uai["id"]]),
            "vm-batch": _vm("vm-batch", None, [uai["id"]]),
        }
    )
    shared = _identity("id-shared", uai["principal_id"], uai["client_id"])
    ids = FakeIdentities({"id-shared": shared})
    ras = FakeRoleAssignments([_assignment(web_pid, "g1"), _assignment("orphan-pid", "g9")])
    target = AzureTarget(
        outputs=raw,
        compute=FakeCompute(vms),
        msi=FakeMsi(ids),
        authorization=FakeAuthorization(ras),
        **extra,
    )
    return target, vms, ids, ras


def test_disable_system_identity_keeps_the_user_assigned_ones() -> None:
    target, vms, _, _ = _control_plane_target()
    target.disable_system_identity("web")
    ((name, update),) = vms.updates
    assert name == "vm-web"
    assert update.identity.type == "UserAssigned"
    assert list(update.identity.user_assigned_identities) == [
        sample_outputs()["identities"]["shared"]["id"]
    ]


def test_delete_vm_and_existence() -> None:
    target, vms, _, _ = _control_plane_target()
    assert target.vm_exists("web")
    target.delete_vm("web")
    assert ("delete", "rg-demo", "vm-web") in vms.calls
    assert not target.vm_exists("web")


def test_assignments_are_listed_by_principal_filter_and_created_as_service_principal() -> None:
    target, _, _, ras = _control_plane_target()
    pid = sample_outputs()["vms"]["web"]["system_principal_id"]
    found = target.list_assignments(pid)
    assert ras.filters == [f"principalId eq '{pid}'"]
    assert ras.scopes == [RG]  # the stack's resource group, never the subscription
    assert [a.name for a in found] == ["g1"]
    role = "/providers/Microsoft.Authorization/roleDefinitions/x"
    made = target.create_assignment(pid, role, RG)
    ((_, name, params),) = ras.created
    assert params.principal_type == "ServicePrincipal"
    assert made.name == name
    # Deterministic name: the same grant made twice has the same name (no 409 Exists).
    target.create_assignment(pid, role, RG)
    assert ras.created[1][1] == name


def test_recreated_identity_reports_its_new_ids() -> None:
    target, _, ids, _ = _control_plane_target()
    target.delete_identity("shared")
    assert ids.deleted == ["id-shared"] and not target.identity_exists("shared")
    info = target.create_identity("shared")
    assert (info.principal_id, info.client_id) == (NEW_PID, NEW_CID)
    assert info.name == "id-shared"


def test_live_principals_come_from_arm_not_from_outputs() -> None:
    target, _, _, _ = _control_plane_target()
    raw = sample_outputs()
    live = target.live_principals()
    assert raw["vms"]["web"]["system_principal_id"] in live
    assert raw["identities"]["shared"]["principal_id"] in live
    target.delete_identity("shared")
    target.delete_vm("web")
    assert target.live_principals() == {}


class FakeDirectory:
    """Graph's answers by object ID (verify.targets.directory.DirectoryAnswer)."""

    def __init__(self, statuses: dict[str, tuple[int, str | None]]) -> None:
        self.statuses = statuses
        self.asked: list[str] = []

    def service_principal(self, object_id: str) -> DirectoryAnswer:
        self.asked.append(object_id)
        status, code = self.statuses.get(object_id, (404, "Request_ResourceNotFound"))
        verdict = {200: "exists", 404: "gone", 403: "refused"}.get(status, "unknown")
        return DirectoryAnswer(object_id, verdict, status, code, "")  # type: ignore[arg-type]

    def close(self) -> None:
        pass


def test_orphan_cleanup_deletes_only_what_graph_proves_gone() -> None:
    live_pid = sample_outputs()["vms"]["web"]["system_principal_id"]
    directory = FakeDirectory({live_pid: (200, None)})
    target, _, _, ras = _control_plane_target(directory=directory)
    result = clean_orphans(target, [Candidate(live_pid, "test"), Candidate("orphan-pid", "test")])
    decisions = {d.assignment.name: d.decision for d in result.decisions}
    assert decisions == {"g1": "refused", "g9": "deleted"}
    assert ras.deleted == [f"{RG}/providers/Microsoft.Authorization/roleAssignments/g9"]
    assert directory.asked == [live_pid, "orphan-pid"]


def test_orphan_cleanup_without_a_directory_deletes_nothing() -> None:
    target, _, _, ras = _control_plane_target()
    assert target.directory is None
    result = clean_orphans(target, [Candidate("orphan-pid", "test")])
    (decision,) = result.decisions
    assert decision.decision == "refused" and "no directory client" in decision.reason
    assert ras.deleted == []


def test_the_azure_target_asks_microsoft_graph() -> None:
    target = AzureTarget(outputs=sample_outputs(), credential=object())
    assert isinstance(target.directory, DirectoryClient)
    assert target.directory.graph_url == "https://graph.microsoft.com"


def test_outputs_without_pulumi_cli_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ConfigError) as info:
        AzureTarget(stack="dev", compute=object(), msi=object(), authorization=object())
    assert "pulumi CLI" in info.value.problem and "--outputs" in info.value.fix


def test_script_is_a_heredoc_of_the_probe() -> None:
    lines = run_command_script({"vault_url": "https://x"}, ["/opt/mikit/venv/bin/python3"])
    assert lines[0] == "#!/bin/bash"
    assert lines[-1] == "MIKIT_PROBE_SOURCE_EOF"
    assert any(line.startswith('"$PY" - --spec-b64 ') for line in lines)
    assert "def main(" in "\n".join(lines)


# ------------------------------------------------------------------ Run Command, for real


def _outputs_for_world(world: World) -> dict[str, Any]:
    st = world.sb.state
    vault = st.vault(world.vault_name)
    rg = f"/subscriptions/{st.subscription_id}/resourceGroups/rg-test"
    raw = sample_outputs()
    raw.update(
        tenant_id=st.tenant_id,
        subscription_id=st.subscription_id,
        resource_group_id=rg,
        vault={"name": vault.name, "id": vault.id, "uri": world.vault_url},
        secrets={
            n: {"scope": vault.secret_scope(n), "uri": world.vault_url + "secrets/" + n}
            for n in SECRET_VALUES
        },
        identities={
            "shared": {
                "name": world.shared.name,
                "id": world.shared.id,
                "client_id": world.shared.client_id,
                "principal_id": world.shared.principal_id,
                "tenant_id": st.tenant_id,
            }
        },
        vms={
            "a": {
                "name": "vm-a",
                "id": world.vm_a.id,
                "system_principal_id": world.vm_a.system_principal_id,
                "user_assigned": ["shared"],
            },
            "b": {
                "name": "vm-b",
                "id": world.vm_b.id,
                "system_principal_id": None,
                "user_assigned": ["shared"],
            },
        },
        grants=[
            {
                "name": a.name,
                "id": a.id,
                "principal": "x",
                "principal_id": a.principal_id,
                "role_name": "Key Vault Secrets User",
                "role_definition_id": a.role_definition_id,
                "scope": a.scope,
            }
            for a in st.role_assignments()
            if a.principal_id in (world.vm_a.system_principal_id, world.shared.principal_id)
        ],
        secret_fingerprints={n: probe.fingerprint(v) for n, v in SECRET_VALUES.items()},
    )
    raw["access_matrix"] = [c.model_dump() for c in derive_matrix(load_outputs(raw))]
    return raw


def test_check_through_run_command_script_on_sandbox_vms(world: World, tmp_path: Path) -> None:
    imds = {"vm-a": world.sb.imds_url(world.vm_a), "vm-b": world.sb.imds_url(world.vm_b)}
    # The VM's cloud-init, finished: the script waits for it first (test_azure_cloud_init
    # covers the other verdicts); a fake keeps this machine's own cloud-init, if any, out.
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "cloud-init").write_text("#!/bin/bash\nexit 0\n")
    (fake_bin / "cloud-init").chmod(0o755)

    def run_on_vm(name: str, script: list[str]) -> str:
        env = {"PATH": f"{fake_bin}:/usr/bin:/bin", "AZURE_POD_IDENTITY_AUTHORITY_HOST": imds[name]}
        done = subprocess.run(
            ["bash", "-c", "\n".join(script)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        return done.stdout[-4096:]  # Run Command keeps only the last 4 KiB

    vms = FakeVirtualMachines({}, run_on_vm)
    target = AzureTarget(
        outputs=_outputs_for_world(world),
        compute=FakeCompute(vms),
        msi=FakeMsi(FakeIdentities({})),
        authorization=FakeAuthorization(FakeRoleAssignments([])),
        probe_pythons=[sys.executable],
        ca_bundle=world.sb.ca_cert_path,
        verify_challenge_resource=False,
    )
    run = check_report(target, "test")
    assert run.check is not None
    assert run.check.passed, run.check.failures
    assert {c[0] for c in vms.calls} == {"run_command"}
    assert {c[3] for c in vms.calls} == {"RunShellScript"}
    observed = {(c.host, c.identity, c.target): c.observed for c in run.check.cells}
    assert observed[("a", "system", "api-key")] == "forbidden"
    assert observed[("a", "system", "db-password")] == "read"
    assert observed[("b", "shared", "api-key")] == "read"
