"""The shared ARM model: ARM's JSON documents and the rules ARM enforces on writes.

One source for both places that answer like ARM: the Pulumi mock runtime (unit tests,
``components.testing``) and the local sandbox's one ARM model (``Sandbox.arm``) behind its
ARM front (``verify.sandbox``). A rule written here fires in both, so a program that breaks
it fails in a unit test and in the sandbox the way it would on the first real ``pulumi up``.
"""

from components.arm import rules, shapes
from components.arm.backend import ArmBackend
from components.arm.errors import ArmError
from components.arm.memory import InMemoryArm

__all__ = ["ArmBackend", "ArmError", "InMemoryArm", "rules", "shapes"]
