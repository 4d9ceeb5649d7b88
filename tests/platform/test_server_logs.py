"""With LOG_FORMAT=json every line `townsquare serve` writes is one JSON object: uvicorn's
own start-up, protocol-error and shutdown lines included, and its failure to bind."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path
from typing import Any

import httpx

from tests.platform.live_server import TOWNSQUARE, live_server, server_env


def _json_lines(lines: list[str]) -> list[dict[str, Any]]:
    records = []
    for line in lines:
        record = json.loads(line)  # a plain-text line fails here, naming itself
        assert isinstance(record, dict), line
        assert {"time", "level", "logger", "message"} <= record.keys(), line
        records.append(record)
    return records


def test_every_line_of_a_served_run_is_json(tmp_path: Path) -> None:
    with live_server(tmp_path, LOG_FORMAT="json") as server:
        assert httpx.get(f"{server.base_url}/healthz").status_code == 200
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as conn:
            conn.sendall(b"NOT HTTP AT ALL\r\n\r\n")
            conn.recv(1024)
    records = _json_lines(server.output_lines())
    uvicorn_messages = [r["message"] for r in records if r["logger"].startswith("uvicorn")]
    assert any(m.startswith("Uvicorn running on http://127.0.0.1:") for m in uvicorn_messages)
    assert "Application startup complete." in uvicorn_messages
    assert "Invalid HTTP request received." in uvicorn_messages
    assert any(m.startswith("Finished server process") for m in uvicorn_messages)
    # uvicorn's coloured copy of each message stays out of the JSON.
    assert not any("color_message" in r for r in records)


def test_failure_to_bind_is_json_too(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [str(TOWNSQUARE), "serve", "--port", str(port)],
            env=server_env(tmp_path, LOG_FORMAT="json"),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode != 0
    records = _json_lines((result.stdout + result.stderr).splitlines())
    errors = [r for r in records if r["level"] == "error" and r["logger"] == "uvicorn.error"]
    assert errors, records
    assert "address already in use" in errors[0]["message"].lower()
