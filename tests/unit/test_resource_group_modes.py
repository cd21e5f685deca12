"""``mikit:createResourceGroup``: the stack creates its group, or deploys into an existing one.

A CI deployer holds Contributor on one workload group and cannot create groups, so a CI
stack must not register a ResourceGroup at all (not even one adopted with ``pulumi
import``: the next ``destroy`` would delete the group and everything else in it). Both
modes run the real stack program in the mock runtime.
"""

from __future__ import annotations

from typing import Any

import pytest

from components.errors import ConfigError
from components.testing import AzureMocks, InMemoryArm, run_program
from tests.unit.conftest import PROGRAM, Deployment, deploy, dev_config

RG = "azure-native:resources:ResourceGroup"


def _deploy(create: Any) -> Deployment:
    return deploy(PROGRAM, dev_config(**{"mikit:createResourceGroup": create}))


@pytest.fixture(scope="module")
def created() -> Deployment:
    return _deploy(True)


@pytest.fixture(scope="module")
def existing(dev: Deployment) -> Deployment:
    """The dev stack deploys into an existing group (``mikit:createResourceGroup: false``
    in its file): the session's deployment of it is that mode, read here, never changed."""
    assert dev_config()["mikit:createResourceGroup"] is False
    return dev


def _group_id(d: Deployment) -> str:
    return f"/subscriptions/{d.backend.subscription_id}/resourceGroups/rg-mikit-dev"


def _children_group_names(d: Deployment) -> set[str]:
    return {
        r.inputs["resourceGroupName"]
        for r in d.mocks.custom_registrations()
        if "resourceGroupName" in r.inputs
    }


def test_created_group_is_registered_tagged_and_parents_every_resource(
    created: Deployment,
) -> None:
    (group,) = created.mocks.of_type(RG)
    assert group.name == "rg"
    assert group.inputs["resourceGroupName"] == "rg-mikit-dev"
    assert group.inputs["location"] == "westeurope"
    assert group.inputs["tags"]["managed-by"] == "managed-identity-kit"
    assert group.id == _group_id(created)
    assert created.outputs["resource_group_id"] == group.id
    assert created.backend.of_type("Microsoft.Resources/resourceGroups") != []
    assert _children_group_names(created) == {"rg-mikit-dev"}


def test_existing_group_is_used_by_name_and_never_registered(existing: Deployment) -> None:
    assert existing.mocks.of_type(RG) == []
    assert existing.backend.of_type("Microsoft.Resources/resourceGroups") == []
    # The ID comes from getClientConfig's subscription: no lookup of the group.
    assert existing.outputs["resource_group_id"] == _group_id(existing)
    assert {i.token for i in existing.mocks.invocations} == {
        "azure-native:authorization:getClientConfig",
        # the cluster's kubeconfig for its Kubernetes provider (not a group lookup)
        "azure-native:containerservice:listManagedClusterUserCredentials",
    }
    assert _children_group_names(existing) == {"rg-mikit-dev"}
    for reg in existing.mocks.custom_registrations():
        if reg.type.startswith(("kubernetes:", "pulumi:providers:kubernetes")):
            continue  # objects inside the stack's cluster, through its provider: not ARM
        assert reg.id.lower().startswith(_group_id(existing).lower()), reg.id


def test_both_modes_build_the_same_topology_apart_from_the_group(
    created: Deployment, existing: Deployment
) -> None:
    def shape(d: Deployment) -> list[tuple[str, str]]:
        return sorted((r.type, r.name) for r in d.mocks.custom_registrations())

    assert [s for s in shape(created) if s[0] != RG] == shape(existing)
    assert len(created.outputs["access_matrix"]) == len(existing.outputs["access_matrix"]) > 0


@pytest.mark.parametrize(("raw", "create"), [("false", False), ("true", True)])
def test_the_cli_string_form_is_read_as_a_boolean(raw: str, create: bool) -> None:
    # `pulumi config set mikit:createResourceGroup false` stores the string "false".
    d = _deploy(raw)
    assert bool(d.mocks.of_type(RG)) is create


@pytest.mark.parametrize("bad", ["sometimes", 2, ["false"]])
def test_a_value_that_is_not_a_boolean_fails_before_any_resource(bad: Any) -> None:
    mocks = AzureMocks(InMemoryArm())
    with pytest.raises(ConfigError) as caught:
        run_program(PROGRAM, dev_config(**{"mikit:createResourceGroup": bad}), mocks=mocks)
    assert caught.value.field == "mikit:createResourceGroup"
    assert caught.value.fix == "use true or false"
    assert mocks.custom_registrations() == []
