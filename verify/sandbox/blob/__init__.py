"""Blob Storage's data plane: one HTTPS listener per storage account.

``service`` routes each request to its operation and applies RBAC and ABAC, ``errors`` is
the one factory for Storage's XML error bodies (faults included), ``wire`` holds the
listing and tag documents, and ``request_context`` builds what a role-assignment
condition sees of each data action.
"""

from verify.sandbox.blob.errors import BlobError, fault_error_body
from verify.sandbox.blob.service import STORAGE_AUDIENCES, BlobService

__all__ = ["STORAGE_AUDIENCES", "BlobError", "BlobService", "fault_error_body"]
