"""The S3 backend passes the archive contract against obstore's MemoryStore and a real S3 server (moto)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import msgspec
import obstore
import pytest
from cc_archive_s3.backend import S3Archive, S3ArchiveConfig, store_options
from obstore.exceptions import PermissionDeniedError
from obstore.store import MemoryStore

from cc_core.archive.errors import ArchiveAccessError
from cc_core.testing.archive_contract import ArchiveBackendContract, async_test, make_data, make_job


class _FailingWrites:
    @contextlib.contextmanager
    def failing_writes(self, backend: S3Archive, after: int) -> Iterator[None]:
        real = backend._write
        count = 0

        async def write(key: str, data: bytes) -> None:
            nonlocal count
            if count >= after:
                raise ArchiveAccessError(backend._display(key), "S3 request failed: injected")
            count += 1
            await real(key, data)

        backend._write = write  # type: ignore[method-assign]
        try:
            yield
        finally:
            del backend._write


class TestS3ArchiveMemory(_FailingWrites, ArchiveBackendContract):
    @pytest.fixture
    def backend(self) -> S3Archive:
        return S3Archive(S3ArchiveConfig(bucket="mem"), store=MemoryStore())

    @async_test
    async def test_permission_error_names_the_object(self, backend: S3Archive, monkeypatch: Any) -> None:
        await backend.init()
        job = make_job()
        await backend.import_job(job, make_data())

        async def denied(*args: Any, **kwargs: Any) -> Any:
            raise PermissionDeniedError("Access Denied\nDebug source: …")

        monkeypatch.setattr(obstore, "get_async", denied)
        with pytest.raises(ArchiveAccessError) as e:
            await backend.load_job_meta(job)
        assert str(e.value) == (
            "s3://mem/testcluster/1/234/1700000000/meta.json: permission denied: Access Denied"
        )
        found = [j async for j in backend.iter_jobs()]
        assert found[0].error is not None and "permission denied" in found[0].error


@pytest.mark.service("s3")
class TestS3ArchiveMoto(_FailingWrites, ArchiveBackendContract):
    """Against moto's S3 server over HTTP, path-style, credentials from the config."""

    @pytest.fixture
    def backend(self, s3_server: Any, s3_bucket: str) -> S3Archive:
        cfg = msgspec.convert(
            {
                "bucket": s3_bucket,
                "endpoint": s3_server.endpoint,
                "access-key": s3_server.access_key,
                "secret-key": s3_server.secret_key,
                "region": s3_server.region,
                "use-path-style": True,
            },
            S3ArchiveConfig,
        )
        return S3Archive(cfg)

    @async_test
    async def test_objects_have_upstream_keys(
        self, backend: S3Archive, s3_server: Any, s3_bucket: str
    ) -> None:
        await backend.init()
        await backend.import_job(make_job(job_id=1403244, start_time=1608923076), make_data())
        keys = sorted(o["Key"] for o in s3_server.client().list_objects_v2(Bucket=s3_bucket)["Contents"])
        assert keys == [
            "testcluster/1403/244/1608923076/data.json.gz",
            "testcluster/1403/244/1608923076/meta.json",
            "version.txt",
        ]

    @async_test
    async def test_missing_bucket_is_a_clear_error(self, s3_server: Any) -> None:
        cfg = S3ArchiveConfig(
            bucket="no-such-bucket-here",
            endpoint=s3_server.endpoint,
            access_key=s3_server.access_key,
            secret_key=s3_server.secret_key,
            use_path_style=True,
        )
        with pytest.raises(ArchiveAccessError) as e:
            await S3Archive(cfg).init()
        assert str(e.value).startswith("s3://no-such-bucket-here: cannot access the bucket:")


# ------------------------------------------------------------------------------------------ config


def test_config_accepts_upstream_and_camel_case_keys() -> None:
    kebab = msgspec.convert(
        {
            "bucket": "b",
            "endpoint": "http://h:9000",
            "access-key": "k",
            "secret-key": "s",
            "use-path-style": True,
        },
        S3ArchiveConfig,
    )
    camel = msgspec.convert(
        {
            "bucket": "b",
            "endpoint": "http://h:9000",
            "accessKey": "k",
            "secretKey": "s",
            "usePathStyle": True,
        },
        S3ArchiveConfig,
    )
    for cfg in (kebab, camel):
        assert (cfg.access_key, cfg.secret_key, cfg.use_path_style) == ("k", "s", True)
    assert "s'" not in repr(kebab) and "secret" not in repr(kebab)


def test_config_errors() -> None:
    with pytest.raises(msgspec.ValidationError, match="bucket"):
        msgspec.convert({}, S3ArchiveConfig)
    with pytest.raises(msgspec.ValidationError, match="both"):
        msgspec.convert({"bucket": "b", "access-key": "k"}, S3ArchiveConfig)
    with pytest.raises(msgspec.ValidationError, match="unknown field"):
        msgspec.convert({"bucket": "b", "path": "/x"}, S3ArchiveConfig)
    with pytest.raises(msgspec.ValidationError, match="http"):
        msgspec.convert({"bucket": "b", "endpoint": "s3.example.com"}, S3ArchiveConfig)


def test_path_style_and_virtual_hosted_requests() -> None:
    path = store_options(S3ArchiveConfig(bucket="jobs", endpoint="http://minio:9000", use_path_style=True))
    assert path["endpoint"] == "http://minio:9000"
    assert path["virtual_hosted_style_request"] is False
    assert path["client_options"] == {"allow_http": True}
    assert path["region"] == "us-east-1"

    virt = store_options(S3ArchiveConfig(bucket="jobs", endpoint="https://s3.example.com/", region="eu-1"))
    assert virt["endpoint"] == "https://jobs.s3.example.com"
    assert virt["virtual_hosted_style_request"] is True
    assert virt["client_options"] == {"allow_http": False}
    assert virt["region"] == "eu-1"

    aws = store_options(S3ArchiveConfig(bucket="jobs"))  # AWS itself: obstore builds the URL
    assert "endpoint" not in aws and aws["virtual_hosted_style_request"] is True
    assert "access_key_id" not in aws  # environment credentials, as upstream's default chain


def test_config_from_core_config_with_env_secrets(tmp_path: Any) -> None:
    from cc_core.config import load_config
    from cc_core.plugins import make_plugin_manager

    f = tmp_path / "config.json"
    f.write_text(
        '{"archive": {"kind": "s3", "bucket": "jobarchive", "endpoint": "http://127.0.0.1:9000",'
        ' "access-key": {"$env": "S3_KEY"}, "secret-key": {"$env": "S3_SECRET"}, "usePathStyle": true,'
        ' "compression": 7}}'
    )
    cfg = load_config(f, environ={"S3_KEY": "AK", "S3_SECRET": "SK"})
    cfg.validate_plugins(make_plugin_manager())
    section = cfg.plugin_configs["$.archive"]
    assert isinstance(section, S3ArchiveConfig)
    assert (section.access_key, section.secret_key, section.use_path_style) == ("AK", "SK", True)
    assert make_plugin_manager().resolve("archive", "s3") is S3Archive


def test_plugin_module_is_cheap_to_import() -> None:
    import subprocess
    import sys

    code = "import sys, cc_archive_s3; assert 'obstore' not in sys.modules and 'numpy' not in sys.modules; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"
