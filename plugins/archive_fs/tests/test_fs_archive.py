"""The file backend passes the archive contract; plus what is specific to directories on disk."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from cc_archive_fs.backend import FsArchive, FsArchiveConfig

from cc_core.archive.errors import ArchiveAccessError
from cc_core.testing.archive_contract import ArchiveBackendContract, async_test, make_data, make_job


class TestFsArchive(ArchiveBackendContract):
    @pytest.fixture
    def backend(self, tmp_path: Path) -> FsArchive:
        return FsArchive(FsArchiveConfig(path=str(tmp_path / "archive")))

    @contextlib.contextmanager
    def failing_writes(self, backend: FsArchive, after: int) -> Iterator[None]:
        """Fail the (after+1)-th file written through `open(..., "xb")` in the backend module."""
        import builtins

        import cc_archive_fs.backend as mod

        real_open = builtins.open
        count = 0

        def fake_open(file, mode="r", *args, **kwargs):  # type: ignore[no-untyped-def]
            nonlocal count
            if "x" in mode:
                if count >= after:
                    raise OSError(28, "No space left on device")
                count += 1
            return real_open(file, mode, *args, **kwargs)

        mod.open = fake_open  # type: ignore[attr-defined]
        try:
            yield
        finally:
            del mod.open  # type: ignore[attr-defined]

    @async_test
    async def test_layout_matches_upstream(self, backend: FsArchive) -> None:
        await backend.init()
        job = make_job(job_id=1403244, start_time=1608923076)
        await backend.import_job(job, make_data())
        root = backend.root
        assert (root / "version.txt").read_text() == "3\n"
        assert sorted(p.name for p in (root / "testcluster/1403/244/1608923076").iterdir()) == [
            "data.json.gz",
            "meta.json",
        ]
        # no temporary leftovers
        assert not [p for p in root.rglob(".*")]

    @async_test
    async def test_failed_write_leaves_no_temporary_files(self, backend: FsArchive) -> None:
        await backend.init()
        with self.failing_writes(backend, 1), pytest.raises(ArchiveAccessError, match="No space left"):
            await backend.import_job(make_job(), make_data())
        assert not [p for p in backend.root.rglob(".*")]

    @async_test
    async def test_relative_path_is_relative_to_the_config(self, tmp_path: Path) -> None:
        from cc_core.config import load_config
        from cc_core.context import PluginContext

        (tmp_path / "site").mkdir()
        cfg_file = tmp_path / "site" / "config.json"
        cfg_file.write_text('{"archive": {"kind": "file", "path": "./var/job-archive"}}')
        ctx = PluginContext(load_config(cfg_file, environ={}), registry=None)  # type: ignore[arg-type]
        backend = FsArchive(FsArchiveConfig(path="./var/job-archive"), ctx)
        assert await backend.init() == 3
        assert (tmp_path / "site" / "var" / "job-archive" / "version.txt").exists()

    @async_test
    @pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
    async def test_permission_error_names_the_path(self, backend: FsArchive) -> None:
        await backend.init()
        job = make_job()
        await backend.import_job(job, make_data())
        meta = backend.root / "testcluster/1/234/1700000000/meta.json"
        meta.chmod(0)
        try:
            with pytest.raises(ArchiveAccessError) as e:
                await backend.load_job_meta(job)
            assert str(meta) in str(e.value) and "Permission denied" in str(e.value)
        finally:
            meta.chmod(0o644)

    def test_config_requires_a_path(self) -> None:
        import msgspec

        with pytest.raises(msgspec.ValidationError, match="path"):
            msgspec.convert({}, FsArchiveConfig)
        with pytest.raises(msgspec.ValidationError, match="must not be empty"):
            msgspec.convert({"path": " "}, FsArchiveConfig)
        with pytest.raises(msgspec.ValidationError, match="unknown field"):
            msgspec.convert({"path": "x", "bucket": "y"}, FsArchiveConfig)

    def test_plugin_registers_kind_file(self) -> None:
        from cc_core.plugins import make_plugin_manager

        assert make_plugin_manager().resolve("archive", "file") is FsArchive


def test_plugin_module_is_cheap_to_import() -> None:
    import subprocess
    import sys

    code = "import sys, cc_archive_fs; assert 'cc_archive_fs.backend' not in sys.modules; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"
