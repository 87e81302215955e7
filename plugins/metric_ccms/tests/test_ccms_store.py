"""The data model: time grid, blocks, reads, aggregation across the topology, retention, health."""

from __future__ import annotations

import math

import numpy as np
import pytest
from cc_metric_ccms.store import (
    MetricInfo,
    MetricStore,
    MetricStoreError,
    NoDataError,
    nan_stats,
    nan_stats_rows,
)
from ccms_testlib import simple_metrics

T0 = 1_700_000_000


@pytest.fixture
def store() -> MetricStore:
    return MetricStore(simple_metrics(), block_size=8)


def put(store: MetricStore, path: list[str], metric: str, samples: dict[int, float]) -> None:
    sid = store.series_id(path, metric, create=True)
    assert sid is not None
    ts = np.array(list(samples), dtype=np.int64)
    st = store.write_batch(np.full(len(ts), sid), ts, np.array(list(samples.values())))
    assert st.stale == 0


def test_grid_overwrite_gaps_and_stale_writes(store: MetricStore) -> None:
    put(store, ["c", "h"], "cpu_load", {T0: 1, T0 + 60: 2, T0 + 240: 5})
    r = store.read(["c", "h"], "cpu_load", T0, T0 + 300)
    assert len(r.data) == 5 and r.data[[0, 1, 4]].tolist() == [1, 2, 5]
    assert np.isnan(r.data[2]) and np.isnan(r.data[3])  # gap is NaN
    assert (r.from_, r.to, r.resolution) == (T0, T0 + 300, 60)
    # Same slot (±freq/2 around the first sample's grid) overwrites.
    put(store, ["c", "h"], "cpu_load", {T0 + 60 + 29: 20})
    assert store.read(["c", "h"], "cpu_load", T0 + 60, T0 + 61).data.tolist() == [20]
    put(store, ["c", "h"], "cpu_load", {T0 + 60 - 30: 21})  # start of the same slot
    assert store.read(["c", "h"], "cpu_load", T0 + 60, T0 + 61).data.tolist() == [21]
    # Older than the block start: rejected.
    sid = store.series_id(["c", "h"], "cpu_load")
    st = store.write_batch(np.array([sid]), np.array([T0 - 31]), np.array([9.0]))
    assert (st.written, st.stale) == (0, 1)
    # avg/min/max are NaN-aware
    r = store.read(["c", "h"], "cpu_load", T0, T0 + 300)
    assert (r.avg, r.min, r.max) == pytest.approx((27 / 3, 1, 21))


def test_blocks_roll_over_and_read_across_them(store: MetricStore) -> None:
    n = 8 * 5 + 3  # five full blocks of 8 and a partial one
    put(store, ["c", "h"], "cpu_load", {T0 + 60 * i: float(i) for i in range(n)})
    dump = store.debug_dump(["c", "h"])["data"]["cpu_load"]
    assert [b["len"] for b in dump] == [8, 8, 8, 8, 8, 3]
    assert dump[0]["start"] == T0 - 30 and dump[1]["start"] == T0 - 30 + 8 * 60
    r = store.read(["c", "h"], "cpu_load", T0 + 60 * 5, T0 + 60 * 30)
    assert r.data.tolist() == [float(i) for i in range(5, 30)]
    # A range reaching past both ends is clipped to the data; from/to say what was returned.
    r = store.read(["c", "h"], "cpu_load", T0 - 6000, T0 + 10**6)
    assert len(r.data) == n and r.from_ == T0 - 6000 + 100 * 60 and r.to == r.from_ + n * 60
    # A batch spanning several blocks at once (a replayed WAL) lands in the right slots.
    put(store, ["c", "g"], "cpu_load", {T0 + 60 * i: float(i) for i in reversed(range(30))})
    assert store.read(["c", "g"], "cpu_load", T0, T0 + 1800).data.tolist() == [float(i) for i in range(30)]


def test_jump_over_a_long_gap_keeps_the_grid(store: MetricStore) -> None:
    put(store, ["c", "h"], "cpu_load", {T0: 1.0})
    put(store, ["c", "h"], "cpu_load", {T0 + 86400 + 5: 2.0})
    r = store.read(["c", "h"], "cpu_load", T0, T0 + 86400 + 60)
    assert r.data[0] == 1 and r.data[-1] == 2 and np.isnan(r.data[1:-1]).all()
    assert len(r.data) == 86400 // 60 + 1


