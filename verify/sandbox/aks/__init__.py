"""AKS in the sandbox: each cluster's OIDC issuer and its workloads' projected tokens."""
