"""The one-time CI bootstrap: a second, small Pulumi program an administrator runs once.

It creates what the CI pipeline needs so that no secret is stored anywhere: the deployer
identity that GitHub Actions signs in as through OIDC, its narrowly scoped roles, the
Azure Blob state backend and the Key Vault key for Pulumi's secrets provider.
"""