def test_aggregation_across_children_sum_avg_and_none(store: MetricStore) -> None:
    for hw in range(4):
        put(store, ["c", "h", f"hwthread{hw}"], "flops_any", {T0 + 60 * i: hw + 10 * i for i in range(3)})
        put(store, ["c", "h", f"hwthread{hw}"], "cpu_load", {T0 + 60 * i: hw for i in range(3)})
        put(store, ["c", "h", f"hwthread{hw}"], "mem_used", {T0: 1})
    # host level has no flops_any: sum over hwthreads
    assert store.read(["c", "h"], "flops_any", T0, T0 + 180).data.tolist() == [6, 46, 86]
    assert store.read(["c", "h"], "cpu_load", T0, T0 + 180).data.tolist() == [1.5] * 3
    # a group selector aggregates the named children only
    r = store.read(["c", "h", ["hwthread1", "hwthread3", "hwthread9"]], "flops_any", T0, T0 + 180)
    assert r.data.tolist() == [4, 24, 44]
    # wildcard
    assert store.read(["c", "*", "hwthread2"], "flops_any", T0, T0 + 60).data.tolist() == [2]
    with pytest.raises(MetricStoreError, match="no aggregation"):
        store.read(["c", "h"], "mem_used", T0, T0 + 60)
    with pytest.raises(NoDataError):
        store.read(["c", "nohost"], "flops_any", T0, T0 + 60)
    with pytest.raises(MetricStoreError, match="unknown metric"):
        store.read(["c", "h"], "nope", T0, T0 + 60)


def test_a_level_holding_the_metric_wins_over_its_children(store: MetricStore) -> None:
    put(store, ["c", "h"], "flops_any", {T0: 100})
    put(store, ["c", "h", "hwthread0"], "flops_any", {T0: 1})
    assert store.read(["c", "h"], "flops_any", T0, T0 + 60).data.tolist() == [100]


def test_aggregation_is_nan_aware_and_takes_the_union_of_ranges(store: MetricStore) -> None:
    put(store, ["c", "h", "hwthread0"], "flops_any", {T0: 1, T0 + 60: 1, T0 + 120: 1})
    put(store, ["c", "h", "hwthread1"], "flops_any", {T0 + 60: 2, T0 + 180: 2})
    put(store, ["c", "h", "hwthread0"], "cpu_load", {T0: 1, T0 + 60: 3})
    put(store, ["c", "h", "hwthread1"], "cpu_load", {T0 + 60: 5})
    r = store.read(["c", "h"], "flops_any", T0, T0 + 600)
    assert r.data[:3].tolist() == [1, 3, 1] and r.data[3] == 2 and len(r.data) == 4
    assert (r.from_, r.to) == (T0, T0 + 240)
    assert store.read(["c", "h"], "cpu_load", T0, T0 + 120).data.tolist() == [1, 4]


def test_misaligned_frequencies_are_an_error() -> None:
    store = MetricStore([MetricInfo("x", 60, "sum")])
    a = store.series_id(["c", "h", "a"], "x", create=True)
    b = store.series_id(["c", "h", "b"], "x", create=True)
    store.write_series(a, T0, np.ones(3), 60)
    store.write_series(b, T0, np.ones(3), 30)
    with pytest.raises(MetricStoreError, match="align"):
        store.read(["c", "h"], "x", T0, T0 + 180)


def test_read_downsamples_with_lttb_when_asked() -> None:
    store = MetricStore([MetricInfo("x", 60, "avg")], minimum_points=100)
    sid = store.series_id(["c", "h"], "x", create=True)
    store.write_series(sid, T0, np.sin(np.arange(1440) / 50.0), 60)
    r = store.read(["c", "h"], "x", T0, T0 + 86400, resolution=600)
    assert (len(r.data), r.resolution) == (144, 600)
    assert r.avg == pytest.approx(
        float(np.sin(np.arange(1440) / 50.0).mean()), abs=1e-6
    )  # stats: native data
    assert store.read(["c", "h"], "x", T0, T0 + 86400, resolution=30).resolution == 60  # not coarser
    with pytest.raises(ValueError, match="multiple"):
        store.read(["c", "h"], "x", T0, T0 + 86400, resolution=90)


def test_nan_statistics() -> None:
    assert nan_stats(np.array([1.0, np.nan, 3.0])) == (2.0, 1.0, 3.0)
    assert all(math.isnan(x) for x in nan_stats(np.array([np.nan, np.nan])))
    avg, mn, mx = nan_stats_rows(np.array([[1.0, np.nan, 3.0], [np.nan] * 3]))
    assert avg[0] == 2 and mn[0] == 1 and mx[0] == 3 and np.isnan([avg[1], mn[1], mx[1]]).all()


def test_free_and_retention_keep_hosts_in_use(store: MetricStore) -> None:
    for h in ("busy", "idle"):
        put(store, ["c", h], "cpu_load", {T0 + 60 * i: float(i) for i in range(40)})  # 5 blocks
    put(store, ["c", "gone"], "cpu_load", {T0: 1.0})
    before = T0 + 60 * 20
    freed = store.retain(before, keep={"c": {"busy"}})
    assert freed == 2 + 1  # idle: blocks 0, 1 end before `before`; gone: its only block
    assert store.list_children(["c"]) == ["busy", "idle"]  # empty host removed
    assert store.read(["c", "busy"], "cpu_load", T0, T0 + 2400).from_ == T0
    assert store.read(["c", "idle"], "cpu_load", T0, T0 + 2400).from_ == T0 + 16 * 60
    # /api/free with a selector
    assert store.free([["c", "busy"]], T0 + 60 * 20) == 2
    assert store.free([["c", "nothere"]], T0 + 10**6) == 0


