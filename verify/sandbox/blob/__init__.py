"""Blob Storage's data plane: one HTTPS listener per storage account.

``service`` checks the version and the token and routes each request to its operation;
``blobs`` and ``containers`` hold the operations (one class each, per resource, as
Azurite's handlers); ``access`` parses the request and applies RBAC and ABAC, with
``request_context`` building what a role-assignment condition sees of each data action;
``conditional`` evaluates the conditional headers and ``tag_filter`` the tag expressions
(Find Blobs by Tags' ``where``, ``x-ms-if-tags``); ``errors`` is the one factory for
Storage's XML error bodies (faults included) and ``wire`` holds the listing and tag
documents.
"""
