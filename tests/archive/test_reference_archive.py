"""Acceptance: upstream's reference archive loads, and both emmy jobs round-trip read → write → read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from cc_archive_fs.backend import FsArchive, FsArchiveConfig

from cc_core.archive import load_clusters
from cc_core.archive.codec import gunzip
from cc_core.schema import Job
from cc_core.schema.metrics import JobData, decode_job_data, round_like_archive
from cc_core.testing.archive_contract import run_async

EMMY_JOBS = [(1403244, 1608923076), (1404397, 1609300556)]


def archive(path: Path) -> FsArchive:
    return FsArchive(FsArchiveConfig(path=str(path)))


def key(job_id: int, start: int) -> Job:
    return Job(
        job_id=job_id, user="", project="", cluster="emmy", start_time=start, num_nodes=0, resources=[]
    )


def assert_same_data_up_to_archive_rounding(original: JobData, again: JobData) -> None:
    """Upstream writes series values with 2 decimals: more precise values (emmy's ipc) get rounded."""
    assert again == round_like_archive(original)
    for metric, scopes in original.items():
        for scope, jm in scopes.items():
            other = again[metric][scope]
            assert (other.unit, other.timestep) == (jm.unit, jm.timestep)
            for a, b in zip(jm.series, other.series, strict=True):
                assert (a.hostname, a.id, a.statistics) == (b.hostname, b.id, b.statistics)
                assert np.array_equal(np.isnan(a.data), np.isnan(b.data))
                assert np.nanmax(np.abs(a.data - b.data), initial=0) <= 0.005 + 1e-6 * np.nanmax(
                    np.abs(a.data)
                )


async def _round_trip(src: FsArchive, dst: FsArchive) -> list[tuple[Job, JobData, Job, JobData]]:
    assert await src.init() == 3
    assert await dst.init() == 3
    out = []
    for job_id, start in EMMY_JOBS:
        meta = await src.load_job_meta(key(job_id, start))
        data = await src.load_job_data(meta)
        await dst.import_job(meta, data)
        out.append((meta, data, await dst.load_job_meta(meta), await dst.load_job_data(meta)))
    return out


def test_reference_archive_loads(reference_archive: Path) -> None:
    async def main() -> None:
        a = archive(reference_archive)
        assert await a.init() == 3
        assert await a.get_clusters() == ["alex", "emmy", "fritz"]
        jobs = [j async for j in a.iter_jobs(load_data=True)]
        assert [j.error for j in jobs] == [None, None]
        assert sorted(j.meta.job_id for j in jobs if j.meta) == [1403244, 1404397]
        first = next(j for j in jobs if j.meta and j.meta.job_id == 1403244)
        assert first.meta is not None and first.data is not None
        assert (first.meta.num_nodes, first.meta.sub_cluster, first.meta.job_state) == (
            32,
            "haswell",
            "completed",
        )
        assert sorted(first.data) == sorted(
            [
                "cpu_load",
                "clock",
                "rapl_power",
                "ipc",
                "mem_bw",
                "flops_sp",
                "mem_used",
                "flops_dp",
                "flops_any",
            ]
        )
        cpu = first.data["cpu_load"]["node"]
        assert (len(cpu.series), cpu.series[0].data.shape, cpu.series[0].hostname) == (32, (1441,), "e0102")
        assert np.isnan(cpu.series[0].data[3]) and cpu.series[0].data[0] == 4.01
        info = await a.info()
        assert info["emmy"].jobs == 2 and info["alex"].jobs == 0
        assert (info["emmy"].first_start, info["emmy"].last_start) == (1608923076, 1609300556)
        clusters = await load_clusters(a)
        assert sorted(clusters) == ["alex", "emmy", "fritz"]
        stats = await a.load_job_stats(first.meta)
        assert stats["cpu_load"]["node"][0].data.max == 19.42

    run_async(main())


def test_emmy_jobs_round_trip(reference_archive: Path, tmp_path: Path) -> None:
    results = run_async(_round_trip(archive(reference_archive), archive(tmp_path / "copy")))
    for meta, data, meta2, data2 in results:
        assert meta2 == meta
        assert_same_data_up_to_archive_rounding(data, data2)
        # every metric but ipc has ≤ 2 decimals upstream, so those are bit-identical after the trip
        assert {m: s for m, s in data2.items() if m != "ipc"} == {m: s for m, s in data.items() if m != "ipc"}
    # A second trip changes nothing at all, byte for byte.
    again = run_async(_round_trip(archive(tmp_path / "copy"), archive(tmp_path / "copy2")))
    for (_, _, meta2, data2), (meta3, data3, _, _) in zip(results, again, strict=True):
        assert (meta3, data3) == (meta2, data2)
    for job_id, start in EMMY_JOBS:
        d = f"emmy/{job_id // 1000}/{job_id % 1000:03d}/{start}"
        assert (tmp_path / "copy" / d / "data.json.gz").read_bytes() == (
            tmp_path / "copy2" / d / "data.json.gz"
        ).read_bytes()
        assert (tmp_path / "copy" / d / "meta.json").read_bytes() == (
            tmp_path / "copy2" / d / "meta.json"
        ).read_bytes()


def test_fixture_archive_round_trip(fixture_archive: Path, tmp_path: Path) -> None:
    """The same on the small fixture copy (runs without ../shared); job 1404397 has no data here."""

    async def main() -> None:
        src, dst = archive(fixture_archive), archive(tmp_path / "out")
        await src.init()
        await dst.init()
        jobs = {j.meta.job_id if j.meta else None: j async for j in src.iter_jobs(load_data=True)}
        assert jobs.keys() == {1403244, None}
        broken = jobs[None]
        assert broken.error is not None and broken.error.endswith(
            "emmy/1404/397/1609300556: job directory without data.json or data.json.gz"
        )
        job = jobs[1403244]
        assert job.meta and job.data
        await dst.import_job(job.meta, job.data)
        assert await dst.load_job_meta(job.meta) == job.meta
        assert_same_data_up_to_archive_rounding(job.data, await dst.load_job_data(job.meta))
        raw = gunzip((fixture_archive / "emmy/1403/244/1608923076/data.json.gz").read_bytes(), "x")
        assert decode_job_data(raw) == job.data
        assert (await src.load_job_meta(job.meta)).statistics["ipc"].max == 0.510204081632653  # type: ignore[index]

    run_async(main())


def test_reference_schema_check_finds_upstreams_own_violations(reference_archive: Path) -> None:
    """With validation on, upstream's schemas reject even its test data (units such as "load")."""
    from cc_core.archive import validation
    from cc_core.archive.errors import ArchiveFormatError

    if not validation.available():
        pytest.skip("jsonschema not installed")

    async def main() -> None:
        a = archive(reference_archive)
        await a.init()
        a.validate = True
        with pytest.raises(ArchiveFormatError, match="does not match the JSON schema"):
            await a.load_job_meta(key(*EMMY_JOBS[0]))
        assert (await a.load_cluster_config("emmy")).name == "emmy"  # emmy's cluster.json is valid

    run_async(main())
