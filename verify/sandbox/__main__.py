"""``python -m verify.sandbox`` (also ``python -m verify sandbox``): run the sandbox in a shell.

Starts every service on loopback, prints the endpoints and the CA certificate path (as
text, or JSON with ``--json``), and serves until Ctrl-C / SIGTERM, then shuts down
cleanly. ``--demo`` seeds a small topology (a vault with two secrets, a shared
user-assigned identity, two VMs, secret- and vault-scoped grants, and ``vm-ops`` whose
system identity owns the group, for ``az login --identity``) so there is something to
point a client at; secret values are random and never printed.

``--stack-file FILE`` deploys that stack instead (the stack program in the mock runtime,
as ``verify check --target sandbox`` does) and lists, per host, what a process needs to
run *as* that host here: each VM's and scale-set instance's IMDS address, and for each
cluster workload the variables the workload identity webhook injects, its projected
token file (valid 24 h, the longest the webhook allows) and its node's IMDS address; for
each app (web, Function, container app) the environment its platform gives it
(``IDENTITY_ENDPOINT``, ``IDENTITY_HEADER``, ``AZURE_CLIENT_ID``, Key Vault references
resolved as the platform resolves them, the CA bundle) with the vault and blob URLs.
"""

from __future__ import annotations

import argparse
import json
import secrets
import shlex
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from components.errors import ConfigError
from verify.interrupt import fast_exit
from verify.sandbox.aks.issuer import TOKEN_LIFETIME_RANGE
from verify.sandbox.aks.workloads import pod_environment
from verify.sandbox.sandbox import Sandbox, SandboxConfig


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m verify.sandbox",
        description=(
            "Local stand-in (loopback) for Entra ID, IMDS, the App Service identity endpoint, "
            "AKS OIDC issuers, Key Vault, Blob Storage, Microsoft Graph and the ARM slice."
        ),
    )
    p.add_argument(
        "--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)"
    )
    p.add_argument("--arm-port", type=int, default=0, help="ARM port (default: any free port)")
    p.add_argument("--issuer-port", type=int, default=0, help="issuer discovery port")
    p.add_argument(
        "--faults", metavar="FILE", help="TOML/JSON fault file (see verify.sandbox.faults)"
    )
    p.add_argument("--token-lifetime", type=int, default=86400, metavar="SECONDS")
    p.add_argument("--propagation-delay", type=float, default=0.0, metavar="SECONDS")
    p.add_argument(
        "--deleted-principal-tokens",
        choices=("accept", "refuse"),
        default="accept",
        help="whether Key Vault honours an unexpired token whose principal was deleted",
    )
    p.add_argument("--workdir", help="directory for the CA certificate (default: a temp dir)")
    p.add_argument("--demo", action="store_true", help="seed a small demo topology")
    p.add_argument(
        "--stack-file",
        metavar="FILE",
        help="deploy this stack file (Pulumi.<stack>.yaml) and list its hosts' environments "
        "(VMs, scale-set instances, workloads, apps: what local code needs to be that host)",
    )
    p.add_argument("--json", action="store_true", help="print the endpoints as JSON")
    return p


def seed_demo(sb: Sandbox) -> None:
    """A small topology exercising secret scope, vault scope and a shared identity."""
    st = sb.state
    st.create_resource_group("rg-sandbox")
    shared = st.create_identity("rg-sandbox", "id-shared")
    web = st.create_vm("rg-sandbox", "vm-web", system_assigned=True, user_assigned=[shared.id])
    st.create_vm("rg-sandbox", "vm-batch", user_assigned=[shared.id])
    vault = st.create_vault("rg-sandbox", "kv-sandbox")
    for name in ("db-password", "api-key"):
        st.set_secret(vault.name, name, secrets.token_urlsafe(24))
    assert web.system_principal_id is not None
    st.create_role_assignment(
        vault.secret_scope("db-password"), "Key Vault Secrets User", web.system_principal_id
    )
    st.create_role_assignment(vault.id, "Key Vault Secrets User", shared.principal_id)
    # An operator's VM: `az login --identity` on it manages rg-sandbox (docs/sandbox.md, Azure CLI).
    ops = st.create_vm("rg-sandbox", "vm-ops", system_assigned=True)
    assert ops.system_principal_id is not None
    st.create_role_assignment(
        f"/subscriptions/{sb.subscription_id}/resourceGroups/rg-sandbox",
        "Owner",
        ops.system_principal_id,
    )


