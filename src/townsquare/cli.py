"""The `townsquare` command: serve, migrate, worker, admin, email."""

from __future__ import annotations

import typer
from pydantic import ValidationError

from townsquare.config import Settings, get_settings
from townsquare.config_checks import setting_errors

app = typer.Typer(
    help="Townsquare: articles, events and support chat for organizations.", no_args_is_help=True
)


def _settings() -> Settings:
    """The settings, or exit 2 with one line per invalid setting (and no traceback)."""
    try:
        return get_settings()
    except ValidationError as exc:
        for line in setting_errors(exc):
            typer.echo(f"refusing to start: invalid setting {line}", err=True)
        raise typer.Exit(code=2) from None


def _refuse_unsafe_production() -> None:
    settings = _settings()
    if not settings.is_production:
        return
    problems = settings.production_problems()
    if problems:
        for problem in problems:
            typer.echo(f"refusing to start in production: {problem}", err=True)
        raise typer.Exit(code=2)


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to bind."),
    port: int = typer.Option(8000, help="Port to bind."),
    workers: int = typer.Option(1, min=1, help="Number of server processes."),
) -> None:
    """Serve the API (and, unless RUN_WORKER_IN_PROCESS is off, the background worker)."""
    import uvicorn

    from townsquare.logs import uvicorn_log_config

    _refuse_unsafe_production()
    settings = _settings()
    uvicorn.run(
        "townsquare.main:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        # The app reads X-Forwarded-* itself, from TRUSTED_PROXIES only (proxies.py).
        proxy_headers=False,
        access_log=False,
        log_config=uvicorn_log_config(json_lines=settings.json_logs, level=settings.LOG_LEVEL),
        log_level=settings.LOG_LEVEL.lower(),
        # Live-event frames from clients are small (typing, pong); refuse big ones early.
        ws_max_size=64 * 1024,
    )


@app.command()
def worker(
    once: bool = typer.Option(
        False, "--once", help="Sweep every duty until it has nothing left to do, then exit."
    ),
) -> None:
    """Run the background duties (email delivery, scheduled publishing, cleanups)."""
    import asyncio

    from townsquare.logs import configure_logging
    from townsquare.worker.runner import run_standalone

    settings = _settings()
    configure_logging(json_lines=settings.json_logs, level=settings.LOG_LEVEL)
    raise typer.Exit(code=asyncio.run(run_standalone(settings, once=once)))


email_app = typer.Typer(help="Email delivery.", no_args_is_help=True)
app.add_typer(email_app, name="email")


@email_app.command("send-test")
def email_send_test(
    address: str = typer.Argument(..., help="Recipient of the test email."),
    queue_only: bool = typer.Option(
        False, "--queue-only", help="Only add it to the outbox; the worker delivers it."
    ),
) -> None:
    """Send the `test` email to ADDRESS through the configured backend, right away."""
    import asyncio

    from townsquare.email.commands import send_test
    from townsquare.email.service import InvalidEmailAddress

    try:
        result = asyncio.run(send_test(_settings(), address, deliver=not queue_only))
    except InvalidEmailAddress as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from exc
    typer.echo(f"{result.status.value}: {result.message_id}")
    if result.provider_message_id:
        typer.echo(f"provider message id: {result.provider_message_id}")
    if result.last_error:
        typer.echo(f"error: {result.last_error}", err=True)
    if result.status == "failed" or (not queue_only and result.status != "sent"):
        raise typer.Exit(code=1)


admin_app = typer.Typer(help="Staff administration.", no_args_is_help=True)
app.add_typer(admin_app, name="admin")


def _set_staff(email: str, is_staff: bool) -> None:
    import asyncio

    from townsquare.auth.commands import NoSuchAccount, set_staff

    try:
        stored = asyncio.run(set_staff(_settings(), email, is_staff))
    except NoSuchAccount:
        typer.echo(f"no account has the email address {email}", err=True)
        raise typer.Exit(code=1) from None
    typer.echo(f"{stored} is {'now' if is_staff else 'no longer'} staff")


@admin_app.command("promote")
def admin_promote(email: str = typer.Argument(..., help="Email of the account.")) -> None:
    """Make the account with EMAIL staff (the only way to make the first staff user)."""
    _set_staff(email, True)


@admin_app.command("demote")
def admin_demote(email: str = typer.Argument(..., help="Email of the account.")) -> None:
    """Take staff rights away from the account with EMAIL."""
    _set_staff(email, False)


@app.command()
def migrate(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Upgrade the database schema (Alembic) to `revision`."""
    from alembic.util import CommandError
    from sqlalchemy.exc import DBAPIError

    from townsquare.migrations import runner

    database_url = _settings().DATABASE_URL
    try:
        runner.upgrade(database_url, revision)
    except CommandError as exc:
        typer.echo(f"cannot migrate to {revision!r}: {exc}", err=True)
        raise typer.Exit(code=1) from None
    except (DBAPIError, OSError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        typer.echo(f"cannot migrate: the database is unreachable ({reason})", err=True)
        raise typer.Exit(code=1) from None
    typer.echo(f"database migrated to {revision}")
