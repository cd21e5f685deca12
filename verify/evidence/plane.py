"""What a data plane states so the one judge can weigh its evidence (:class:`Plane`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from verify import probe
from verify.model import IdentityReport, StackOutputs, TargetReport, TokenReport


@dataclass(frozen=True)
class Plane:
    """One data plane's rules of evidence.

    * ``audiences``: the ``aud`` values its tokens may carry;
    * ``denial``: the (status, code) that alone proves "denied" (from the probe, the
      single source of the wire codes); ``denial_code`` picks the code that rule reads
      from an observation;
    * ``missing``: the 404 codes that prove the target does not exist;
    * ``fingerprints_field``: the stack output holding the expected fingerprints
      (:func:`verify.probe.fingerprint` of the value or content);
    * ``observations`` / ``token`` / ``claims``: where its results sit in the probe's report.
    """

    kind: str
    service: str
    audiences: tuple[str, ...]
    denial: tuple[int, str]
    missing: tuple[int, tuple[str, ...]]
    denial_code: Callable[[TargetReport], str | None]
    fingerprints_field: str
    #: What a read returns, for messages: "value" or "content".
    value_word: str
    #: How messages name this plane's token ("vault token", "storage token").
    bearer_label: str
    observations: Callable[[IdentityReport], Mapping[str, TargetReport]]
    token: Callable[[IdentityReport], TokenReport | None]
    claims: Callable[[IdentityReport], Mapping[str, Any] | None]

    @property
    def evidence(self) -> str:
        """The sentence an inconclusive cell ends with: what would have been evidence."""
        status, code = self.denial
        return (
            f"only a {self.value_word} read with the stack's fingerprint, or {self.service}'s "
            f"{status} {code}, is evidence"
        )

    def denial_proven(self, seen: TargetReport) -> bool:
        """Judged from the status and code, not only the probe's label, so an older probe
        on a host cannot turn a 401 or another 403 into a verdict."""
        return seen.outcome == "forbidden" and probe.denial_proven(
            seen.http_status, self.denial_code(seen), self.denial
        )

    def absence_proven(self, seen: TargetReport) -> bool:
        return seen.outcome == "not_found" and probe.absence_proven(
            seen.http_status, self.denial_code(seen), self.missing
        )

    def observed(self, seen: TargetReport) -> str:
        """The probe's label, unless the response behind it proves nothing."""
        if seen.outcome == "forbidden" and not self.denial_proven(seen):
            return "inconclusive"
        if seen.outcome == "not_found" and not self.absence_proven(seen):
            return "inconclusive"
        return seen.outcome

    def expected_fingerprints(self, outputs: StackOutputs) -> Mapping[str, str] | None:
        """The stack's fingerprints for this plane; None when the outputs hide them."""
        found = getattr(outputs, self.fingerprints_field)
        return None if found is None else dict(found)

    def hidden_fingerprints_fix(self) -> str:
        """How to get the fingerprints the outputs hid (or to accept unverified values)."""
        return (
            f"the stack outputs hide `{self.fingerprints_field}` (`[secret]`: outputs taken "
            f"without --show-secrets), so a {self.value_word} that was read cannot be compared "
            "with the stack's; pass `pulumi stack output --json --show-secrets` (--outputs FILE), "
            "or accept unverified values explicitly with --allow-unverified-values"
        )
