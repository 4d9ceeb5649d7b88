"""Browser tests: a real uvicorn server on loopback (in a thread of its own, with its own
event loop and database pool, in development mode so `/dev/mail` exists) driven by
Debian's Chromium through pytest-playwright."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import uvicorn
from sqlalchemy import delete

from tests.conftest import make_settings
from townsquare.db import Base, Database
from townsquare.main import create_app

CHROMIUM = "/usr/bin/chromium"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Browser tests run after every other test: Playwright's sync API holds an event loop
    running in the main thread from its first test to the end of the session, and no async
    test can run while it does."""
    in_browser = ["page" in getattr(item, "fixturenames", ()) for item in items]
    if any(in_browser):
        others = [item for item, browser in zip(items, in_browser, strict=True) if not browser]
        browser_tests = [item for item, browser in zip(items, in_browser, strict=True) if browser]
        items[:] = others + browser_tests


@dataclass
class ConsoleServer:
    url: str
    database: Database
    loop: asyncio.AbstractEventLoop

    def empty_tables(self) -> None:
        async def empty() -> None:
            async with self.database.engine.begin() as conn:
                for table in reversed(Base.metadata.sorted_tables):
                    await conn.execute(delete(table))

        asyncio.run_coroutine_threadsafe(empty(), self.loop).result(timeout=30)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"Debian's Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    # Root in a container: Chromium's own sandbox cannot start there.
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "headless": True,
        "args": ["--no-sandbox", "--disable-dev-shm-usage"],
    }


@pytest.fixture(scope="session")
def console_server() -> Iterator[ConsoleServer]:
    """One server for the browser tests. Its thread makes the tables it needs: the suite's
    async `engine` fixture cannot run while Playwright's sync API holds the main loop."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    # Every browser test signs up and in from 127.0.0.1 on this one server: the limits are
    # raised so the tests do not add up to them (test_forms.py shows them answered).
    settings = make_settings(
        ENV="development",
        PUBLIC_URL=url,
        EMAIL_BACKEND="console",
        RATE_LIMIT_LOGIN="1000/minute",
        RATE_LIMIT_REGISTER="1000/hour",
        RATE_LIMIT_VERIFY="1000/minute",
    )
    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    loop = asyncio.new_event_loop()

    async def run() -> None:
        tables = Database(settings)
        async with tables.engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        await tables.dispose()
        await server.serve(sockets=[listener])

    thread = threading.Thread(target=lambda: loop.run_until_complete(run()), daemon=True)
    thread.start()
    for _ in range(300):
        if server.started or not thread.is_alive():
            break
        threading.Event().wait(0.05)
    if not server.started:
        raise RuntimeError("the console server did not start")
    try:
        yield ConsoleServer(url, app.state.database, loop)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        listener.close()
        loop.close()


@pytest.fixture
def console(console_server: ConsoleServer) -> Iterator[ConsoleServer]:
    """The server, its tables emptied after the test."""
    try:
        yield console_server
    finally:
        console_server.empty_tables()
