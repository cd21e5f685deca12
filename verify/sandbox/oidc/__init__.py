"""The sandbox's stand-in for an external OIDC issuer (GitHub Actions)."""
