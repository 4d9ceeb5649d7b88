"""The console's pages, at `/` beside the API: added after every API route, so the API
keeps precedence, with the static files under `/static`."""

from __future__ import annotations

from fastapi import FastAPI

from townsquare.web import account_pages, dev_mail, my_account_pages, org_pages
from townsquare.web.static import STATIC_DIR, CachedStaticFiles


def add_console(app: FastAPI) -> None:
    app.include_router(account_pages.router)
    app.include_router(my_account_pages.router)
    app.include_router(org_pages.router)
    app.include_router(dev_mail.router)
    app.mount("/static", CachedStaticFiles(directory=STATIC_DIR), name="static")
