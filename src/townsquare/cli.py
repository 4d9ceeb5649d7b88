"""The `townsquare` command: serve, migrate, worker, admin, email."""

from __future__ import annotations

import typer

from townsquare.config import get_settings

app = typer.Typer(
    help="Townsquare: articles, events and support chat for organizations.", no_args_is_help=True
)


def _refuse_unsafe_production() -> None:
    settings = get_settings()
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

    _refuse_unsafe_production()
    settings = get_settings()
    uvicorn.run(
        "townsquare.main:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        proxy_headers=True,
        forwarded_allow_ips="127.0.0.1",
        access_log=False,
        log_level=settings.LOG_LEVEL.lower(),
    )


@app.command()
def migrate(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Upgrade the database schema (Alembic) to `revision`."""
    from townsquare.migrations import runner

    runner.upgrade(get_settings().DATABASE_URL, revision)
    typer.echo(f"database migrated to {revision}")
