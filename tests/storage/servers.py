"""moto's S3 in server mode, in its own process: a real HTTP endpoint the app's S3 backend
and the tests' presigned PUTs talk to, whose memory is not the test process's."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiobotocore.session import get_session

REGION = "us-east-1"
ACCESS_KEY_ID = "testing"
SECRET_ACCESS_KEY = "testing-secret-key"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class S3Server:
    def __init__(self) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> S3Server:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/moto-api/", timeout=1) as answer:
                    answer.read()
                return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if self._process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto's S3 server did not start") from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None

    @asynccontextmanager
    async def client(self) -> AsyncIterator[Any]:
        async with get_session().create_client(
            "s3",
            region_name=REGION,
            endpoint_url=self.url,
            aws_access_key_id=ACCESS_KEY_ID,
            aws_secret_access_key=SECRET_ACCESS_KEY,
        ) as client:
            yield client

    async def new_bucket(self) -> str:
        name = f"townsquare-{uuid.uuid4().hex[:16]}"
        async with self.client() as client:
            await client.create_bucket(Bucket=name)
        return name

    async def keys(self, bucket: str) -> list[str]:
        """Every object in the bucket, and every multipart upload still open in it."""
        async with self.client() as client:
            listed = await client.list_objects_v2(Bucket=bucket)
            uploads = await client.list_multipart_uploads(Bucket=bucket)
        objects = [str(item["Key"]) for item in listed.get("Contents", [])]
        return sorted(objects + [f"(upload) {u['Key']}" for u in uploads.get("Uploads", [])])

    async def put(self, bucket: str, key: str, data: bytes, content_type: str) -> None:
        async with self.client() as client:
            await client.put_object(Bucket=bucket, Key=key, Body=data, ContentType=content_type)

    def settings(self, bucket: str) -> dict[str, object]:
        return {
            "STORAGE": "s3",
            "S3_BUCKET": bucket,
            "S3_REGION": REGION,
            "S3_ENDPOINT_URL": self.url,
            "S3_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "S3_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
        }


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    server = S3Server().start()
    try:
        yield server
    finally:
        server.stop()
