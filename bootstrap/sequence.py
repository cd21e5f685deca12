"""The first-deployment sequence, named once so every message can point at its step.

A new administrator runs these in order; ``bootstrap.next_steps`` prints the exact commands
and ``bootstrap.preflight`` (the workflows' first step) says which one is missing. Both
refer to the steps by these titles, so the README, the generated commands and a failing CI
job all speak of "step 3" meaning the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SequenceStep:
    number: int
    key: str
    title: str
    who: str
    """Who runs it and the permission it uses: no step needs a permission nobody has."""

    def label(self) -> str:
        return f"step {self.number} ({self.title})"


BOOTSTRAP = SequenceStep(
    1,
    "bootstrap",
    "run the bootstrap",
    "an Owner (or Contributor + User Access Administrator) of the subscription: "
    "`pulumi up` in bootstrap/",
)
LOGIN = SequenceStep(
    2,
    "login",
    "log in to the state backend",
    "the configured administrator: Storage Blob Data Contributor on the state container "
    "(granted by step 1)",
)
STACK_INIT = SequenceStep(
    3,
    "stack-init",
    "create the stack with the Key Vault secrets provider",
    "the administrator: Blob Data Contributor (writes the stack) and Key Vault Crypto User on "
    "the secrets-provider key (wraps its data key), both from step 1",
)
SECRETS = SequenceStep(
    4,
    "secrets",
    "set each mikit:secret-* value",
    "the administrator: Key Vault Crypto User on the secrets-provider key",
)
COMMIT = SequenceStep(
    5,
    "commit",
    "commit the stack file",
    "anyone who may commit: the file holds only ciphertext",
)
ENABLE = SequenceStep(
    6,
    "enable-workflows",
    "set the repository variables and enable the workflows",
    "a repository admin (variables, environments, workflows)",
)

SEQUENCE: tuple[SequenceStep, ...] = (BOOTSTRAP, LOGIN, STACK_INIT, SECRETS, COMMIT, ENABLE)
