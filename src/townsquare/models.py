"""Imports every domain's tables so that `Base.metadata` is complete (Alembic, tests)."""

from __future__ import annotations

import importlib

DOMAIN_MODEL_MODULES: tuple[str, ...] = (
    "townsquare.auth.models",
    "townsquare.email.models",
    "townsquare.orgs.models",
    "townsquare.cms.models",
    "townsquare.media.models",
    "townsquare.storage.models",
    "townsquare.support.models",
    "townsquare.events.models",
    "townsquare.events.calendar_tokens",
)


def import_all_models() -> None:
    for module in DOMAIN_MODEL_MODULES:
        importlib.import_module(module)
