"""Settings and the production safety check."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from townsquare import config
from townsquare.cli import app as cli
from townsquare.config import DEVELOPMENT_SECRET_KEY, Settings


class TestSettings:
    def test_comma_separated_lists(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("TOWNSQUARE_ALLOWED_ORIGINS", "https://a.example, https://b.example")
        monkeypatch.setenv("TOWNSQUARE_DEFAULT_MODULES", "cms,events")
        settings = Settings()
        assert settings.ALLOWED_ORIGINS == ["https://a.example", "https://b.example"]
        assert settings.DEFAULT_MODULES == ["cms", "events"]

    def test_default_database_is_embedded_sqlite(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("TOWNSQUARE_DATABASE_URL", raising=False)
        assert Settings(_env_file=None).DATABASE_URL.startswith("sqlite+aiosqlite:///")


class TestProductionRefusal:
    def test_serve_refuses_development_secret(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("TOWNSQUARE_ENV", "production")
        monkeypatch.setenv("TOWNSQUARE_SECRET_KEY", DEVELOPMENT_SECRET_KEY)
        config.get_settings.cache_clear()
        try:
            result = CliRunner().invoke(cli, ["serve"])
        finally:
            config.get_settings.cache_clear()
        assert result.exit_code == 2
        assert "TOWNSQUARE_SECRET_KEY" in result.output

    def test_insecure_cookie_named(self) -> None:
        settings = Settings(ENV="production", SECRET_KEY="x" * 40, SESSION_COOKIE_SECURE=False)
        problems = settings.production_problems()
        assert len(problems) == 1
        assert "TOWNSQUARE_SESSION_COOKIE_SECURE" in problems[0]

    def test_strong_secret_passes(self) -> None:
        assert Settings(ENV="production", SECRET_KEY="k" * 48).production_problems() == []
