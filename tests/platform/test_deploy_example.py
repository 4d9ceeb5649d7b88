"""The production example under deploy/: its environment file names only real settings,
covers every setting (and every one the scale-out harness sets), and passes the checks
`serve` makes before starting; the nginx site and systemd units carry what running
behind a proxy needs."""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

import pytest
from dotenv import dotenv_values

from tests.email.servers import SmtpServer
from tests.scaleout.conftest import _environment
from tests.storage.servers import S3Server
from townsquare.config import Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
ENV_EXAMPLE = DEPLOY / "townsquare.env.example"
NGINX = DEPLOY / "nginx" / "townsquare.conf"
SERVE_UNIT = DEPLOY / "systemd" / "townsquare-serve@.service"
WORKER_UNIT = DEPLOY / "systemd" / "townsquare-worker@.service"

ACTIVE = re.compile(r"^TOWNSQUARE_(\w+)=", re.MULTILINE)
COMMENTED = re.compile(r"^# TOWNSQUARE_(\w+)=(.*)$", re.MULTILINE)
PLACEHOLDER = re.compile(r"@[A-Z][A-Z0-9_]*@")


def _example() -> str:
    return ENV_EXAMPLE.read_text()


def _filled(text: str) -> str:
    return PLACEHOLDER.sub(lambda _: secrets.token_urlsafe(36), text)


