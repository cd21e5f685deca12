"""Blob Storage's data plane: one HTTPS listener per storage account.

``service`` routes each request to its operation and applies RBAC and ABAC, ``errors`` is
the one factory for Storage's XML error bodies (faults included), ``wire`` holds the
listing and tag documents, ``request_context`` builds what a role-assignment condition
sees of each data action, ``conditional`` evaluates the conditional headers and
``tag_filter`` parses and evaluates Find Blobs by Tags' where-expression.
"""
