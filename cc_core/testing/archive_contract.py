"""The contract every job-archive backend passes (`cc_core.interfaces.ArchiveBackend`).

A plugin's tests subclass `ArchiveBackendContract` and provide a ``backend`` fixture returning a fresh,
empty, *uninitialised* backend::

    from cc_core.testing.archive_contract import ArchiveBackendContract

    class TestMyArchive(ArchiveBackendContract):
        @pytest.fixture
        def backend(self, tmp_path):
            return MyArchive(MyArchive.Config(...))

Every protocol method is exercised, including the bad cases a real archive has: a version-2 archive,
corrupt gzip, truncated JSON, a job directory without data, a missing cluster, and writes that fail half
way (no half-written job may become visible). Backends built on `cc_core.archive.backend.ArchiveBase`
get the raw-file hooks (`put_raw`, `get_raw`) for free; others override them. Override
`failing_writes` to let the suite break the storage in the middle of a write.

`MemoryArchive`, a complete in-memory backend, is the second archive of the move/copy tests and is handy
wherever a test needs an archive without a file system.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Sequence
from typing import Any, TypeVar

import msgspec
import numpy as np
import pytest

from cc_core.archive import codec
from cc_core.archive.backend import ArchiveBase
from cc_core.archive.errors import (
    ArchiveError,
    ArchiveFormatError,
    ArchiveVersionError,
    ClusterNotFoundError,
    JobNotFoundError,
)
from cc_core.archive.layout import DATA_FILE, DATA_GZ_FILE, META_FILE, VERSION_FILE, job_dir_of
from cc_core.interfaces import ArchiveBackend, ArchivedJob, RawJob
from cc_core.schema.cluster import Cluster, MetricConfig, SubCluster, SubClusterConfig, Topology
from cc_core.schema.job import Job, JobStatistics, Resource, Tag
from cc_core.schema.metrics import (
    JobData,
    JobMetric,
    MetricStatistics,
    Series,
    StatsSeries,
    job_data_stats,
    round_like_archive,
)
from cc_core.schema.units import Unit

CLUSTER = "testcluster"
T = TypeVar("T")

# ------------------------------------------------------------------------------------------ running


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` in a fresh thread: works even when this thread already has a running loop
    (Playwright's sync API leaves one behind for the whole session)."""
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["value"] = asyncio.run(coro)
        except BaseException as e:  # re-raised in the caller's thread, skips and failures included
            result["error"] = e

    thread = threading.Thread(target=target, name="archive-contract")
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result["value"]