def test_memory_cap_frees_oldest_data_first(store: MetricStore) -> None:
    for h in range(4):
        put(store, ["c", f"h{h}"], "cpu_load", {T0 + 60 * i: 1.0 for i in range(80)})
    full = store.nbytes()
    now = T0 + 80 * 60
    freed = store.enforce_memory_cap(full // 2, retention=80 * 60, now=now)
    assert freed > 0 and store.nbytes() <= full // 2
    r = store.read(["c", "h0"], "cpu_load", T0, now)
    assert r.to == now  # the newest data is kept
    assert store.enforce_memory_cap(0, retention=3600, now=now) == 0  # no cap


def test_health_check_states(store: MetricStore) -> None:
    now = T0 + 3600
    put(store, ["c", "full"], "cpu_load", {now - 60: 1})
    put(store, ["c", "full", "hwthread0"], "flops_any", {now - 60: 1})
    put(store, ["c", "part"], "cpu_load", {now - 60: 1})
    put(store, ["c", "part", "hwthread0"], "flops_any", {now - 60: 1})
    put(store, ["c", "part", "hwthread1"], "flops_any", {now - 3000: 1})  # one stale child degrades
    put(store, ["c", "dead"], "cpu_load", {T0: 1})
    res = store.health_check("c", ["full", "part", "dead", "unknown"], ["cpu_load", "flops_any"], now=now)
    assert res["full"].state == "full"
    assert (res["part"].state, res["part"].degraded, res["part"].missing) == ("partial", ["flops_any"], [])
    assert (res["dead"].state, res["dead"].degraded, res["dead"].missing) == (
        "failed",
        ["cpu_load"],
        ["flops_any"],
    )
    assert res["unknown"].state == "failed"


def test_memory_per_sample_is_close_to_four_bytes() -> None:
    store = MetricStore([MetricInfo("x", 60, "sum")])
    n = 2000
    sids = np.array(
        [store.series_id(["c", f"h{i // 50}", f"core{i % 50}"], "x", create=True) for i in range(n)]
    )
    for i in range(1440):
        store.write_batch(sids, np.full(n, T0 + 60 * i), np.full(n, float(i)))
    assert store.nbytes() / (n * 1440) < 5.0
    assert store.sample_slots() == n * 1440


def test_compaction_releases_slabs_and_keeps_data() -> None:
    store = MetricStore([MetricInfo("x", 60, "sum")], block_size=8)
    n = 1000
    sids = np.array([store.series_id(["c", f"h{i}"], "x", create=True) for i in range(n)])
    for i in range(8 * 5 + 1):  # five sealed blocks per series: 5000 rows in three slabs
        store.write_batch(sids, np.full(n, T0 + 60 * i), sids * 1000.0 + i)
    before = store.nbytes()
    assert len(store._slabs) == 3
    assert store.free(None, T0 + 60 * 8 * 3) == 3 * n  # blocks 0..2 of every series
    assert store.compact() == 2 and store.nbytes() < before
    for sid in (0, 517, 999):
        r = store.read(["c", f"h{sid}"], "x", T0, T0 + 60 * 41)
        assert r.from_ == T0 + 60 * 24 and r.data.tolist() == [sid * 1000.0 + i for i in range(24, 41)]
    # new blocks reuse the freed rows
    for i in range(41, 41 + 8 * 2):
        store.write_batch(sids, np.full(n, T0 + 60 * i), sids * 1000.0 + i)
    assert len(store._slabs) == 2


def test_many_series_grow_the_tables() -> None:
    store = MetricStore([MetricInfo("x", 60, "sum")], block_size=4, initial_capacity=16)
    sids = [store.series_id(["c", f"h{i}"], "x", create=True) for i in range(100)]
    for step in range(10):
        n = len(sids)
        store.write_batch(np.array(sids), np.full(n, T0 + 60 * step), np.arange(n) + step * 1000.0)
        if step == 4:
            sids += [store.series_id(["c", f"g{i}"], "x", create=True) for i in range(100)]
    assert store.read(["c", "h7"], "x", T0, T0 + 600).data.tolist() == [7.0 + 1000 * s for s in range(10)]
    assert store.read(["c", "g7"], "x", T0, T0 + 600).data.tolist() == [
        107.0 + 1000 * s for s in range(5, 10)
    ]
    assert store.read(["c"], "x", T0, T0 + 60).data.tolist() == [sum(range(100))]
