"""Credentials that get their tokens straight from the sandbox's issuer.

The operator (the sandbox's deployer, Owner of the subscription) calls ARM with these,
the way a pipeline calls ARM with its service principal; managed identities never use
them (they go through IMDS). Both the sync and async azure-core protocols are offered,
``get_token`` and ``get_token_info``, so any azure-mgmt-* or Key Vault client takes them.
"""

from __future__ import annotations

from typing import Any

from azure.core.credentials import AccessToken, AccessTokenInfo

from verify.sandbox.entra.tokens import TokenIssuer
from verify.sandbox.state.store import ServicePrincipal


def _resource(scopes: tuple[str, ...]) -> str:
    if len(scopes) != 1:
        raise ValueError("the sandbox credential takes exactly one scope")
    scope = scopes[0]
    return scope[: -len("/.default")] if scope.endswith("/.default") else scope


class SandboxCredential:
    """A TokenCredential for one service principal of the sandbox tenant."""

    def __init__(self, issuer: TokenIssuer, principal: ServicePrincipal) -> None:
        self._issuer = issuer
        self.principal = principal

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        issued = self._issuer.issue(self.principal, _resource(scopes))
        return AccessToken(issued.token, issued.expires_on)

    def get_token_info(self, *scopes: str, options: Any = None) -> AccessTokenInfo:
        issued = self._issuer.issue(self.principal, _resource(scopes))
        return AccessTokenInfo(issued.token, issued.expires_on)

    def close(self) -> None:
        """Nothing to release; present for the azure-core credential protocol."""

    def __enter__(self) -> SandboxCredential:
        return self

    def __exit__(self, *args: object) -> None:
        self.close()


class AsyncSandboxCredential:
    """The asyncio flavour of :class:`SandboxCredential`."""

    def __init__(self, issuer: TokenIssuer, principal: ServicePrincipal) -> None:
        self._sync = SandboxCredential(issuer, principal)
        self.principal = principal

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return self._sync.get_token(*scopes, **kwargs)

    async def get_token_info(self, *scopes: str, options: Any = None) -> AccessTokenInfo:
        return self._sync.get_token_info(*scopes, options=options)

    async def close(self) -> None:
        """Nothing to release; present for the azure-core credential protocol."""

    async def __aenter__(self) -> AsyncSandboxCredential:
        return self

    async def __aexit__(self, *args: object) -> None:
        await self.close()
