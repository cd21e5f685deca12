"""The sandbox's Key Vault data plane (secrets).

``service`` serves the vaults, ``bodies`` checks a set-secret body, ``secret_rules`` holds
Key Vault's limits on a secret (the state applies them too).
"""