def deploy_stack(sb: Sandbox, stack_file: str) -> dict[str, Any]:
    """Deploy ``stack_file`` into ``sb``; what each of its hosts needs (see the module doc)."""

    from verify.sandbox.appservice.environment import app_environments  # noqa: PLC0415
    from verify.targets.sandbox import deploy  # noqa: PLC0415 (loads Pulumi)

    path = Path(stack_file)
    stack = path.stem.split(".", 1)[-1] if path.stem.startswith("Pulumi.") else path.stem
    backend = sb.arm  # the sandbox's one ARM model, which the deploy writes into
    outputs = deploy(sb, stack_config=path, stack=stack)
    token_dir = Path(sb.ca_cert_path).parent / "workload-tokens"
    hosts: dict[str, Any] = {
        "vms": {
            key: {"name": vm["name"], "imds": sb.imds_url(str(vm["id"]))}
            for key, vm in (outputs.get("vms") or {}).items()
        },
        "scale_sets": {
            key: {
                "name": ss["name"],
                "instances": {
                    i.name: {"id": i.id, "imds": sb.imds_url(i)}
                    for i in sb.state.instances(str(ss["id"]))
                },
            }
            for key, ss in (outputs.get("scale_sets") or {}).items()
        },
        "workloads": {},
        # Each app's environment: its identity endpoint and header, AZURE_CLIENT_ID, its
        # Key Vault references resolved as the platform resolves them, the CA bundle.
        "apps": app_environments(sb, outputs, backend.key_vault_reference_statuses),
    }
    for cluster_key, cluster in (outputs.get("clusters") or {}).items():
        for key in cluster.get("workloads") or {}:
            workload = sb.state.workload(key)
            if workload is None:
                continue
            pod = pod_environment(sb, workload, token_dir, lifetime_seconds=TOKEN_LIFETIME_RANGE[1])
            hosts["workloads"][key] = {
                "cluster": cluster_key,
                "namespace": workload.namespace,
                "service_account": workload.service_account,
                "env": pod.webhook,
                "token_file": str(pod.token_file) if pod.token_file else None,
                "imds": pod.imds,
                "ca_bundle": pod.ca_bundle,
            }
    return hosts


def _print_hosts(hosts: dict[str, Any]) -> None:
    for key, vm in hosts["vms"].items():
        print(f"  vm {key:<14} imds {vm['imds']}")
    for key, ss in hosts["scale_sets"].items():
        for name, instance in ss["instances"].items():
            print(f"  scaleset {key} {name:<24} imds {instance['imds']}")
    for key, w in hosts["workloads"].items():
        print(f"  workload {key} ({w['cluster']} {w['namespace']}/{w['service_account']})")
        for name, value in w["env"].items():
            print(f"    {name}={value}")
        if not w["env"]:
            print(f"    (no workload identity: IMDS on its node {w['imds']} is the kubelet's)")
    for key, app in hosts["apps"].items():
        print(f"  app {key} ({app['kind']} {app['name']})")
        for var, value in sorted(app["env"].items()):
            print(f"    export {var}={shlex.quote(value)}")


def _print_text(endpoints: dict[str, Any], sb: Sandbox) -> None:
    print("managed-identity-kit sandbox (loopback only)")
    for key in (
        "tenant_id",
        "subscription_id",
        "issuer",
        "authority_url",
        "arm_url",
        "graph_url",
        "ca_cert_path",
    ):
        print(f"  {key:<16} {endpoints[key]}")
    for vm in sb.state.vms():
        ids = [f"system oid={vm.system_principal_id}"] if vm.system_principal_id else []
        for uai_id in vm.user_assigned:
            uai = sb.state.identity(uai_id)
            if uai is not None:
                ids.append(f"{uai.name} client_id={uai.client_id}")
        print(f"  imds {vm.name:<11} {endpoints['imds'][vm.name]}  ({', '.join(ids)})")
    for name, url in endpoints["vaults"].items():
        print(f"  vault {name:<10} {url}")
    print("Be on a VM: export AZURE_POD_IDENTITY_AUTHORITY_HOST=<its imds URL>; trust the CA PEM.")
    print("Ctrl-C stops the sandbox.", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = SandboxConfig(
            host=args.host,
            arm_port=args.arm_port,
            issuer_port=args.issuer_port,
            faults_file=args.faults,
            token_lifetime_seconds=args.token_lifetime,
            propagation_delay_seconds=args.propagation_delay,
            deleted_principal_tokens=args.deleted_principal_tokens,
            workdir=args.workdir,
        )
        sb = Sandbox(config)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    previous = {}
    if threading.current_thread() is threading.main_thread():  # signals: main thread only
        previous = {
            s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)
        }
    try:
        with sb:
            if args.demo:
                seed_demo(sb)
            try:
                hosts = deploy_stack(sb, args.stack_file) if args.stack_file else None
            except ConfigError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
            endpoints = sb.endpoints()
            if hosts is not None:
                endpoints["hosts"] = hosts
            if args.json:
                print(json.dumps(endpoints, indent=2), flush=True)
            else:
                _print_text(endpoints, sb)
                if hosts is not None:
                    _print_hosts(hosts)
            while not stop.wait(0.5):
                pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("sandbox stopped", file=sys.stderr)
    return 0


if __name__ == "__main__":
    # The sandbox has stopped and its files are gone: end without the interpreter's
    # teardown of the SDK modules a --stack-file deploy loaded (3 s after Ctrl-C).
    fast_exit(main())
