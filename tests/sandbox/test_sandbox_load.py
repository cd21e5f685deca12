"""Load: 50 concurrent SecretClients reading for 10 s while writers add versions.

Asserts no error at all and no lost write: every version a writer was told it created
is readable with its value, and the vault holds exactly those versions. The duration is
``MIKIT_SANDBOX_LOAD_SECONDS`` (default 10, as the issue asks); figures are printed
(``pytest -s`` shows them).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time

from azure.identity.aio import ManagedIdentityCredential
from azure.keyvault.secrets.aio import SecretClient
from sandbox_world import OnVm, World

from verify.sandbox import Sandbox

READERS = 50
WRITERS = 5
DURATION = float(os.environ.get("MIKIT_SANDBOX_LOAD_SECONDS", "10"))


async def test_concurrent_readers_and_writers(sb: Sandbox, world: World, on_vm: OnVm) -> None:
    on_vm(world.vm_multi)
    writer = sb.state.create_principal("load-writer")
    sb.state.create_role_assignment(world.vault.id, "Key Vault Secrets Officer", writer.object_id)
    sb.state.set_secret(world.vault.name, "counter", "initial")
    errors: list[str] = []
    latencies: list[float] = []
    writes: list[tuple[str, str]] = []
    deadline = time.monotonic() + DURATION

    async def reader(i: int) -> int:
        names = sorted(world.values)
        done = 0
        async with (
            ManagedIdentityCredential(client_id=world.id_a.client_id) as credential,
            SecretClient(
                sb.vault_url(world.vault),
                credential,
                retry_total=0,
                **sb.async_keyvault_client_kwargs(),
            ) as client,
        ):
            while time.monotonic() < deadline:
                name = names[(i + done) % len(names)]
                started = time.perf_counter()
                try:
                    secret = await client.get_secret(name)
                    if secret.value != world.values[name]:
                        errors.append(f"reader {i}: wrong value for {name}")
                except Exception as exc:  # any error fails the test, with its reason
                    errors.append(f"reader {i}: {type(exc).__name__}: {exc}")
                latencies.append(time.perf_counter() - started)
                done += 1
        return done

    async def write(i: int) -> int:
        done = 0
        async with (
            sb.async_credential(writer) as credential,
            SecretClient(
                sb.vault_url(world.vault),
                credential,
                retry_total=0,
                **sb.async_keyvault_client_kwargs(),
            ) as client,
        ):
            while time.monotonic() < deadline:
                value = f"w{i}-{done}"
                try:
                    created = await client.set_secret("counter", value)
                    writes.append((created.properties.version or "", value))
                except Exception as exc:
                    errors.append(f"writer {i}: {type(exc).__name__}: {exc}")
                done += 1
        return done

    started = time.monotonic()
    counts = await asyncio.gather(
        *(reader(i) for i in range(READERS)), *(write(i) for i in range(WRITERS))
    )
    elapsed = time.monotonic() - started
    assert errors == [], errors[:5]
    reads = sum(counts[:READERS])
    assert all(c > 0 for c in counts), "every client made progress"

    # no lost write: each acknowledged version exists with its value, and nothing else does
    async with (
        sb.async_credential(writer) as credential,
        SecretClient(
            sb.vault_url(world.vault),
            credential,
            retry_total=0,
            **sb.async_keyvault_client_kwargs(),
        ) as client,
    ):
        stored = {p.version async for p in client.list_properties_of_secret_versions("counter")}
        for version, value in writes[:: max(1, len(writes) // 200)] + writes[-5:]:
            assert (await client.get_secret("counter", version)).value == value
    assert len({v for v, _ in writes}) == len(writes), "versions are unique"
    versions = sb.state.secret_versions(world.vault.name, "counter")
    assert stored == {s.version for s in versions}
    assert {s.version: s.value for s in versions[1:]} == dict(writes)
    latencies.sort()
    print(
        f"\nload: {READERS} readers + {WRITERS} writers for {elapsed:.1f} s: "
        f"{reads} reads ({reads / elapsed:.0f}/s), {len(writes)} writes, 0 errors; "
        f"read latency p50 {statistics.median(latencies) * 1000:.1f} ms, "
        f"p99 {latencies[int(len(latencies) * 0.99)] * 1000:.1f} ms"
    )
