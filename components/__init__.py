"""managed-identity-kit: Pulumi components that give Azure workloads identities, not secrets."""
