"""The check: the stack's access matrix as expectations, probed and judged once per run.

Both directions count: a grant that does not work fails, and so does access nobody
granted (the rules are :mod:`verify.evidence`'s). The matrix is derived from the grants
ONCE per run (:func:`verify.model.derive_matrix`) and that derivation is passed along: to
:func:`matrix_consistency`, which compares it with the matrix the stack exported, and,
in the lifecycle, to :func:`expectations_from`, which turns cells into expectations.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from verify.evidence.cells import Expectation
from verify.model import AccessCell, StackOutputs


def expectations_from(
    outputs: StackOutputs, cells: Iterable[AccessCell] | None = None
) -> list[Expectation]:
    """The matrix cells as expectations: ``cells`` (a derivation of the grants as they are
    now), or the stack's exported matrix. Cells of hosts or identities the outputs no
    longer hold are left out (:data:`verify.model.HOST_OUTPUTS` says where each host kind
    is listed)."""
    found: list[Expectation] = []
    for cell in outputs.access_matrix if cells is None else cells:
        if outputs.host_record(cell.host_kind, cell.host) is None:
            continue
        if cell.identity not in ("system", "kubelet") and cell.identity not in outputs.identities:
            continue
        found.append(
            Expectation(
                host=cell.host,
                identity=cell.identity,
                selector=outputs.identity_selector(cell.identity),
                principal_id=cell.principal_id,
                target=cell.target,
                expected=cell.expected,
                resource_id=outputs.resource_id_of(cell.host, cell.identity, cell.host_kind),
                kind=cell.kind,
                host_kind=cell.host_kind,
            )
        )
    return found


def matrix_consistency(outputs: StackOutputs, derived: Sequence[AccessCell]) -> list[str]:
    """Disagreements between the exported matrix and ``derived``, the one the grants imply.

    The matrix is exported for readers; the grants are what ARM holds. If they differ
    the stack program has a bug and the check would be testing the wrong thing.
    """
    exported = {_row(c): c.expected for c in outputs.access_matrix}
    implied = {_row(c): c.expected for c in derived}
    problems = []
    for key in sorted(set(exported) | set(implied)):
        if exported.get(key) != implied.get(key):
            host_kind, host, identity, kind, target = key
            problems.append(
                f"access_matrix says {exported.get(key) or 'nothing'} for {host_kind} {host!r} "
                f"identity {identity!r} {kind} {target!r}, the grants imply "
                f"{implied.get(key) or 'nothing'}"
            )
    return problems


def _row(cell: AccessCell) -> tuple[str, str, str, str, str]:
    return (cell.host_kind, cell.host, cell.identity, cell.kind, cell.target)
