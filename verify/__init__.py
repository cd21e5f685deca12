"""Verifier: proves from inside each VM that identities read exactly the secrets granted to them."""
