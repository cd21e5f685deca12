"""The record of one verifier run: the check, the lifecycle steps, and how long each took.

Kept apart from the code that produces it (check, lifecycle) and the code that renders it
(report), so a report writer never re-runs or re-judges anything: it only prints what
was observed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from verify.evidence.cells import CheckResult
from verify.model import StackOutputs


@dataclass
class Step:
    """One named action or observation of a scenario, with what it expected and saw."""

    name: str
    expected: str
    observed: str
    passed: bool
    seconds: float = 0.0
    details: list[str] = field(default_factory=list)


@dataclass
class ScenarioResult:
    name: str
    description: str
    steps: list[Step] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None
    #: What the planner chose for it to act on (see verify.lifecycle.planner).
    subjects: str | None = None
    #: Why the topology cannot run it, and what to add to the stack so it can.
    skipped: str | None = None
    fix: str | None = None

    @property
    def passed(self) -> bool:
        return self.error is None and bool(self.steps) and all(s.passed for s in self.steps)

    @property
    def status(self) -> str:
        """``passed``, ``failed`` or ``skipped`` (a skipped scenario did not pass)."""
        if self.skipped is not None:
            return "skipped"
        return "passed" if self.passed else "failed"


@dataclass
class RunReport:
    """Everything a report needs, for either ``check`` or ``lifecycle``."""

    command: str
    target: str
    stack: str
    started_at: str
    #: The stack file whose topology was verified (None: Azure outputs without a file).
    stack_file: str | None = None
    outputs: StackOutputs | None = None
    check: CheckResult | None = None
    scenarios: list[ScenarioResult] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    #: A skipped scenario fails the run only when every scenario was required.
    require_all_scenarios: bool = False
    #: The signal that stopped the run (SIGINT, SIGTERM), or None (verify.interrupt).
    interrupted: str | None = None

    def mark_interrupted(self, signal_name: str) -> None:
        """Stopped by a signal: the report says INTERRUPTED and shows what completed."""
        self.interrupted = signal_name
        self.error = (
            f"INTERRUPTED by {signal_name}: running probes were cancelled; only what "
            "completed before is reported"
        )

    @property
    def verdict(self) -> str:
        if self.interrupted is not None:
            return "INTERRUPTED"
        return "PASSED" if self.passed else "FAILED"

    @property
    def passed(self) -> bool:
        if self.error is not None:
            return False
        if self.check is None and not self.scenarios:
            return False
        check_ok = self.check is None or self.check.passed
        return check_ok and all(
            s.passed or (s.status == "skipped" and not self.require_all_scenarios)
            for s in self.scenarios
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; outputs carry IDs and fingerprints only, never a secret value."""
        return {
            "command": self.command,
            "target": self.target,
            "stack": self.stack,
            "stack_file": self.stack_file,
            "started_at": self.started_at,
            "passed": self.passed,
            "verdict": self.verdict,
            "interrupted": self.interrupted,
            "require_all_scenarios": self.require_all_scenarios,
            "error": self.error,
            "timings_seconds": {k: round(v, 3) for k, v in self.timings.items()},
            "check": self.check.to_dict() if self.check else None,
            "scenarios": [
                {**asdict(s), "passed": s.passed, "status": s.status}
                | {"steps": [asdict(step) for step in s.steps]}
                for s in self.scenarios
            ],
            "stack_outputs": (
                self.outputs.model_dump(mode="json", exclude={"secret_fingerprints"})
                if self.outputs
                else None
            ),
        }