def async_test(fn: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an ``async def`` test with `run_async` (no event-loop plugin needed)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        run_async(fn(*args, **kwargs))

    return wrapper


# ------------------------------------------------------------------------------------------ sample data


def make_job(job_id: int = 1234, start_time: int = 1_700_000_000, cluster: str = CLUSTER, **kw: Any) -> Job:
    """A finished two-node job as the archiver would store it."""
    fields: dict[str, Any] = {
        "job_id": job_id,
        "user": "alice",
        "project": "proj1",
        "cluster": cluster,
        "sub_cluster": "main",
        "partition": "work",
        "start_time": start_time,
        "num_nodes": 2,
        "num_hwthreads": 8,
        "resources": [Resource("n0101", hwthreads=[0, 1, 2, 3]), Resource("n0102", hwthreads=[0, 1, 2, 3])],
        "shared": "none",
        "monitoring_status": 3,
        "walltime": 3600,
        "job_state": "completed",
        "submit_time": start_time - 60,
        "duration": 1800,
        "meta_data": {"jobName": "sim", "jobScript": "#!/bin/bash\nsrun ./sim"},
        "tags": [Tag("app", "gromacs", "global", 1)],
        "energy": 1.25,
        "footprint": {"flops_any_avg": 12.5, "mem_used_max": 3.0},
        "statistics": {
            "flops_any": JobStatistics(Unit("F/s", "G"), avg=12.5, min=0.0, max=30.25),
            "mem_used": JobStatistics(Unit("B", "G"), avg=2.5, min=1.0, max=3.0),
        },
    }
    fields.update(kw)
    return Job(**fields)


def make_data(points: int = 120, hosts: Sequence[str] = ("n0101", "n0102"), seed: int = 7) -> JobData:
    """Node and core series with NaN gaps, ids and a statistics series (gzips: > 2000 bytes)."""
    rng = np.random.default_rng(seed)
    counter = iter(range(10**6))

    def series(host: str, sid: str | None) -> Series:
        data = np.round(rng.uniform(0, 100, points), 2)
        data[(points // 3 + next(counter)) % points] = np.nan  # a gap, at a different step per series
        return Series(
            hostname=host,
            id=sid,
            statistics=MetricStatistics(
                avg=round(float(np.nanmean(data)), 2),
                min=float(np.nanmin(data)),
                max=float(np.nanmax(data)),
            ),
            data=data,
        )

    node = [series(h, None) for h in hosts]
    stack = np.vstack([s.data for s in node])
    return {
        "flops_any": {
            "node": JobMetric(
                unit=Unit("F/s", "G"),
                timestep=60,
                series=node,
                statistics_series=StatsSeries(
                    mean=np.round(np.nanmean(stack, axis=0), 2),
                    median=np.round(np.nanmedian(stack, axis=0), 2),
                    min=np.nanmin(stack, axis=0),
                    max=np.nanmax(stack, axis=0),
                    percentiles={25: np.nanmin(stack, axis=0), 75: np.nanmax(stack, axis=0)},
                ),
            ),
            "core": JobMetric(
                unit=Unit("F/s", "G"),
                timestep=60,
                series=[series(h, str(c)) for h in hosts for c in range(2)],
            ),
        },
        "mem_used": {
            "node": JobMetric(unit=Unit("B", "G"), timestep=60, series=[series(h, None) for h in hosts])
        },
    }


def make_small_data() -> JobData:
    """Data small enough (< 2000 bytes serialised) to be stored as plain data.json."""
    return {
        "cpu_load": {
            "node": JobMetric(
                unit=Unit("", ""),
                timestep=60,
                series=[Series("n0101", np.array([1.0, np.nan, 2.5]), MetricStatistics(1.75, 1.0, 2.5))],
            )
        }
    }


def make_cluster(name: str = CLUSTER) -> Cluster:
    return Cluster(
        name=name,
        metric_config=[
            MetricConfig(
                name="flops_any",
                unit=Unit("F/s", "G"),
                scope="hwthread",
                aggregation="sum",
                timestep=60,
                peak=100,
                normal=50,
                caution=10,
                alert=5,
                footprint="avg",
                sub_clusters=[SubClusterConfig(name="big", peak=200, normal=100, caution=20, alert=10)],
            ),
            MetricConfig(
                name="mem_used",
                unit=Unit("B", "G"),
                scope="node",
                aggregation="sum",
                timestep=60,
                peak=64,
                normal=32,
                caution=60,
                alert=62,
                footprint="max",
                lower_is_better=True,
            ),
        ],
        sub_clusters=[
            SubCluster(
                name="main",
                nodes="n[0101-0164]",
                processor_type="Test CPU",
                sockets_per_node=1,
                cores_per_socket=4,
                threads_per_core=1,
                topology=Topology(
                    node=[0, 1, 2, 3],
                    socket=[[0, 1, 2, 3]],
                    memory_domain=[[0, 1, 2, 3]],
                    core=[[0], [1], [2], [3]],
                ),
            ),
            SubCluster(name="big", nodes="b[01-04]", topology=Topology(node=[0, 1])),
        ],
    )


# ------------------------------------------------------------------------------------------ MemoryArchive


class MemoryArchive(ArchiveBase):
    """A complete archive backend in a dict (kind ``memory``): a reference implementation for tests."""

    kind = "memory"

    class Config(msgspec.Struct, forbid_unknown_fields=True):
        name: str = "memory"

    def __init__(self, config: Any = None, context: Any = None) -> None:
        super().__init__(config or MemoryArchive.Config(), context)
        self.objects: dict[str, bytes] = {}

    def _display(self, key: str) -> str:
        return f"memory://{self.config.name}/{key}"

    async def _read(self, key: str) -> bytes | None:
        return self.objects.get(key)

    async def _write(self, key: str, data: bytes) -> None:
        self.objects[key] = bytes(data)

    async def _delete(self, keys: Sequence[str]) -> None:
        for k in keys:
            self.objects.pop(k, None)

    async def _exists(self, key: str) -> bool:
        return key in self.objects

    async def _list(self, prefix: str) -> tuple[list[str], dict[str, int]]:
        base = f"{prefix}/" if prefix else ""
        dirs: set[str] = set()
        files: dict[str, int] = {}
        for key, value in self.objects.items():
            if not key.startswith(base):
                continue
            rest = key[len(base) :]
            head, sep, _ = rest.partition("/")
            if sep:
                dirs.add(head)
            else:
                files[head] = len(value)
        return sorted(dirs), files


# ------------------------------------------------------------------------------------------ the contract


async def _collect(it: AsyncIterator[ArchivedJob]) -> list[ArchivedJob]:
    return [j async for j in it]


class ArchiveBackendContract:
    """Subclass (as ``Test…``) and define the ``backend`` fixture; see the module docstring."""

    # ------------------------------------------------------------------ hooks for subclasses

    @pytest.fixture
    def backend(self) -> ArchiveBackend:
        raise NotImplementedError("subclasses of ArchiveBackendContract define a `backend` fixture")

    async def put_raw(self, backend: ArchiveBackend, key: str, data: bytes) -> None:
        """Store raw bytes under an archive key (to plant broken files)."""
        if not isinstance(backend, ArchiveBase):
            pytest.skip("backend has no raw write hook; override put_raw")
        await backend._write(key, data)

    async def get_raw(self, backend: ArchiveBackend, key: str) -> bytes | None:
        if not isinstance(backend, ArchiveBase):
            pytest.skip("backend has no raw read hook; override get_raw")
        return await backend._read(key)

    async def delete_raw(self, backend: ArchiveBackend, key: str) -> None:
        if not isinstance(backend, ArchiveBase):
            pytest.skip("backend has no raw delete hook; override delete_raw")
        await backend._delete([key])

    @contextlib.contextmanager
    def failing_writes(self, backend: ArchiveBackend, after: int) -> Iterator[None]:
        """Make the storage fail after ``after`` successful object/file writes (override per backend)."""
        pytest.skip("this backend's tests define no write-failure hook")
        yield

    # ------------------------------------------------------------------ helpers

    @staticmethod
    async def ready(backend: ArchiveBackend) -> ArchiveBackend:
        assert await backend.init() == 3
        return backend

    # ------------------------------------------------------------------ version

    def test_implements_the_protocol(self, backend: ArchiveBackend) -> None:
        assert isinstance(backend, ArchiveBackend)
        assert isinstance(type(backend).kind, str) and type(backend).kind
        assert backend.validate is False

    @async_test
    async def test_init_bootstraps_an_empty_archive(self, backend: ArchiveBackend) -> None:
        assert await backend.init() == 3
        assert (await self.get_raw(backend, VERSION_FILE) or b"").strip() == b"3"
        assert await backend.init() == 3
        assert await backend.get_clusters() == []

    @async_test
    async def test_version_2_archive_points_at_migrate(self, backend: ArchiveBackend) -> None:
        await self.put_raw(backend, VERSION_FILE, b"2\n")
        with pytest.raises(ArchiveVersionError) as e:
            await backend.init()
        assert "clustercockpit archive migrate" in str(e.value)
        assert VERSION_FILE in str(e.value)

    @async_test
    @pytest.mark.parametrize("content", [b"4\n", b"three\n", b""])
    async def test_other_versions_are_refused(self, backend: ArchiveBackend, content: bytes) -> None:
        await self.put_raw(backend, VERSION_FILE, content)
        with pytest.raises(ArchiveVersionError):
            await backend.init()

    @async_test
    async def test_non_empty_archive_without_version_is_refused(self, backend: ArchiveBackend) -> None:
        await self.put_raw(backend, f"{CLUSTER}/cluster.json", codec.encode_cluster_file(make_cluster()))
        with pytest.raises(ArchiveVersionError) as e:
            await backend.init()
        assert "missing" in str(e.value)

    # ------------------------------------------------------------------ jobs

    @async_test
    async def test_import_and_load_round_trip(self, backend: ArchiveBackend) -> None:
        await self.ready(backend)
        job, data = make_job(), make_data()
        assert not await backend.exists(job)
        await backend.import_job(job, data)
        assert await backend.exists(job)
        assert await backend.load_job_meta(job) == job
        loaded = await backend.load_job_data(job)
        assert loaded == round_like_archive(data)
        assert loaded["flops_any"]["core"].series[1].id == "1"
        assert np.isnan(loaded["flops_any"]["node"].series[0].data[40])
        # Big data is gzipped, and only the .gz exists.
        d = job_dir_of(job)
        assert await self.get_raw(backend, f"{d}/{DATA_GZ_FILE}") is not None
        assert await self.get_raw(backend, f"{d}/{DATA_FILE}") is None

    @async_test
    async def test_small_data_is_stored_uncompressed(self, backend: ArchiveBackend) -> None:
        await self.ready(backend)
        job = make_job(job_id=77)
        await backend.import_job(job, make_small_data())
        d = job_dir_of(job)
        raw = await self.get_raw(backend, f"{d}/{DATA_FILE}")
        assert raw is not None and len(raw) <= 2000
        assert await self.get_raw(backend, f"{d}/{DATA_GZ_FILE}") is None
        assert b'"data":[1.00,null,2.50]' in raw
        assert await backend.load_job_data(job) == make_small_data()

    @async_test
    async def test_reimport_replaces_the_job(self, backend: ArchiveBackend) -> None:
        await self.ready(backend)
        job = make_job()
        await backend.import_job(job, make_data())
        await backend.import_job(msgspec.structs.replace(job, duration=99), make_small_data())
        assert (await backend.load_job_meta(job)).duration == 99
        assert await backend.load_job_data(job) == make_small_data()
        assert await self.get_raw(backend, f"{job_dir_of(job)}/{DATA_GZ_FILE}") is None

    @async_test
    async def test_load_job_stats(self, backend: ArchiveBackend) -> None:
        await self.ready(backend)
        job, data = make_job(), make_data()
        await backend.import_job(job, data)
        stats = await backend.load_job_stats(job)
        assert stats == job_data_stats(round_like_archive(data))
        assert [s.id for s in stats["flops_any"]["core"]] == ["0", "1", "0", "1"]

    @async_test
    async def test_missing_job_errors_name_the_job(self, backend: ArchiveBackend) -> None:
        await self.ready(backend)
        job = make_job(job_id=1403244, start_time=1608923076)
        assert not await backend.exists(job)
        for load in (
            backend.load_job_meta,
            backend.load_job_data,
            backend.load_job_stats,
            backend.read_job_raw,
        ):
            with pytest.raises(JobNotFoundError) as e:
                await load(job)
            assert f"{CLUSTER}/1403/244/1608923076" in str(e.value)
        with pytest.raises(JobNotFoundError):
            await backend.store_job_meta(job)

    @async_test
    async def test_store_job_meta_rewrites_meta(self, backend: ArchiveBackend) -> None:
        await self.ready(backend)
        job = make_job()
        await backend.import_job(job, make_data())
        edited = msgspec.structs.replace(
            job, tags=[Tag("app", "vasp", "global"), Tag("note", "check", "alice")], meta_data={"a": "b"}
        )
        await backend.store_job_meta(edited)
        assert await backend.load_job_meta(job) == edited
        assert (await backend.load_job_meta(job)).tags[1].scope == "alice"  # type: ignore[index]

    @async_test
    async def test_meta_json_has_upstream_required_keys(self, backend: ArchiveBackend) -> None:
        await self.ready(backend)
        job = make_job(shared="none", statistics=None)
        await backend.import_job(job, make_small_data())
        raw = await self.get_raw(backend, f"{job_dir_of(job)}/{META_FILE}")
        doc = msgspec.json.decode(raw or b"{}")
        for key in (
            "jobId",
            "user",
            "project",
            "cluster",
            "subCluster",
            "numNodes",
            "shared",
            "startTime",
            "jobState",
            "duration",
            "resources",
            "statistics",
        ):
            assert key in doc, key

    # ------------------------------------------------------------------ clusters

    @async_test
    async def test_cluster_config_round_trip_and_missing_cluster(self, backend: ArchiveBackend) -> None:
        await self.ready(backend)
        cluster = make_cluster()
        await backend.store_cluster_config(cluster)
        assert await backend.get_clusters() == [CLUSTER]
        loaded = await backend.load_cluster_config(CLUSTER)
        assert loaded == cluster
        assert loaded.derive().subcluster_metrics("big")["flops_any"].peak == 200
        await backend.store_cluster_config(cluster, name="other")
        assert await backend.get_clusters() == ["other", CLUSTER]
        with pytest.raises(ClusterNotFoundError) as e:
            await backend.load_cluster_config("nosuchcluster")
        assert "nosuchcluster" in str(e.value)

    # ------------------------------------------------------------------ iteration

    async def _populate(self, backend: ArchiveBackend) -> list[Job]:
        await self.ready(backend)
        await backend.store_cluster_config(make_cluster())
        jobs = [make_job(job_id=1000 + i, start_time=1_700_000_000 + 3600 * i) for i in range(5)] + [
            make_job(job_id=5, start_time=1_600_000_000, cluster="other")
        ]
        for i, job in enumerate(jobs):
            await backend.import_job(job, make_data(points=30, seed=i) if i % 2 else make_small_data())
        return jobs

    @async_test
    async def test_iter_jobs(self, backend: ArchiveBackend) -> None:
        jobs = await self._populate(backend)
        found = await _collect(backend.iter_jobs())
        assert sorted((j.meta.cluster, j.meta.job_id) for j in found if j.meta) == sorted(
            (j.cluster, j.job_id) for j in jobs
        )
        assert all(j.error is None and j.data is None for j in found)
        assert all(job_dir_of(j.meta).split("/", 1)[1] in j.path for j in found if j.meta)
        with_data = await _collect(backend.iter_jobs(load_data=True, cluster=CLUSTER))
        assert len(with_data) == 5
        assert all(j.data and ("cpu_load" in j.data or "flops_any" in j.data) for j in with_data)

    @async_test
    async def test_broken_jobs_are_reported_and_iteration_goes_on(self, backend: ArchiveBackend) -> None:
        jobs = await self._populate(backend)
        d0, d1, d2 = (job_dir_of(j) for j in jobs[:3])
        good_meta = await self.get_raw(backend, f"{d0}/{META_FILE}") or b""
        await self.put_raw(backend, f"{d0}/{META_FILE}", good_meta[: len(good_meta) // 2])  # truncated JSON
        await self.delete_raw(backend, f"{d1}/{DATA_GZ_FILE}")  # job directory without data
        gz = await self.get_raw(backend, f"{d2}/{DATA_FILE}") or b""
        await self.delete_raw(backend, f"{d2}/{DATA_FILE}")
        await self.put_raw(
            backend, f"{d2}/{DATA_GZ_FILE}", b"\x1f\x8b\x08\x00garbage" + gz[:10]
        )  # corrupt gzip

        found = await _collect(backend.iter_jobs(load_data=True))
        errors = {j.path: j.error for j in found if j.error}
        assert len(found) == len(jobs) and len(errors) == 3
        by_dir = {d: next(e for p, e in errors.items() if p.endswith(d)) for d in (d0, d1, d2)}
        assert "truncated" in by_dir[d0] and META_FILE in by_dir[d0]
        assert "without data" in by_dir[d1]
        assert "corrupt gzip" in by_dir[d2] and DATA_GZ_FILE in by_dir[d2]
        for e in errors.values():
            assert "Traceback" not in e

        # Meta-only iteration still sees d1 and d2 fine.
        meta_only = await _collect(backend.iter_jobs())
        assert sum(1 for j in meta_only if j.error) == 1

        # The same problems from the single-job loaders, as exceptions naming the file.
        with pytest.raises(ArchiveFormatError, match="truncated"):
            await backend.load_job_meta(jobs[0])
        with pytest.raises(ArchiveFormatError, match="without data"):
            await backend.load_job_data(jobs[1])
        with pytest.raises(ArchiveFormatError, match="corrupt gzip"):
            await backend.load_job_data(jobs[2])
        with pytest.raises(ArchiveFormatError, match="corrupt gzip"):
            await backend.load_job_stats(jobs[2])

    @async_test
    async def test_truncated_data_json(self, backend: ArchiveBackend) -> None:
        await self.ready(backend)
        job = make_job()
        await backend.import_job(job, make_data())
        d = job_dir_of(job)
        raw = codec.gunzip(await self.get_raw(backend, f"{d}/{DATA_GZ_FILE}") or b"", d)
        await self.put_raw(backend, f"{d}/{DATA_GZ_FILE}", codec.gzip_bytes(raw[: len(raw) // 2]))
        with pytest.raises(ArchiveFormatError) as e:
            await backend.load_job_data(job)
        assert "truncated" in str(e.value) and DATA_GZ_FILE in str(e.value)
        await self.put_raw(
            backend, f"{d}/{DATA_GZ_FILE}", (await self.get_raw(backend, f"{d}/{DATA_GZ_FILE}"))[:-12]
        )  # type: ignore[index]
        with pytest.raises(ArchiveFormatError, match="corrupt gzip"):
            await backend.load_job_data(job)

    # ------------------------------------------------------------------ info, clean, move, compress

    @async_test
    async def test_info(self, backend: ArchiveBackend) -> None:
        await self._populate(backend)
        info = await backend.info()
        assert set(info) == {CLUSTER, "other"}
        assert info[CLUSTER].jobs == 5
        assert info[CLUSTER].first_start == 1_700_000_000
        assert info[CLUSTER].last_start == 1_700_000_000 + 4 * 3600
        assert info[CLUSTER].bytes > 2000
        assert info["other"].jobs == 1

    @async_test
    async def test_clean_before_after_cluster(self, backend: ArchiveBackend) -> None:
        jobs = await self._populate(backend)
        assert await backend.clean(after=1_700_000_000 + 3 * 3600) == 1  # the last testcluster job
        assert not await backend.exists(jobs[4])
        assert await backend.clean(before=1_700_000_000, cluster=CLUSTER) == 0  # "other" is not looked at
        assert await backend.clean(before=1_700_000_000 + 3600) == 2  # jobs[0] and the "other" job
        assert [await backend.exists(j) for j in jobs] == [False, True, True, True, False, False]
        assert await backend.clean(before=2_000_000_000, cluster=CLUSTER) == 3
        assert [j async for j in backend.iter_jobs()] == []
        assert CLUSTER in await backend.get_clusters()  # cluster.json stays

    @async_test
    async def test_clean_up_given_jobs(self, backend: ArchiveBackend) -> None:
        jobs = await self._populate(backend)
        assert await backend.clean_up([jobs[1], jobs[2], make_job(job_id=999999)]) == 2
        assert [await backend.exists(j) for j in jobs] == [True, False, False, True, True, True]

    @async_test
    async def test_raw_copy_and_move_between_backends(self, backend: ArchiveBackend) -> None:
        jobs = await self._populate(backend)
        target = await self.ready(MemoryArchive())
        raw = await backend.read_job_raw(jobs[1])
        await target.write_job_raw(raw)
        assert (await target.read_job_raw(jobs[1])) == raw
        assert await target.load_job_data(jobs[1]) == await backend.load_job_data(jobs[1])
        # and back: raw bytes survive unchanged
        other = MemoryArchive()
        await other.init()
        await other.import_job(jobs[0], make_data(seed=42))
        await backend.write_job_raw(await other.read_job_raw(jobs[0]))
        assert await backend.read_job_raw(jobs[0]) == await other.read_job_raw(jobs[0])

        assert await backend.move([jobs[2], jobs[3]], target) == 2
        assert not await backend.exists(jobs[2]) and await target.exists(jobs[3])
        assert await target.load_job_meta(jobs[3]) == jobs[3]

    @async_test
    async def test_compress(self, backend: ArchiveBackend) -> None:
        await self.ready(backend)
        big, small = make_job(job_id=1), make_job(job_id=2)
        for job, data in ((big, make_data()), (small, make_small_data())):
            raw = codec.encode_data(data)
            plain = codec.gunzip(raw[1], "x") if raw[0] == DATA_GZ_FILE else raw[1]
            await backend.write_job_raw(
                RawJob(job.cluster, job.job_id, job.start_time, codec.encode_meta(job), plain, False)
            )
        before = await backend.load_job_data(big)
        assert await backend.compress([big, small, make_job(job_id=3)]) == 1
        d = job_dir_of(big)
        assert await self.get_raw(backend, f"{d}/{DATA_FILE}") is None
        assert await self.get_raw(backend, f"{d}/{DATA_GZ_FILE}") is not None
        assert await backend.load_job_data(big) == before
        assert await self.get_raw(backend, f"{job_dir_of(small)}/{DATA_FILE}") is not None

    @async_test
    async def test_compress_last(self, backend: ArchiveBackend) -> None:
        await self.ready(backend)
        assert await backend.compress_last(100) == 100
        assert await backend.compress_last(200) == 100
        assert await backend.compress_last(300) == 200

    # ------------------------------------------------------------------ atomicity

    @async_test
    async def test_readers_never_see_half_a_job(self, backend: ArchiveBackend) -> None:
        await self.ready(backend)
        jobs = [make_job(job_id=i) for i in range(1, 7)]
        data = make_data(points=4000, hosts=[f"n{i:04d}" for i in range(8)])
        seen: list[int] = []

        async def reader() -> None:
            while len(seen) < len(jobs):
                for job in jobs:
                    if job.job_id not in seen and await backend.exists(job):
                        assert await backend.load_job_meta(job) == job
                        assert (await backend.load_job_data(job)).keys() == data.keys()
                        seen.append(job.job_id)
                async for aj in backend.iter_jobs(load_data=True):
                    assert aj.error is None, aj.error
                await asyncio.sleep(0)

        async def writer() -> None:
            for job in jobs:
                await backend.import_job(job, data)

        await asyncio.wait_for(asyncio.gather(reader(), writer()), timeout=120)

    @async_test
    async def test_failed_write_leaves_no_half_job(self, backend: ArchiveBackend) -> None:
        await self.ready(backend)
        job, old = make_job(), make_job(job_id=4321)
        await backend.import_job(old, make_small_data())
        for after in (0, 1):  # fail on the data file, or on meta.json after the data file
            with self.failing_writes(backend, after), pytest.raises((OSError, ArchiveError, RuntimeError)):
                await backend.import_job(job, make_data())
            assert not await backend.exists(job)
            found = await _collect(backend.iter_jobs(load_data=True))
            assert [(j.meta.job_id if j.meta else None, j.error) for j in found] == [(4321, None)]
            with pytest.raises(JobNotFoundError):
                await backend.load_job_data(job)
        # A failing overwrite keeps the old job readable.
        with self.failing_writes(backend, 0), pytest.raises((OSError, ArchiveError, RuntimeError)):
            await backend.import_job(msgspec.structs.replace(old, duration=1), make_data())
        assert await backend.load_job_meta(old) == old
        assert await backend.load_job_data(old) == make_small_data()

    @async_test
    async def test_directory_without_meta_is_not_a_job(self, backend: ArchiveBackend) -> None:
        await self.ready(backend)
        job = make_job()
        await self.put_raw(backend, f"{job_dir_of(job)}/{DATA_FILE}", b"{}")
        assert not await backend.exists(job)
        assert await _collect(backend.iter_jobs(load_data=True)) == []

    # ------------------------------------------------------------------ validation

    @async_test
    async def test_schema_validation_when_enabled(self, backend: ArchiveBackend) -> None:
        from cc_core.archive import validation

        if not validation.available():
            pytest.skip("jsonschema not installed")
        await self.ready(backend)
        job = make_job()
        await backend.import_job(job, make_small_data())
        key = f"{job_dir_of(job)}/{META_FILE}"
        doc = msgspec.json.decode(await self.get_raw(backend, key) or b"{}")
        del doc["subCluster"]  # optional for the decoder, required by upstream's schema
        await self.put_raw(backend, key, msgspec.json.encode(doc))
        assert (await backend.load_job_meta(job)).sub_cluster == ""  # lenient without validation
        backend.validate = True
        try:
            with pytest.raises(ArchiveFormatError) as e:
                await backend.load_job_meta(job)
            assert "JSON schema" in str(e.value) and "'subCluster' is a required property" in str(e.value)
        finally:
            backend.validate = False
