"""Plain async factory functions that arrange rows for tests. They flush, never commit."""

from __future__ import annotations
