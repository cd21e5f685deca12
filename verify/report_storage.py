"""The storage part of the report's Mermaid topology: accounts, containers, blobs, grants.

Each storage account is a subgraph holding one subgraph per container with its blobs;
a grant draws an edge from the identity it was given to every blob it lets that identity
read (role, scope and condition evaluated by ``components.access``, as the matrix does),
labelled with the role and "with condition" when an ABAC condition narrowed it. A grant
on storage that reads no blob is drawn to its account, dotted, so a reader sees it exists.
Blob keys carry only account, container and path: never content.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from components import access
from components.conditions import parse_condition
from components.roles import RoleCatalog
from verify.model import Grant, StackOutputs


def _node(prefix: str, key: str) -> str:
    return prefix + "_" + re.sub(r"[^A-Za-z0-9_]", "_", key)


def _label(text: str) -> str:
    return text.replace('"', "'")


def storage_nodes(outputs: StackOutputs) -> list[str]:
    """Subgraphs: account -> container -> blob nodes."""
    lines: list[str] = []
    for key, account in sorted(outputs.storage_accounts.items()):
        lines.append(f'  subgraph {_node("st", key)}["Storage account {_label(account.name)}"]')
        for ckey, container in sorted(outputs.containers.items()):
            if container.account != key:
                continue
            lines.append(f'    subgraph {_node("ct", ckey)}["container {_label(container.name)}"]')
            for bkey, blob in sorted(outputs.blobs.items()):
                if blob.account == key and blob.container == container.name:
                    tags = ", ".join(f"{k}={v}" for k, v in sorted(blob.tags.items()))
                    shown = _label(blob.name) + (f"<br/>{_label(tags)}" if tags else "")
                    lines.append(f'      {_node("blob", bkey)}["{shown}"]')
            lines.append("    end")
        lines.append("  end")
    return lines


def _readable(grant: Grant, outputs: StackOutputs, catalog: RoleCatalog) -> list[str]:
    role = catalog.find(grant.role_definition_id) or catalog.find(grant.role_name)
    if role is None:
        return []
    condition = parse_condition(grant.condition) if grant.condition else None
    ref = access.GrantRef(grant.principal, role, grant.scope, condition)
    return [
        key
        for key, b in sorted(outputs.blobs.items())
        if access.grant_allows_blob(
            ref,
            access.BlobRef(outputs.account_name(b.account), b.container, b.name, b.scope, b.tags),
        )
    ]


def _within(scope: str, account_id: str) -> bool:
    return scope.lower().rstrip("/").startswith(account_id.lower().rstrip("/"))


def storage_edges(outputs: StackOutputs, principals: Mapping[str | None, str]) -> list[str]:
    """Identity -> blob for each grant that reads it; dotted to the account if none."""
    catalog = RoleCatalog.builtin()
    lines: list[str] = []
    for grant in outputs.grants:
        source = principals.get(grant.principal_id)
        if source is None:
            continue
        label = _label(grant.role_name) + (" with condition" if grant.condition else "")
        targets = _readable(grant, outputs, catalog)
        for key in targets:
            lines.append(f'  {source} -- "{label}" --> {_node("blob", key)}')
        account = next(
            (k for k, a in outputs.storage_accounts.items() if _within(grant.scope, a.id)), None
        )
        if not targets and account is not None:
            lines.append(f'  {source} -. "{label} (no blob read)" .-> {_node("st", account)}')
    return lines
