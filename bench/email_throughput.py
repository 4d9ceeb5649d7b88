"""Email outbox throughput: how fast one worker drains a backlog of pending emails.

Run (from the repository root):

    .venv/bin/python bench/email_throughput.py --database sqlite
    .venv/bin/python bench/email_throughput.py --database postgres \
        --url postgresql+asyncpg://postgres@127.0.0.1:5432/ts_bench_email

It empties the database's tables (creating them from the models), writes `--count`
pending emails (default 2000), starts a local aiosmtpd server in its own process, runs one
worker in this process until the outbox is drained (the same code as `townsquare worker
--once`), checks that every email reached the server exactly once, and prints emails/s
and the worker's CPU time per email (the figure to compare on a busy machine).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from townsquare.config import Settings
from townsquare.db import Base, Database, transaction
from townsquare.email.enums import EmailStatus
from townsquare.email.models import OutboxEmail
from townsquare.email.service import enqueue_email
from townsquare.models import import_all_models
from townsquare.worker.registry import load_duties
from townsquare.worker.runner import Runner

DEFAULT_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/ts_bench_email"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _smtp_server(port: int, received: Any, unique: Any, ready: Any, stop: Any) -> None:
    """A minimal SMTP sink in its own process, counting messages and distinct Message-IDs."""
    import re

    from aiosmtpd.controller import Controller

    message_id = re.compile(rb"^Message-ID:\s*(\S+)", re.IGNORECASE | re.MULTILINE)
    seen: set[bytes] = set()

    class Counting:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            match = message_id.search(envelope.original_content or b"")
            received.value += 1
            if match and match.group(1) not in seen:
                seen.add(match.group(1))
                unique.value += 1
            return "250 2.0.0 Ok: queued"

    controller = Controller(Counting(), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    stop.wait()
    controller.stop()


async def _prepare(database: Database, count: int, settings: Settings) -> None:
    import_all_models()
    async with database.engine.begin() as conn:
        await conn.run_sync(Base.metadata.drop_all)
        await conn.run_sync(Base.metadata.create_all)
    chunk = 500
    for start in range(0, count, chunk):
        async with transaction(database) as session:
            for i in range(start, min(start + chunk, count)):
                await enqueue_email(
                    session,
                    to=f"user{i}@example.org",
                    template="test",
                    context={"sent_by": "the throughput benchmark"},
                    settings=settings,
                )


async def _count_sent(database: Database) -> int:
    async with transaction(database, write=False) as session:
        sent = await session.scalar(
            select(func.count())
            .select_from(OutboxEmail)
            .where(OutboxEmail.status == EmailStatus.sent)
        )
        return int(sent or 0)


async def _run(args: argparse.Namespace) -> int:
    if args.database == "sqlite":
        url = args.url or f"sqlite+aiosqlite:///{Path(tempfile.mkdtemp()) / 'bench.db'}"
    else:
        url = args.url or DEFAULT_POSTGRES_URL
    port = _free_port()
    settings = Settings(
        DATABASE_URL=url,
        EMAIL_BACKEND="smtp",
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=port,
        WORKER_BATCH_SIZE=args.batch_size,
        RUN_WORKER_IN_PROCESS=False,
        EMAIL_FROM="Townsquare <bench@townsquare.test>",
    )
    database = Database(settings)
    context = multiprocessing.get_context("spawn")
    received, unique = context.Value("i", 0), context.Value("i", 0)
    ready, stop = context.Event(), context.Event()
    server = context.Process(target=_smtp_server, args=(port, received, unique, ready, stop))
    try:
        await _prepare(database, args.count, settings)
        server.start()
        if not ready.wait(10):
            print("the SMTP server did not start", file=sys.stderr)
            return 1
        [deliver] = [d for d in load_duties() if d.name == "email.deliver"]
        runner = Runner(database, settings, duties=[deliver], worker_id="bench")
        started, cpu_started = time.perf_counter(), time.process_time()
        totals = await runner.run_once(drain=True)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        sent = await _count_sent(database)
    finally:
        stop.set()
        server.join(10)
        await database.dispose()

    backend = "PostgreSQL" if args.database == "postgres" else "SQLite"
    print(f"database        {backend}")
    print(f"emails          {args.count} (batch size {args.batch_size})")
    print(f"drained         {totals.get('email.deliver')} in {elapsed:.2f} s")
    print(f"marked sent     {sent}")
    print(f"server received {received.value} ({unique.value} distinct Message-IDs)")
    print(f"worker CPU      {cpu / args.count * 1000:.2f} ms per email")
    print(f"throughput      {args.count / elapsed:.0f} emails/s")
    ok = sent == args.count and received.value == unique.value == args.count
    if not ok:
        print("MISMATCH: not every email was delivered exactly once", file=sys.stderr)
    return 0 if ok else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument(
        "--url", help="database URL (default: a temp SQLite file, or ts_bench_email)"
    )
    parser.add_argument("--count", type=int, default=2000, help="pending emails to drain")
    parser.add_argument("--batch-size", type=int, default=50, help="WORKER_BATCH_SIZE")
    args = parser.parse_args()
    sys.exit(asyncio.run(_run(args)))


if __name__ == "__main__":
    main()
