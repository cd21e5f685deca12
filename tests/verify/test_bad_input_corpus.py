# ruff: noqa: E501 -- the expected messages are kept whole, one per line, to be read as the user reads them
"""Every bad input in the corpus (tests/verify/bad_inputs.py) fails before anything runs,
with exit code 2, this exact message (field, value, problem, fix), and no traceback.

Each case runs through the real CLI, in-process; a few also run as a separate process,
so stderr is checked for a traceback exactly as a user would see it. A case that let
anything start would need seconds (the sandbox, the deploy) and write a report: every
case must leave the report directory without a report.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from bad_inputs import CASES, Case, argv_for

from verify.cli import main

REPO = Path(__file__).resolve().parents[2]

#: case name -> the message after "error: " ({dir}: the case's own directory).
EXPECTED: dict[str, str] = {
    "unknown top-level key": (
        "mikit:vmSzie: 'Standard_B2s' is not a known setting. Fix: did you mean mikit:vmSize or mikit:vms? remove it (pulumi config rm mikit:vmSzie) or fix its spelling"
    ),
    "unknown key, wrong case": (
        "mikit:adminUserName: 'root' is not a known setting. Fix: did you mean mikit:adminUsername? remove it (pulumi config rm mikit:adminUserName) or fix its spelling"
    ),
    "key without namespace": (
        "Pulumi.bad.yaml: vmSize: 'Standard_B2s' has no namespace, so the stack program never reads it (it reads mikit:*). Fix: write it as mikit:vmSize"
    ),
    "unknown vault key": (
        "mikit:vault.nmae: 'kv-x' is not a known setting. Fix: did you mean 'name'? remove it or fix its spelling; allowed here: name, purgeProtection, publicNetworkAccess, softDeleteRetentionDays, createMode"
    ),
    "unknown vm key": (
        "mikit:vms.web.systemIdentiy: True is not a known setting. Fix: did you mean 'systemIdentity'? remove it or fix its spelling; allowed here: name, systemIdentity, userAssigned, size"
    ),
    "unknown grant key": (
        "mikit:grants[0].rol: 'Owner' is not a known setting. Fix: did you mean 'role'? remove it or fix its spelling; allowed here: principal, role, target, description, condition, conditionVersion, allowPrivileged"
    ),
    "unknown identity key": (
        "mikit:identities.app.lokc: True is not a known setting. Fix: did you mean 'lock'? remove it or fix its spelling; allowed here: name, lock, federatedCredentials"
    ),
    "unknown network key": (
        "mikit:network.adressSpace: '10.0.0.0/16' is not a known setting. Fix: did you mean 'addressSpace'? remove it or fix its spelling; allowed here: addressSpace, subnetPrefix, natGateway"
    ),
    "unknown federated credential key": (
        "mikit:identities.app.federatedCredentials[0].audience: ['x'] is not a known setting. Fix: did you mean 'audiences'? remove it or fix its spelling; allowed here: name, issuer, subject, audiences"
    ),
    "missing location": (
        "mikit:location: is required but not set. Fix: set it: pulumi config set mikit:location <value> (see docs/stack-config.md)"
    ),
    "missing sshPublicKey": (
        'mikit:sshPublicKey: is required but not set (vms.web is a Linux host that logs in with it). Fix: set it: pulumi config set mikit:sshPublicKey "$(cat ~/.ssh/id_ed25519.pub)" (see docs/stack-config.md)'
    ),
    "missing vault": (
        "mikit:vault: is required but not set. Fix: set it: pulumi config set --path 'mikit:vault.name' <value> and its other keys (see docs/stack-config.md)"
    ),
    "missing vault name": (
        "mikit:vault.name: is required but not set. Fix: set it: pulumi config set --path 'mikit:vault.name' <value> (see docs/stack-config.md)"
    ),
    "missing vm name": (
        "mikit:vms.web.name: is required but not set. Fix: set it: pulumi config set --path 'mikit:vms.web.name' <value> (see docs/stack-config.md)"
    ),
    "missing grant role": (
        "mikit:grants[0].role: is required but not set. Fix: set it: pulumi config set --path 'mikit:grants[0].role' <value> (see docs/stack-config.md)"
    ),
    "missing secret value": (
        "mikit:secret-db: is not set in {dir}/Pulumi.bad.yaml, so secret 'db' has no value to deploy. Fix: add 'mikit:secret-db: <value>' to the file (the sandbox is local and throw-away), or pulumi config set --secret mikit:secret-db <value> --stack bad"
    ),
    "retention below range": (
        "mikit:vault.softDeleteRetentionDays: 3 is below the minimum 7. Fix: use a number from 7"
    ),
    "retention above range": (
        "mikit:vault.softDeleteRetentionDays: 100 is above the maximum 90. Fix: use a number up to 90"
    ),
    "retention not a number": (
        "mikit:vault.softDeleteRetentionDays: 'a week' is not a whole number. Fix: use a whole number"
    ),
    "purgeProtection not a bool": (
        "mikit:vault.purgeProtection: 'maybe' is not true or false. Fix: use true or false"
    ),
    "createResourceGroup not a bool": (
        "mikit:createResourceGroup: 'perhaps' is not true or false. Fix: use true or false"
    ),
    "tags not a mapping": ("mikit:tags: ['a', 'b'] is not a mapping. Fix: write key: value pairs"),
    "secrets not a list": (
        "mikit:secrets: 'db' is not a list. Fix: write it as a YAML list in the stack file (mikit:secrets: [a, b]), or set its parts with pulumi config set --path 'mikit:secrets[0]' <value>"
    ),
    "identities not a mapping": (
        "mikit:identities: ['app'] is not a mapping. Fix: write key: value pairs"
    ),
    "grants not a list": (
        "mikit:grants: {'principal': 'vm:web'} is not a list. Fix: write a YAML list: [a, b] or one '- item' per line"
    ),
    "vm not a mapping": ("mikit:vms.web: 'vm-web' is not a mapping. Fix: write key: value pairs"),
    "empty userAssigned": (
        "mikit:vms.web.userAssigned: [] is an empty list. Fix: list at least one identity key (from mikit:identities), or leave the key out"
    ),
    "location not a region": (
        "mikit:location: 'mars' is not an Azure region. Fix: use a region's programmatic name, e.g. westeurope (`az account list-locations -o table`); the shipped list is components/data/azure_regions.json"
    ),
    "location misspelt": (
        "mikit:location: 'westeurpoe' is not an Azure region. Fix: did you mean 'westeurope' or 'westus'? use a region's programmatic name, e.g. westeurope (`az account list-locations -o table`); the shipped list is components/data/azure_regions.json"
    ),
    "resource group ends with a dot": (
        "mikit:resourceGroup: 'rg-bad.' is not a valid resource group name. Fix: use 1-90 letters, digits, '-', '_', '.', '(' or ')', not ending with '.'"
    ),
    "ssh key not a key": (
        "mikit:sshPublicKey: 'hunter2' is not an OpenSSH public key (Invalid line format). Fix: paste the single line of your *.pub file, e.g. 'ssh-ed25519 AAAAC3... you@host' (create one with: ssh-keygen -t ed25519)"
    ),
    "reserved admin user": (
        "mikit:adminUsername: 'root' is a user name Azure reserves and refuses for VM administrators. Fix: pick a personal or service name such as 'azureuser' or 'opsadmin'"
    ),
    "vault name too short": (
        "mikit:vault.name: 'kv' is not a valid Key Vault name. Fix: use 3-24 letters, digits and hyphens, starting with a letter, not ending with a hyphen and without '--' (vault names are global: add a short unique suffix)"
    ),
    "vault name with double hyphen": (
        "mikit:vault.name: 'kv--bad' contains consecutive hyphens. Fix: use 3-24 letters, digits and hyphens, starting with a letter, not ending with a hyphen and without '--' (vault names are global: add a short unique suffix)"
    ),
    "secret name with underscore": (
        "mikit:secrets[0]: 'db_password' is not a valid Key Vault secret name. Fix: use 1-127 letters, digits and hyphens (no underscores, dots or spaces)"
    ),
    "secret declared twice": ("mikit:secrets: 'DB' appears twice. Fix: give each a distinct name"),
    "identity name too short": (
        "mikit:identities.app.name: 'id' is not a valid user-assigned identity name. Fix: use 3-128 letters, digits, hyphens and underscores, starting with a letter or digit"
    ),
    "vm name invalid": (
        "mikit:vms.web.name: 'vm_web!' is not a valid Linux VM name. Fix: use 1-64 letters, digits and hyphens, not starting or ending with a hyphen and not only digits"
    ),
    "address space not a CIDR": (
        "mikit:network.addressSpace: '10.0.0.0/33' is not a CIDR block ('10.0.0.0/33' does not appear to be an IPv4 or IPv6 network). Fix: use e.g. 10.42.0.0/16"
    ),
    "subnet outside address space": (
        "mikit:network.subnetPrefix: '10.9.1.0/24' is not inside mikit:network.addressSpace 10.42.0.0/16. Fix: pick a subnet inside the address space, e.g. 10.42.1.0/24 in 10.42.0.0/16"
    ),
    "empty secret value": (
        "mikit:secret-db: '' is empty, so secret 'db' would be stored without a value. Fix: give it a value: pulumi config set --secret mikit:secret-db <value>"
    ),
    "blank secret value": (
        "mikit:secret-db: '   ' is empty, so secret 'db' would be stored without a value. Fix: give it a value: pulumi config set --secret mikit:secret-db <value>"
    ),
    "undeclared secret value": (
        "mikit:secret-dbx: '[secret]' is a value for secret 'dbx', which mikit:secrets does not declare (declared: 'db'). Fix: did you mean secret-db? add 'dbx' to mikit:secrets, or remove the value: pulumi config rm mikit:secret-dbx"
    ),
    "issuer without host": (
        "mikit:identities.app.federatedCredentials[0].issuer: 'https://' is not an https URL with a host. Fix: use the OIDC issuer, e.g. https://token.actions.githubusercontent.com"
    ),
    "issuer with empty host and a path": (
        "mikit:identities.app.federatedCredentials[0].issuer: 'https:///token' is not an https URL with a host. Fix: use the OIDC issuer, e.g. https://token.actions.githubusercontent.com"
    ),
    "issuer over http": (
        "mikit:identities.app.federatedCredentials[0].issuer: 'http://token.actions.githubusercontent.com' is not an https URL with a host. Fix: use the OIDC issuer, e.g. https://token.actions.githubusercontent.com"
    ),
    "empty subject": (
        "mikit:identities.app.federatedCredentials[0].subject: '' is empty. Fix: use the token subject, e.g. repo:<org>/<repo>:ref:refs/heads/main"
    ),
    "empty audiences": (
        "mikit:identities.app.federatedCredentials[0].audiences: () is not a non-empty list. Fix: use ['api://AzureADTokenExchange']"
    ),
    "vm names an unknown identity": (
        "mikit:vms.web.userAssigned[0]: 'ap' is not a key of mikit:identities. Fix: use one of 'app'"
    ),
    "vm without identity": (
        "mikit:vms.web: {'systemIdentity': False, 'userAssigned': None} has no identity at all. Fix: set systemIdentity: true and/or userAssigned: [<identity key>]"
    ),
    "grant to an unknown vm": (
        "mikit:grants[0].principal: 'vm:wbe' names a VM that does not exist. Fix: use one of 'vm:web', 'identity:app'"
    ),
    "grant to a vm without system identity": (
        "mikit:grants[0].principal: 'vm:web' names a VM whose system identity is off. Fix: set mikit:vms.web.systemIdentity: true, or grant a user-assigned identity"
    ),
    "grant principal without prefix": (
        "mikit:grants[0].principal: 'app' is not a principal reference. Fix: write vm:<vm key> (its system identity), app:<app key> (its system identity), scaleset:<scale set key> (its system identity), workload:<workload key> (its identity) or identity:<identity key>"
    ),
    "app kind unknown": (
        "mikit:apps.site.kind: 'website' is not one of 'webapp', 'functionapp' or 'containerapp'. Fix: use one of 'webapp', 'functionapp' or 'containerapp'"
    ),
    "app kind missing": (
        "mikit:apps.site.kind: is required but not set. Fix: set it: pulumi config set --path 'mikit:apps.site.kind' <value> (see docs/stack-config.md)"
    ),
    "unknown app key": (
        "mikit:apps.site.systemIdentiy: True is not a known setting. Fix: did you mean 'systemIdentity'? remove it or fix its spelling; allowed here: name, kind, systemIdentity, userAssigned, defaultIdentity, keyVaultReferences, keyVaultReferenceIdentity, settings, plan, publicNetworkAccess, environment, identityLifecycles, ingressPort, externalIngress, hostStorage"
    ),
    "apps not a mapping": ("mikit:apps: ['site'] is not a mapping. Fix: write key: value pairs"),
    "app key not a name": (
        "mikit:apps.my site: 'my site' is not a valid key. Fix: use 1-63 letters, digits, '-' and '_', starting with a letter or digit"
    ),
    "web app name too long": (
        "mikit:apps.site.name: 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' is not a valid App Service app name. Fix: use 2-60 letters, digits and hyphens, not starting or ending with a hyphen (it becomes <name>.azurewebsites.net, so it must be unique in Azure)"
    ),
    "web app name starts with a hyphen": (
        "mikit:apps.site.name: '-app' is not a valid App Service app name. Fix: use 2-60 letters, digits and hyphens, not starting or ending with a hyphen (it becomes <name>.azurewebsites.net, so it must be unique in Azure)"
    ),
    "container app name with capitals": (
        "mikit:apps.site.name: 'CA-bad' is not a valid container app name. Fix: use 2-32 lowercase letters, digits and hyphens, starting with a letter, ending with a letter or digit, without '--'"
    ),
    "container app name too long": (
        "mikit:apps.site.name: 'ccccccccccccccccccccccccccccccccc' is not a valid container app name. Fix: use 2-32 lowercase letters, digits and hyphens, starting with a letter, ending with a letter or digit, without '--'"
    ),
    "container app name with --": (
        "mikit:apps.site.name: 'ca--bad' is not a valid container app name. Fix: use 2-32 lowercase letters, digits and hyphens, starting with a letter, ending with a letter or digit, without '--'"
    ),
    "container app environment name": (
        "mikit:apps.site.environment: 'Env_1' is not a valid Container Apps environment name. Fix: use 2-60 lowercase letters, digits and hyphens, starting with a letter, ending with a letter or digit, without '--'"
    ),
    "app plan name": (
        "mikit:apps.site.plan: 'plan one' is not a valid App Service plan name. Fix: use 1-60 letters, digits and hyphens"
    ),
    "plan on a container app": (
        "mikit:apps.site.plan: 'plan-one' applies only to web apps and Function apps, and this app is kind 'containerapp'. Fix: remove it, or change the app's kind"
    ),
    "identity lifecycles on a web app": (
        "mikit:apps.site.identityLifecycles: {'system': 'None'} applies only to container apps, and this app is kind 'webapp'. Fix: remove it, or change the app's kind"
    ),
    "ingress port not a number": (
        "mikit:apps.site.ingressPort: 'http' is not a whole number. Fix: use a whole number"
    ),
    "public ingress without a port": (
        "mikit:apps.site.externalIngress: True asks for public ingress without an ingressPort. Fix: set mikit:apps.site.ingressPort to the port the container listens on"
    ),
    "app names an unknown identity": (
        "mikit:apps.site.userAssigned[0]: 'ap' is not a key of mikit:identities. Fix: use one of 'app'"
    ),
    "app userAssigned empty": (
        "mikit:apps.site.userAssigned: [] is an empty list. Fix: list at least one identity key (from mikit:identities), or leave the key out"
    ),
    "app without identity": (
        "mikit:apps.site: {'systemIdentity': False, 'userAssigned': None} has no identity at all. Fix: set systemIdentity: true and/or userAssigned: [<identity key>]"
    ),
    "reference to an undeclared secret": (
        "mikit:apps.site.keyVaultReferences.DB: 'dbx' names a secret that is not declared in mikit:secrets. Fix: use one of 'db'"
    ),
    "reference setting name": (
        "mikit:apps.site.keyVaultReferences.DB-PASSWORD: 'DB-PASSWORD' is not a valid app setting name. Fix: use letters, digits and '_', not starting with a digit (it becomes an environment variable)"
    ),
    "reference shadows a setting": (
        "mikit:apps.site.keyVaultReferences.DB: 'db' uses the name of a plain setting (DB). Fix: give the reference its own name, or drop the plain setting"
    ),
    "host storage on a web app": (
        "mikit:apps.site.hostStorage: {'identity': 'system'} applies only to Function apps, and this app is kind 'webapp'. Fix: remove it, or change the app's kind"
    ),
    "unknown host storage key": (
        "mikit:apps.site.hostStorage.acount: 'data' is not a known setting. Fix: did you mean 'account'? remove it or fix its spelling; allowed here: account, identity"
    ),
    "host storage account undeclared": (
        "mikit:apps.site.hostStorage.account: 'data' names a storage account that is not declared in mikit:storageAccounts. Fix: declare it first, or leave it out for a dedicated account"
    ),
    "host storage account with containers": (
        "mikit:apps.site.hostStorage.account: 'data' holds containers the access matrix covers, and the host's identity gets Storage Blob Data Owner on the whole account, outside mikit:grants. Fix: leave it out (the app gets a dedicated account), or name an account without containers"
    ),
    "host storage identity not held": (
        "mikit:apps.site.hostStorage.identity: 'app' names an identity the app does not hold, so it cannot be used for the Functions host's storage. Fix: use one of 'system'"
    ),
    "host storage identity system but off": (
        "mikit:apps.site.hostStorage.identity: 'system' names the system identity for the Functions host's storage, but the app's system identity is off. Fix: set systemIdentity: true, or name one of the app's userAssigned identities"
    ),
    "host storage with several identities and no choice": (
        "mikit:apps.site.hostStorage.identity: is not set, but the app holds several user-assigned identities and no system identity, so the Functions host cannot know which one reaches its storage. Fix: set it to one of 'app', 'other'"
    ),
    "function app sets a host storage connection string": (
        "mikit:apps.site.settings.AzureWebJobsStorage: 'DefaultEndpointsProtocol=https' is set by the kit: the Functions host reaches its storage with a managed identity, never a connection string. Fix: remove it; choose the account and identity with mikit:apps.site.hostStorage"
    ),
    "app sets AZURE_CLIENT_ID": (
        "mikit:apps.site.settings.AZURE_CLIENT_ID: 'x' is set by the kit from the app's defaultIdentity. Fix: remove it and set mikit:apps.site.defaultIdentity: <identity key>"
    ),
    "reference identity not held": (
        "mikit:apps.site.keyVaultReferenceIdentity: 'app' names an identity the app does not hold, so it cannot be used for Key Vault references. Fix: use one of 'system'"
    ),
    "reference identity system but off": (
        "mikit:apps.site.keyVaultReferenceIdentity: 'system' names the system identity for Key Vault references, but the app's system identity is off. Fix: set systemIdentity: true, or name one of the app's userAssigned identities"
    ),
    "references with no identity to resolve them": (
        "mikit:apps.site.keyVaultReferenceIdentity: is not set, so Key Vault references would resolve with the system identity, which is off. Fix: set it to the key of the user-assigned identity that may read the vault"
    ),
    "default identity not held": (
        "mikit:apps.site.defaultIdentity: 'app' names an identity the app does not hold, so it cannot be used for the app's code. Fix: use one of 'system'"
    ),
    "default identity system": (
        "mikit:apps.site.defaultIdentity: 'system' names the system identity, which the code uses anyway when no default is set. Fix: remove defaultIdentity, or name a user-assigned identity key"
    ),
    "several identities and no default": (
        "mikit:apps.site.defaultIdentity: is not set, but the app holds several user-assigned identities and no system identity, so its code cannot know which to use. Fix: set it to one of 'app', 'other'"
    ),
    "identity lifecycle unknown": (
        "mikit:apps.site.identityLifecycles.app: 'Sometimes' is not one of 'All', 'Main', 'Init' or 'None'. Fix: use one of 'All', 'Main', 'Init' or 'None'"
    ),
    "identity lifecycle hides the code's identity": (
        "mikit:apps.site.identityLifecycles.app: 'None' hides the identity the app's code uses from its main container. Fix: use All or Main, or give the code another defaultIdentity"
    ),
    "identity lifecycle of an identity not held": (
        "mikit:apps.site.identityLifecycles.system: 'system' names the system identity for identity lifecycles, but the app's system identity is off. Fix: set systemIdentity: true, or name one of the app's userAssigned identities"
    ),
    "grant to an unknown app": (
        "mikit:grants[0].principal: 'app:sit' names an app that does not exist. Fix: use one of 'vm:web', 'app:site', 'identity:app'"
    ),
    "grant to an app without system identity": (
        "mikit:grants[0].principal: 'app:site' names an app whose system identity is off. Fix: set mikit:apps.site.systemIdentity: true, or grant a user-assigned identity"
    ),
    "two apps with one name": (
        "mikit:apps.*.name: 'APP-BAD-INPUTS' appears twice. Fix: give each a distinct name"
    ),
    "grant to an undeclared secret": (
        "mikit:grants[0].target: 'secret:dbx' names a secret that is not declared in mikit:secrets. Fix: use one of 'secret:db', 'vault'"
    ),
    "grant target not a reference": (
        "mikit:grants[0].target: 'everything' is not a grant target. Fix: write secret:<secret name>, vault, storage:<account key> or container:<account key>/<container>"
    ),
    "grant repeated": (
        "mikit:grants[1]: {'principal': 'identity:app', 'role': 'Key Vault Secrets User', 'target': 'secret:db'} repeats grants[0] (same principal, role and target). Fix: remove one of them"
    ),
    "role name misspelt": (
        "mikit:grants[0].role: 'Key Vault Secret Usr' is not a built-in role in the catalog. Fix: did you mean 'Key Vault Secrets User', 'Key Vault Crypto User', 'Key Vault Secrets Officer'? use a built-in role name (e.g. 'Key Vault Secrets User'); custom roles are looked up by name or GUID when deploying to Azure (ARM_SUBSCRIPTION_ID set)"
    ),
    "role GUID not in the catalog": (
        "mikit:grants[0].role: '9f0c8a55-0d2e-4b7c-9a51-0f1e2d3c4b5a' is a role GUID that is not in the built-in role catalog. Fix: use a built-in role name (e.g. 'Key Vault Secrets User'); a custom role's GUID is looked up in Azure only when deploying there (pulumi up with ARM_SUBSCRIPTION_ID set)"
    ),
    "role definition ID not in the catalog": (
        "mikit:grants[0].role: '/subscriptions/00000000-0000-0000-0000-000000000000/providers/Microsoft.Authorization/roleDefinitions/9f0c8a55-0d2e-4b7c-9a51-0f1e2d3c4b5a' is a role GUID that is not in the built-in role catalog. Fix: use a built-in role name (e.g. 'Key Vault Secrets User'); a custom role's GUID is looked up in Azure only when deploying there (pulumi up with ARM_SUBSCRIPTION_ID set)"
    ),
    "Owner at vault scope": (
        "mikit:grants[0].role: 'Owner' is a privileged role (it can change access or holds a whole data plane), here at 'vault'. Fix: grant a data role such as 'Key Vault Secrets User', or opt in with allowPrivileged: true on that grant (pulumi config set --path 'mikit:grants[0].allowPrivileged' true)"
    ),
    "Key Vault Administrator at secret scope": (
        "mikit:grants[0].role: 'Key Vault Administrator' is a privileged role (it can change access or holds a whole data plane), here at 'secret:db'. Fix: grant a data role such as 'Key Vault Secrets User', or opt in with allowPrivileged: true on that grant (pulumi config set --path 'mikit:grants[0].allowPrivileged' true)"
    ),
    "User Access Administrator at secret scope": (
        "mikit:grants[0].role: 'User Access Administrator' is a privileged role (it can change access or holds a whole data plane), here at 'secret:db'. Fix: grant a data role such as 'Key Vault Secrets User', or opt in with allowPrivileged: true on that grant (pulumi config set --path 'mikit:grants[0].allowPrivileged' true)"
    ),
    "scale set with 101 instances": (
        "mikit:scaleSets.web.instances: 101 is not a whole number of instances from 0 to 100. Fix: use 0-100 (a set in one placement group holds at most 100)"
    ),
    "scale set with -1 instances": (
        "mikit:scaleSets.web.instances: -1 is not a whole number of instances from 0 to 100. Fix: use 0-100 (a set in one placement group holds at most 100)"
    ),
    "scale set instances not a number": (
        "mikit:scaleSets.web.instances: 'two' is not a whole number. Fix: use a whole number"
    ),
    "scale set without identity": (
        "mikit:scaleSets.web: {'systemIdentity': False, 'userAssigned': None} has no identity at all. Fix: set systemIdentity: true and/or userAssigned: [<identity key>]"
    ),
    "scale set naming an unknown identity": (
        "mikit:scaleSets.web.userAssigned[0]: 'nope' is not a key of mikit:identities. Fix: use one of 'app'"
    ),
    "scale set name starts with a hyphen": (
        "mikit:scaleSets.web.name: '-vmss' is not a valid Linux VM name. Fix: use 1-64 letters, digits and hyphens, not starting or ending with a hyphen and not only digits"
    ),
    "unknown scale set key": (
        "mikit:scaleSets.web.instance: 2 is not a known setting. Fix: did you mean 'instances'? remove it or fix its spelling; allowed here: name, instances, systemIdentity, userAssigned, size"
    ),
    "grant to a scale set whose system identity is off": (
        "mikit:grants[0].principal: 'scaleset:web' names a scale set whose system identity is off. Fix: set mikit:scaleSets.web.systemIdentity: true, or grant a user-assigned identity"
    ),
    "grant to an undeclared scale set": (
        "mikit:grants[0].principal: 'scaleset:api' names a scale set that does not exist. Fix: use one of 'vm:web', 'identity:app'"
    ),
    "cluster name starts with a hyphen": (
        "mikit:clusters.aks.name: '-aks' is not a valid AKS cluster name. Fix: use 1-63 letters, digits, '-' and '_', starting and ending with a letter or digit"
    ),
    "cluster with no nodes": (
        "mikit:clusters.aks.nodeCount: 0 is not 1-1000 nodes. Fix: use 1 or more"
    ),
    "workloads not a mapping": (
        "mikit:clusters.aks.workloads: ['api'] is not a mapping. Fix: write key: value pairs"
    ),
    "unknown workload key": (
        "mikit:clusters.aks.workloads.api.serviceAcount: 'api' is not a known setting. Fix: did you mean 'serviceAccount'? remove it or fix its spelling; allowed here: namespace, serviceAccount, identity"
    ),
    "workload namespace in upper case": (
        "mikit:clusters.aks.workloads.api.namespace: 'Shop' is not a valid Kubernetes namespace. Fix: use 1-63 lower-case letters, digits and '-', starting and ending with a letter or digit"
    ),
    "workload service account with an underscore": (
        "mikit:clusters.aks.workloads.api.serviceAccount: 'api_sa' is not a valid Kubernetes service account name. Fix: use lower-case letters, digits, '-' and '.', starting and ending with a letter or digit (at most 253)"
    ),
    "workload naming an unknown identity": (
        "mikit:clusters.aks.workloads.api.identity: 'nope' is not a key of mikit:identities. Fix: use one of 'app'"
    ),
    "two workloads on one service account": (
        "mikit:clusters.aks.workloads.batch.serviceAccount: 'batch' is already used in namespace 'shop' by workload 'api': one service account has one subject, and Entra ID refuses a second credential with the same issuer and subject. Fix: give this workload a service account of its own"
    ),
    "one workload key in two clusters": (
        "mikit:clusters.aks.workloads.api: 'api' is also a workload of mikit:clusters.aks2. Fix: give each workload a key of its own (grants name them workload:<key>)"
    ),
    "grant to a workload without identity": (
        "mikit:grants[0].principal: 'workload:batch' names a workload that runs without workload identity (its pods would reach IMDS as the node's kubelet identity). Fix: set mikit:clusters.aks.workloads.batch.identity: <identity key>"
    ),
    "grant to an undeclared workload": (
        "mikit:grants[0].principal: 'workload:web' names a workload that does not exist. Fix: use one of 'vm:web', 'workload:api', 'identity:app'"
    ),
    "the 21st federated credential on one identity": (
        "mikit:clusters.aks.workloads.api.identity: 'app' needs 21 federated credentials on one identity (20 in mikit:identities.app.federatedCredentials, 1 workload); Entra ID allows 20. Fix: bind some workloads to a second identity"
    ),
    "cluster issuer without its trailing slash": (
        "mikit:identities.app.federatedCredentials[0].issuer: 'https://westeurope.oic.prod-aks.azure.com/00000000-0000-0000-0000-000000000001/1a2b' lacks the trailing slash every AKS issuer URL ends with; Entra ID compares issuers character by character (AADSTS700211). Fix: write https://westeurope.oic.prod-aks.azure.com/00000000-0000-0000-0000-000000000001/1a2b/ (as az aks show --query oidcIssuerProfile.issuerURL prints it), or declare the workload under mikit:clusters so the stack federates it from the cluster's output"
    ),
    "cluster issuer typed in for a workload of the stack": (
        "mikit:identities.app.federatedCredentials[0]: 'k8s' is the credential workload 'api' of mikit:clusters.aks already gets from the cluster's issuer output (a typed copy of an issuer is how AADSTS700211 happens). Fix: remove this entry"
    ),
    "service account subject with 'serviceaccounts'": (
        "mikit:identities.app.federatedCredentials[0].subject: 'system:serviceaccounts:shop:api' is not the subject of a Kubernetes service account token (AADSTS700213 at the first exchange). Fix: write system:serviceaccount:<namespace>:<service account>"
    ),
    "service account subject without its name": (
        "mikit:identities.app.federatedCredentials[0].subject: 'system:serviceaccount:shop' is not the subject of a Kubernetes service account token (AADSTS700213 at the first exchange). Fix: write system:serviceaccount:<namespace>:<service account>"
    ),
    "service account subject with an upper-case namespace": (
        "mikit:identities.app.federatedCredentials[0].subject: 'system:serviceaccount:Shop:api' names namespace 'Shop', which is not a valid Kubernetes namespace. Fix: use 1-63 lower-case letters, digits and '-', starting and ending with a letter or digit"
    ),
    "cluster credential with the wrong audience": (
        "mikit:identities.app.federatedCredentials[0].audiences: ['api://AzureADTokenExchange/'] is not the audience of the tokens AKS projects for workload identity (AADSTS700212). Fix: use ['api://AzureADTokenExchange']"
    ),
    "document is a list": (
        "stack file: '{dir}/Pulumi.bad.yaml' holds a YAML list, not a mapping. Fix: write it as a mapping with a config: key, e.g. 'config:' then '  mikit:location: westeurope' on the next line"
    ),
    "document is a scalar": (
        "stack file: '{dir}/Pulumi.bad.yaml' holds a YAML str, not a mapping. Fix: write it as a mapping with a config: key, e.g. 'config:' then '  mikit:location: westeurope' on the next line"
    ),
    "config is a list": (
        "Pulumi.bad.yaml: config: [{'mikit:location': 'westeurope'}] is a YAML list, not a mapping. Fix: write `config:` as key: value lines (mikit:location: westeurope)"
    ),
    "not YAML": (
        "stack file: '{dir}/Pulumi.bad.yaml' cannot be read (while parsing a flow sequence). Fix: give a Pulumi.<stack>.yaml file (YAML with a config: mapping)"
    ),
    "--parallel 0": (
        "--parallel: 0 is out of range (allowed: 1 to 64). Fix: use a number from 1 to 64, e.g. --parallel 1"
    ),
    "--parallel -1": (
        "--parallel: -1 is out of range (allowed: 1 to 64). Fix: use a number from 1 to 64, e.g. --parallel 1"
    ),
    "--parallel not a number": (
        "--parallel: 'many' is not a whole number (allowed: 1 to 64). Fix: use e.g. --parallel 1"
    ),
    "--parallel too many": (
        "--parallel: 1000 is out of range (allowed: 1 to 64). Fix: use a number from 1 to 64, e.g. --parallel 64"
    ),
    "--propagation-wait -5": (
        "--propagation-wait: -5.0 is out of range (allowed: 0 to 3600 seconds). Fix: use a number of seconds from 0 to 3600, e.g. --propagation-wait 120"
    ),
    "--propagation-wait nan": (
        "--propagation-wait: 'nan' is not a number of seconds (allowed: 0 to 3600). Fix: use e.g. --propagation-wait 120"
    ),
    "--propagation-wait too long": (
        "--propagation-wait: 86400.0 is out of range (allowed: 0 to 3600 seconds). Fix: use a number of seconds from 0 to 3600, e.g. --propagation-wait 120"
    ),
    "--propagation-wait on check": (
        "--propagation-wait: 'soon' is not a number of seconds (allowed: 0 to 3600). Fix: use e.g. --propagation-wait 120"
    ),
    "--outputs on the sandbox": (
        "--outputs: '{dir}/outputs.json' only applies to --target azure. Fix: drop it: the sandbox target deploys the stack program itself"
    ),
    "--outputs missing": (
        "--outputs: '{dir}/missing.json' does not exist. Fix: save it with: pulumi stack output --json --show-secrets > outputs.json"
    ),
    "--outputs not JSON": (
        "--outputs: '{dir}/outputs.json' is not JSON (Expecting value at line 1, column 1). Fix: save it with: pulumi stack output --json --show-secrets > outputs.json"
    ),
    "--outputs a JSON list": (
        "--outputs: '{dir}/outputs.json' holds a JSON list, not an object. Fix: save it with: pulumi stack output --json --show-secrets > outputs.json"
    ),
    "--report-dir is a file": (
        "--report-dir: '{dir}/taken' names an existing file, not a directory. Fix: give a directory (it is created if missing), e.g. --report-dir reports"
    ),
    "--stack unknown": (
        "--stack: 'doesnotexist' has no stack file: {dir}/stacks/Pulumi.doesnotexist.yaml does not exist (stacks there: none in {dir}/stacks; built in: sandbox). Fix: pass an existing stack, or --stack-file <path> for a stack file elsewhere"
    ),
    "--stack empty": ("--stack: '' is empty. Fix: name a stack, e.g. --stack dev"),
    "--stack-file missing": (
        "--stack-file: '{dir}/Pulumi.missing.yaml' does not exist ({dir}/Pulumi.missing.yaml). Fix: give the path of a Pulumi.<stack>.yaml file"
    ),
    "--stack-file a directory": (
        "--stack-file: '{dir}' is a directory ({dir}). Fix: give the path of a Pulumi.<stack>.yaml file"
    ),
    "--sandbox-faults missing": (
        "--sandbox-faults: '{dir}/faults.toml' does not exist. Fix: give a TOML or JSON fault plan file (see verify/sandbox/faults.py)"
    ),
    "--sandbox-faults on azure": (
        "--sandbox-faults: '{dir}/faults.toml' only applies to --target sandbox. Fix: drop it, or use --target sandbox"
    ),
}


def test_the_corpus_is_large_and_every_case_has_its_message() -> None:
    assert len(CASES) >= 60
    assert sorted(c.name for c in CASES) == sorted(EXPECTED)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_refused_up_front_with_its_message(
    case: Case,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    code = main(argv_for(case, tmp_path))
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out.strip().replace(str(tmp_path), "{dir}") == "error: " + EXPECTED[case.name]
    assert "Traceback" not in captured.err + captured.out
    assert not (tmp_path / "reports" / "report.json").exists()


@pytest.mark.parametrize(
    "name",
    ["document is a list", "--outputs not JSON", "--parallel 0", "role GUID not in the catalog"],
)
def test_bad_input_in_a_real_process_prints_no_traceback(name: str, tmp_path: Path) -> None:
    (case,) = [c for c in CASES if c.name == name]
    env = {**os.environ, "COLUMNS": "400"}
    done = subprocess.run(
        [sys.executable, "-m", "verify", *argv_for(case, tmp_path)],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr == ""
    assert done.stdout.strip().replace(str(tmp_path), "{dir}") == "error: " + EXPECTED[name]
