"""Refusals of the media library."""

from __future__ import annotations

from townsquare.errors import AppError, Conflict, NotFound, PayloadTooLarge, UnprocessableEntity
from townsquare.storage.errors import FileTooLarge

__all__ = [
    "EmptyFile",
    "FileMissing",
    "FileTooLarge",
    "ImageTooLarge",
    "InvalidImage",
    "InvalidMultipart",
    "MediaInUse",
    "MediaNotFound",
    "QuotaExceeded",
    "UnsupportedFileType",
    "UploadNotFound",
]


class UnsupportedFileType(AppError):
    status = 415
    code = "unsupported_file_type"
    title = "Unsupported file type"
    detail = (
        "Accepted are JPEG, PNG, GIF, WebP, SVG, AVIF, PDF, MP4 and WebM files whose content, "
        "declared type and extension agree."
    )


class EmptyFile(UnprocessableEntity):
    code = "empty_file"
    title = "Empty file"
    detail = "The file has no content."


class ImageTooLarge(UnprocessableEntity):
    code = "image_too_large"
    title = "Image too large"
    detail = "The image has too many pixels to be processed safely."


class InvalidImage(UnprocessableEntity):
    code = "invalid_image"
    title = "Invalid image"
    detail = "The file looks like an image but does not decode as one."


class InvalidMultipart(UnprocessableEntity):
    code = "invalid_multipart"
    title = "Invalid upload"
    detail = "Send the file as multipart/form-data in a field named `file`."


class QuotaExceeded(PayloadTooLarge):
    code = "quota_exceeded"
    title = "Storage quota exceeded"
    detail = "The organization's media storage is full; delete files to make room."


class MediaNotFound(NotFound):
    code = "media_not_found"
    detail = "No such media item."


class UploadNotFound(NotFound):
    code = "upload_not_found"
    detail = "No such pending upload; it may have expired or been completed already."


class FileMissing(Conflict):
    code = "upload_incomplete"
    title = "Upload incomplete"
    detail = "Nothing was uploaded to the URL yet; PUT the file first, then complete."


class MediaInUse(Conflict):
    code = "media_in_use"
    title = "Media in use"
    detail = "Articles feature this file; choose another featured image for them first."
