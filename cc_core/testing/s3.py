"""S3: moto's server in a thread (obstore speaks HTTP from Rust, so ``mock_aws`` cannot intercept it)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from ._process import HOST, require_module, tcp_open, wait_for

SERVICE = "s3"


@dataclass
class S3Server:
    """A running moto S3 endpoint; any bucket name works, buckets must be created first."""

    endpoint: str
    access_key: str = "test"
    secret_key: str = "test"  # noqa: S105 - moto accepts any credentials
    region: str = "us-east-1"
    _server: Any = field(default=None, repr=False, compare=False)

    def client(self) -> Any:
        """A boto3 S3 client for this endpoint (obstore cannot create or delete buckets)."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
        )

    def create_bucket(self, name: str) -> str:
        """Create a bucket and return its name."""
        self.client().create_bucket(Bucket=name)
        return name

    def delete_bucket(self, name: str) -> None:
        """Delete a bucket with everything in it."""
        client = self.client()
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
            keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
            if keys:
                client.delete_objects(Bucket=name, Delete={"Objects": keys})
        client.delete_bucket(Bucket=name)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """Start moto's ThreadedMotoServer on 127.0.0.1 with werkzeug's per-request logging silenced."""
    require_module(SERVICE, "moto", "moto[server]")
    require_module(SERVICE, "boto3", "boto3")
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address=HOST, port=0, verbose=False)  # port 0: no race for a port
    server.start()  # returns once the server socket is bound
    try:
        port = server.get_host_and_port()[1]
        endpoint = f"http://{HOST}:{port}"
        wait_for(lambda: tcp_open(port), timeout=20, what="moto S3 server")
        yield S3Server(endpoint=endpoint, _server=server)
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> Iterator[str]:
    """Name of a fresh, uniquely named, empty bucket; emptied and deleted after the test."""
    name = s3_server.create_bucket(f"test-{uuid.uuid4().hex[:20]}")
    yield name
    try:
        s3_server.delete_bucket(name)
    except Exception as exc:  # a test that deleted its bucket itself is fine
        logging.getLogger(__name__).debug("could not delete bucket %s: %s", name, exc)
