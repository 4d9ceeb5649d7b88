"""Objects waiting to be removed from storage.

Deleting a database row and deleting its stored object cannot be one transaction; so the
row's transaction records the key here, and the `storage.delete_objects` duty removes the
object afterwards — also when the process died in between.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from townsquare.db import Model

KEY_MAX = 300


class StorageDeletion(Model):
    __tablename__ = "storage_deletions"
    __table_args__ = (Index(None, "created_at"),)

    storage_key: Mapped[str] = mapped_column(String(KEY_MAX))
    not_before: Mapped[datetime | None] = mapped_column()
    """Not removed before this time: where an upload URL may still write (a PUT after the
    upload was completed or refused), the key is cleared once the URL has expired."""
