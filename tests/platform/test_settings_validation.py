"""Every setting is checked when it is read; `serve`, `worker` and `migrate` refuse to
start with one line naming the setting and what is wrong, and no traceback."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from tests.platform.live_server import TOWNSQUARE, server_env
from townsquare import config
from townsquare.cli import app as cli
from townsquare.config import Settings
from townsquare.config_checks import setting_errors

BAD_SETTINGS = [
    ("RATE_LIMIT_LOGIN", "lots"),
    ("DEFAULT_TIMEZONE", "Mars/Base"),
    ("DEFAULT_MODULES", "cms,blog"),
    ("TRUSTED_PROXIES", "10.0.0.0/8, proxy.internal"),
    ("LOG_LEVEL", "chatty"),
    ("PUBLIC_URL", "town.example"),
    ("ALLOWED_ORIGINS", "https://app.example/path"),
    ("DATABASE_URL", "mysql://db/townsquare"),
    ("REDIS_URL", "localhost:6379"),
    ("INVITATION_URL", "{public_url}/invitations"),
    ("VERIFY_EMAIL_URL", "{public_url}/verify?token={tokn}"),
    ("SUPPORT_CONVERSATION_URL", "/o/{org_slug}/support/{conversation_id}"),
    ("SESSION_COOKIE_NAME", "my session"),
    ("SESSION_COOKIE_DOMAIN", "exa mple.org"),
    ("EMAIL_FROM", "Townsquare"),
    ("S3_ENDPOINT_URL", "minio:9000"),
    ("SMTP_PORT", "70000"),
    ("WORKER_BATCH_SIZE", "0"),
    ("DATABASE_POOL_SIZE", "0"),
    ("SESSION_IDLE_TIMEOUT_SECONDS", "0"),
    ("ARGON2_TIME_COST", "0"),
    ("EMAIL_RETENTION_DAYS", "0"),
    ("MAX_JSON_BODY_BYTES", "0"),
    ("LOG_FORMAT", "xml"),
]


def _errors(**values: object) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        Settings(_env_file=None, **values)  # type: ignore[arg-type]
    return setting_errors(caught.value)


class TestEachSetting:
    def test_defaults_are_valid(self) -> None:
        settings = Settings(_env_file=None)
        assert settings.DEFAULT_MODULES == ["cms", "events", "support"]
        assert settings.TRUSTED_PROXIES == []

    @pytest.mark.parametrize(("name", "value"), BAD_SETTINGS, ids=[n for n, _ in BAD_SETTINGS])
    def test_bad_value_refused_naming_the_setting(
        self, name: str, value: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv(f"TOWNSQUARE_{name}", value)
        with pytest.raises(ValidationError) as caught:
            Settings(_env_file=None)
        lines = setting_errors(caught.value)
        assert len(lines) == 1
        assert lines[0].startswith(f"TOWNSQUARE_{name}: ")

    def test_every_rate_limit_is_parsed(self) -> None:
        names = [
            name
            for name in Settings.model_fields
            if name.startswith("RATE_LIMIT_") and name != "RATE_LIMIT_ENABLED"
        ]
        assert len(names) >= 7
        for name in names:
            assert _errors(**{name: "lots"}) == [
                f"TOWNSQUARE_{name}: 'lots' is not a rate limit such as '10/minute' "
                "or '100 per hour'"
            ]
            Settings(_env_file=None, **{name: "3 per 10 minutes"})  # type: ignore[arg-type]

    def test_unknown_module_is_named_not_dropped(self) -> None:
        assert _errors(DEFAULT_MODULES=["cms", "blog"]) == [
            "TOWNSQUARE_DEFAULT_MODULES: unknown module 'blog' (known: cms, events, support)"
        ]

    def test_valid_lists_from_the_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("TOWNSQUARE_TRUSTED_PROXIES", "10.0.0.0/8, 192.0.2.7,fd00::/8")
        monkeypatch.setenv("TOWNSQUARE_DEFAULT_MODULES", "support, cms, support")
        monkeypatch.setenv("TOWNSQUARE_ALLOWED_ORIGINS", "https://app.example/")
        settings = Settings(_env_file=None)
        assert settings.TRUSTED_PROXIES == ["10.0.0.0/8", "192.0.2.7", "fd00::/8"]
        assert settings.DEFAULT_MODULES == ["support", "cms"]
        assert settings.ALLOWED_ORIGINS == ["https://app.example"]

    @pytest.mark.parametrize(
        ("values", "line"),
        [
            (
                {"STORAGE": "s3"},
                "TOWNSQUARE_S3_BUCKET: is required when TOWNSQUARE_STORAGE is s3",
            ),
            (
                {"SMTP_USERNAME": "mailer"},
                "TOWNSQUARE_SMTP_USERNAME, TOWNSQUARE_SMTP_PASSWORD: set both or neither",
            ),
            (
                {"CSRF_COOKIE_NAME": "townsquare_session"},
                "TOWNSQUARE_CSRF_COOKIE_NAME: must differ from TOWNSQUARE_SESSION_COOKIE_NAME",
            ),
            (
                {"EMAIL_RETRY_BASE_SECONDS": 60, "EMAIL_RETRY_MAX_SECONDS": 10},
                "TOWNSQUARE_EMAIL_RETRY_MAX_SECONDS: is shorter than "
                "TOWNSQUARE_EMAIL_RETRY_BASE_SECONDS",
            ),
        ],
    )
    def test_settings_that_disagree(self, values: dict[str, object], line: str) -> None:
        assert _errors(**values) == [line]


class TestCommandsRefuseToStart:
    @pytest.mark.parametrize("command", [["serve"], ["worker", "--once"], ["migrate"]])
    @pytest.mark.parametrize(
        ("name", "value"),
        [("RATE_LIMIT_LOGIN", "lots"), ("DEFAULT_TIMEZONE", "Mars/Base")],
    )
    def test_one_line_naming_the_setting(
        self, command: list[str], name: str, value: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv(f"TOWNSQUARE_{name}", value)
        config.get_settings.cache_clear()
        try:
            result = CliRunner().invoke(cli, command)
        finally:
            config.get_settings.cache_clear()
        assert result.exit_code == 2
        assert result.exception is None or isinstance(result.exception, SystemExit)
        lines = result.output.strip().splitlines()
        assert len(lines) == 1
        assert lines[0].startswith(f"refusing to start: invalid setting TOWNSQUARE_{name}: ")
        assert repr(value) in lines[0]

    def test_the_real_process_prints_one_line_and_no_traceback(self, tmp_path: Path) -> None:
        env = server_env(tmp_path, DEFAULT_MODULES="cms,blog")
        result = subprocess.run(
            [str(TOWNSQUARE), "serve", "--port", "1"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 2
        assert result.stdout == ""
        assert result.stderr.splitlines() == [
            "refusing to start: invalid setting TOWNSQUARE_DEFAULT_MODULES: "
            "unknown module 'blog' (known: cms, events, support)"
        ]


class TestMigrate:
    def test_unknown_revision_is_one_line(self, tmp_path: Path) -> None:
        result = subprocess.run(
            [str(TOWNSQUARE), "migrate", "nosuchrev"],
            env=server_env(tmp_path),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 1
        errors = [line for line in result.stderr.splitlines() if "INFO" not in line]
        assert errors == [
            "cannot migrate to 'nosuchrev': Can't locate revision identified by 'nosuchrev'"
        ]
        assert "Traceback" not in result.stdout + result.stderr

    def test_unreachable_database_is_one_line(self, tmp_path: Path) -> None:
        env = server_env(tmp_path)
        env["TOWNSQUARE_DATABASE_URL"] = "postgresql+asyncpg://nobody@127.0.0.1:9/none"
        result = subprocess.run(
            [str(TOWNSQUARE), "migrate"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 1
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1
        assert lines[0].startswith("cannot migrate: the database is unreachable (")