def _load(path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The settings a process started with only this file's variables would read."""
    for name in list(os.environ):
        if name.upper().startswith("TOWNSQUARE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(path.parent)  # no stray .env of the working directory
    return Settings(_env_file=path)


def test_the_example_names_every_setting_and_only_real_ones() -> None:
    text = _example()
    active = ACTIVE.findall(text)
    shown = active + [name for name, _ in COMMENTED.findall(text)]
    fields = set(Settings.model_fields)
    assert sorted(set(shown) - fields) == []
    assert sorted(fields - set(shown)) == []
    assert len(shown) == len(set(shown)), "a setting appears twice"
    # Every line that is not a comment or blank is a setting.
    others = [
        line for line in text.splitlines() if line and not line.startswith(("#", "TOWNSQUARE_"))
    ]
    assert others == []


def test_every_setting_the_scaleout_harness_sets_is_set_in_the_example() -> None:
    env = _environment(
        "postgresql+asyncpg://postgres@127.0.0.1:5432/x", SmtpServer(port=2525), S3Server(), "b"
    )
    harness = {name.removeprefix("TOWNSQUARE_") for name in env if name.startswith("TOWNSQUARE_")}
    assert len(harness) > 10
    active = set(ACTIVE.findall(_example()))
    # S3_ENDPOINT_URL points the harness at its moto server; the example shows it for MinIO.
    assert sorted(harness - active - {"S3_ENDPOINT_URL"}) == []
    assert "S3_ENDPOINT_URL" in dict(COMMENTED.findall(_example()))
    example = dotenv_values(ENV_EXAMPLE)
    for name in ("ENV", "RUN_WORKER_IN_PROCESS", "STORAGE", "EMAIL_BACKEND"):
        assert example[f"TOWNSQUARE_{name}"] == env[f"TOWNSQUARE_{name}"], name


def test_the_filled_in_example_passes_the_production_checks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = _example()
    assert PLACEHOLDER.search(text), "secrets are placeholders"
    path = tmp_path / "townsquare.env"
    path.write_text(_filled(text))
    settings = _load(path, monkeypatch)
    assert settings.is_production
    assert settings.production_problems() == []
    assert settings.RUN_WORKER_IN_PROCESS is False
    assert settings.TRUSTED_PROXIES == ["127.0.0.1"]
    assert settings.DATABASE_URL.startswith("postgresql+asyncpg://townsquare:")
    assert settings.REDIS_URL is not None
    assert settings.STORAGE == "s3"
    assert settings.S3_BUCKET
    assert settings.EMAIL_FROM == "Townsquare <no-reply@example.org>"
    assert settings.cookie_secure
    assert settings.json_logs


def test_the_example_with_its_placeholders_left_in_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A copy deployed without filling in the secret key does not start in production."""
    path = tmp_path / "townsquare.env"
    path.write_text(_example())
    problems = _load(path, monkeypatch).production_problems()
    assert [p for p in problems if p.startswith("TOWNSQUARE_SECRET_KEY")]


def test_every_value_the_example_shows_commented_out_is_valid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uncommented = re.sub(r"^# (TOWNSQUARE_\w+=.+)$", r"\1", _filled(_example()), flags=re.M)
    path = tmp_path / "townsquare.env"
    path.write_text(uncommented)
    settings = _load(path, monkeypatch)
    assert settings.S3_ENDPOINT_URL == "http://minio.internal:9000"
    assert settings.production_problems() == []


def test_nginx_terminates_tls_upgrades_the_socket_and_forwards_the_client() -> None:
    conf = NGINX.read_text()
    assert re.search(r"listen 443 ssl", conf)
    assert "ssl_certificate " in conf
    upstream = re.search(r"upstream townsquare \{(.*?)\}", conf, re.S)
    assert upstream
    assert len(re.findall(r"server 127\.0\.0\.1:\d+", upstream.group(1))) >= 2
    ws = re.search(r"location = /api/v1/ws \{(.*?)\}", conf, re.S)
    assert ws, "a location for the live socket"
    block = ws.group(1)
    assert "proxy_set_header Upgrade $http_upgrade;" in block
    assert "proxy_set_header Connection $connection_upgrade;" in block
    assert "map $http_upgrade $connection_upgrade" in conf
    # nginx drops server-level proxy_set_header in a location that sets its own.
    for needed in (
        "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "proxy_set_header X-Forwarded-Proto $scheme;",
    ):
        assert needed in block
        assert conf.count(needed) == 2
    timeout = re.search(r"proxy_read_timeout (\d+)s;", block)
    assert timeout
    assert int(timeout.group(1)) > 10 * Settings().WS_HEARTBEAT_SECONDS
    body = re.search(r"client_max_body_size (\d+)m;", conf)
    assert body
    limit = int(body.group(1)) * 1024 * 1024
    defaults = Settings()
    assert limit >= defaults.MEDIA_MAX_BYTES >= defaults.SUPPORT_ATTACHMENT_MAX_BYTES
    assert limit <= defaults.MEDIA_MAX_BYTES + 2 * 1024 * 1024
    static = re.search(r"location /static/ \{(.*?)\}", conf, re.S)
    assert static
    assert "proxy_cache " in static.group(1)


@pytest.mark.parametrize("unit", [SERVE_UNIT, WORKER_UNIT], ids=lambda p: p.name)
def test_systemd_units_read_the_env_file_restart_and_run_hardened(unit: Path) -> None:
    text = unit.read_text()
    directives = dict(
        line.split("=", 1) for line in text.splitlines() if re.match(r"^[A-Z]\w*=", line)
    )
    assert directives["EnvironmentFile"] == "/etc/townsquare/townsquare.env"
    assert directives["User"] not in ("", "root")
    assert directives["Restart"] == "on-failure"
    assert directives["NoNewPrivileges"] == "true"
    assert directives["ProtectSystem"] == "strict"
    assert directives["PrivateTmp"] == "true"
    # With ProtectSystem=strict the state directory (MEDIA_DIR with local storage) is
    # the writable place.
    assert directives["StateDirectory"] == "townsquare"
    assert "ExecStartPre" not in directives
    assert "migrate" not in directives["ExecStart"]


def test_serve_unit_is_one_process_per_port_and_worker_unit_runs_the_worker() -> None:
    serve = SERVE_UNIT.read_text()
    assert re.search(r"^ExecStart=\S+/townsquare serve .*--port %i --workers 1$", serve, re.M)
    assert "--host 127.0.0.1" in serve
    worker = WORKER_UNIT.read_text()
    assert re.search(r"^ExecStart=\S+/townsquare worker$", worker, re.M)
    ports = re.findall(r"server 127\.0\.0\.1:(\d+)", NGINX.read_text())
    assert all(f"townsquare-serve@{port}" in serve for port in ports)
