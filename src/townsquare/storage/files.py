"""A stored object as a file on this machine, for libraries that read files (Pillow)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio

from townsquare.storage.base import Storage
from townsquare.storage.local import LocalStorage


@asynccontextmanager
async def local_file(storage: Storage, key: str) -> AsyncIterator[Path]:
    """The object's path: the file itself on the local backend, else a temporary copy
    streamed from the store (removed afterwards)."""
    if isinstance(storage, LocalStorage):
        yield storage.path(key)
        return
    handle, name = tempfile.mkstemp(prefix="townsquare-")
    os.close(handle)
    path = Path(name)
    try:
        stored = await storage.open(key)
        async with await anyio.open_file(path, "wb") as out:
            async for chunk in stored.chunks:
                await out.write(chunk)
        yield path
    finally:
        await anyio.Path(path).unlink(missing_ok=True)
