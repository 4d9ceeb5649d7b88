"""The HTTP answers of storage: signed links, ranges and sizes."""

from __future__ import annotations

from townsquare.errors import AppError, Forbidden, NotFound, PayloadTooLarge


class InvalidSignature(Forbidden):
    code = "invalid_signature"
    title = "Invalid or expired link"
    detail = "This link is not valid or has expired; ask for a new one."


class ObjectMissing(NotFound):
    code = "object_not_found"
    detail = "Nothing is stored under this link."


class RangeNotSatisfiable(AppError):
    status = 416
    code = "range_not_satisfiable"
    title = "Range not satisfiable"


class FileTooLarge(PayloadTooLarge):
    code = "file_too_large"
    title = "File too large"
    detail = "The file is larger than this upload allows."
