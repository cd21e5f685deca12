"""The sandbox's Azure Resource Manager slice.

``service`` is the HTTP front, ``cli`` the extra endpoints the Azure CLI reads, and
``request_rules`` what ARM accepts in a request before any handler acts on it.
"""
