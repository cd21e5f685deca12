"""The sandbox's Entra ID: the token issuer, its token endpoint, and the operator's credentials."""
