"""Where the verifier runs its checks: the local sandbox or a real Azure subscription.

Both implement :class:`verify.targets.base.Target`, so ``check`` and every lifecycle
scenario are one piece of code that does not know which it is talking to.
"""
