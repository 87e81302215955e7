"""Checkpoints and WAL in upstream's byte layouts: round trips, hand-built upstream files, damaged WALs."""

from __future__ import annotations

import json
import logging
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from cc_metric_ccms.checkpoint import (
    CheckpointFile,
    CheckpointLevel,
    CheckpointMetric,
    decode_binary,
    decode_json,
    encode_binary,
    encode_json,
    load_directory,
    select_files,
)
from cc_metric_ccms.engine import MetricStoreEngine
from cc_metric_ccms.store import MetricStore
from cc_metric_ccms.wal import WAL_NAME, WalEncoder, decode_mid, read_wal
from ccms_testlib import make_config, simple_metrics

T0 = 1_700_000_000


# ------------------------------------------------------------------ independent writers of the formats


def go_snapshot(frm: int, to: int, level: dict) -> bytes:
    """A ``.bin`` written field by field from the format description (walCheckpoint.go)."""

    def lvl(d: dict) -> bytes:
        out = struct.pack("<I", len(d.get("metrics", {})))
        for name, (freq, start, data) in d.get("metrics", {}).items():
            out += (
                struct.pack("<H", len(name))
                + name.encode()
                + struct.pack("<q", freq)
                + struct.pack("<q", start)
            )
            out += struct.pack("<I", len(data)) + b"".join(struct.pack("<f", v) for v in data)
        out += struct.pack("<I", len(d.get("children", {})))
        for name, child in d.get("children", {}).items():
            out += struct.pack("<H", len(name)) + name.encode() + lvl(child)
        return out

    return struct.pack("<I", 0xCC5B0001) + struct.pack("<q", frm) + struct.pack("<q", to) + lvl(level)


def go_wal_record(ts: int, metric: str, sel: list[str], value: float) -> bytes:
    payload = struct.pack("<q", ts) + struct.pack("<H", len(metric)) + metric.encode() + bytes([len(sel)])
    for s in sel:
        payload += bytes([len(s)]) + s.encode()
    payload += struct.pack("<f", value)
    return struct.pack("<II", 0xCC1DA7A1, len(payload)) + payload + struct.pack("<I", zlib.crc32(payload))


def go_wal(records: list[tuple[int, str, list[str], float]]) -> bytes:
    return struct.pack("<I", 0xCC1DA701) + b"".join(go_wal_record(*r) for r in records)


def engine(tmp_path: Path, now: int, **kw) -> MetricStoreEngine:
    cfg = make_config(tmp_path / "ckpt", **kw)
    return MetricStoreEngine(cfg, simple_metrics(), fsync=False, clock=lambda: now)


def read(
    eng: MetricStoreEngine | MetricStore, path: list[str], metric: str, frm: int, to: int
) -> list[float]:
    store = eng.store if isinstance(eng, MetricStoreEngine) else eng
    return store.read(path, metric, frm, to).data.tolist()


# ------------------------------------------------------------------------------------------- tests


def test_upstream_checkpoint_directory_loads(tmp_path: Path) -> None:
    """A directory as Go cc-metric-store leaves it: JSON and binary snapshots and a WAL."""
    root = tmp_path / "ckpt"
    host = root / "fritz" / "f0101"
    host.mkdir(parents=True)
    (host / f"{T0}.bin").write_bytes(
        go_snapshot(
            T0,
            T0 + 180,
            {
                "metrics": {"cpu_load": (60, T0, [1.0, 2.0, float("nan")])},
                "children": {
                    "hwthread0": {
                        "metrics": {"flops_any": (60, T0, [5.0, 6.0, 7.0]), "retired": (60, T0, [1.0])}
                    }
                },
            },
        )
    )
    doc = {
        "metrics": {"cpu_load": {"frequency": 60, "start": T0 + 180, "data": [4.0, None, 6.5]}},
        "children": {},
        "from": T0 + 180,
        "to": T0 + 360,
    }
    (host / f"{T0 + 180}.json").write_text(json.dumps(doc))
    (host / WAL_NAME).write_bytes(
        go_wal(
            [
                (T0 + 360, "cpu_load", [], 7.0),
                (T0 + 360, "flops_any", ["hwthread0"], 8.0),
                (T0 + 360, "nope", [], 1),
            ]
        )
    )
    (host / "123.bin.tmp").write_bytes(b"garbage from an interrupted write")
    store = MetricStore(simple_metrics())
    rep = load_directory(store, root, T0 - 3600)
    assert (rep.files, rep.wal_files, rep.wal_records, rep.errors) == (2, 1, 3, [])
    got = read(store, ["fritz", "f0101"], "cpu_load", T0, T0 + 420)
    assert got[:2] == [1, 2] and np.isnan(got[2]) and got[3] == 4 and np.isnan(got[4]) and got[5:] == [6.5, 7]
    assert read(store, ["fritz", "f0101", "hwthread0"], "flops_any", T0, T0 + 420)[:3] == [5, 6, 7]
    assert read(store, ["fritz", "f0101", "hwthread0"], "flops_any", T0 + 360, T0 + 420) == [8]


def test_binary_snapshot_bytes_match_the_format(tmp_path: Path) -> None:
    cf = CheckpointFile(
        T0,
        T0 + 120,
        CheckpointLevel(
            {"cpu_load": CheckpointMetric(60, T0, np.array([1.5, np.nan], dtype=np.float32))},
            {
                "socket0": CheckpointLevel(
                    {"flops_any": CheckpointMetric(60, T0 + 60, np.array([2.0], dtype=np.float32))}
                )
            },
        ),
    )
    expected = go_snapshot(
        T0,
        T0 + 120,
        {
            "metrics": {"cpu_load": (60, T0, [1.5, float("nan")])},
            "children": {"socket0": {"metrics": {"flops_any": (60, T0 + 60, [2.0])}}},
        },
    )
    assert encode_binary(cf) == expected
    back = decode_binary(expected)
    assert back.root.children["socket0"].metrics["flops_any"].start == T0 + 60
    j = decode_json(encode_json(cf))
    assert (j.from_, j.to) == (T0, T0 + 120)
    np.testing.assert_array_equal(j.root.metrics["cpu_load"].data, cf.root.metrics["cpu_load"].data)
    # JSON keeps full float32 precision (upstream writes 1 decimal) and writes NaN as null.
    small = CheckpointFile(
        0, 1, CheckpointLevel({"x": CheckpointMetric(60, 0, np.array([0.04, np.nan], np.float32))})
    )
    text = encode_json(small).decode()
    assert '"data":[0.04,null]' in text and json.loads(text)["from"] == 0
    with pytest.raises(ValueError, match="magic"):
        decode_binary(b"\0" * 20)
    with pytest.raises(ValueError, match="end of file"):
        decode_binary(expected[:-3])


def test_wal_records_match_the_format() -> None:
    store = MetricStore(simple_metrics())
    a = store.series_id(["fritz", "h1"], "cpu_load", create=True)
    b = store.series_id(["fritz", "h1", "socket0", "memctrl1"], "flops_any", create=True)
    c = store.series_id(["fritz", "h2", "hwthread12"], "flops_any", create=True)
    sids = np.array([a, b, c, a, b])
    ts = np.array([T0, T0, T0 + 60, T0 + 60, -5])
    vals = np.array([1.25, -3.5, 1e30, np.nan, 0.0])
    out = WalEncoder(store).encode(sids, ts, vals)
    by_host: dict[int, bytes] = {}
    for hi, data in out:
        by_host[hi] = by_host.get(hi, b"") + data
    expect_h1 = [
        go_wal_record(T0, "cpu_load", [], 1.25),
        go_wal_record(T0, "flops_any", ["socket0", "memctrl1"], -3.5),
    ]
    expect_h1 += [
        go_wal_record(T0 + 60, "cpu_load", [], float("nan")),
        go_wal_record(-5, "flops_any", ["socket0", "memctrl1"], 0.0),
    ]
    records_h1 = sorted(expect_h1)
    got_h1 = by_host[0]
    pos, got = 0, []
    while pos < len(got_h1):
        (plen,) = struct.unpack_from("<I", got_h1, pos + 4)
        got.append(got_h1[pos : pos + 12 + plen])
        pos += 12 + plen
    assert sorted(got) == records_h1
    assert by_host[1] == go_wal_record(T0 + 60, "flops_any", ["hwthread12"], 1e30)


def test_checkpoint_rotates_wal_and_restart_restores(tmp_path: Path) -> None:
    eng = engine(tmp_path, T0 + 600)
    eng.start()
    body = b"\n".join(
        b"cpu_load,hostname=h%d value=%d %d" % (h, i, T0 + 60 * i) for i in range(10) for h in range(3)
    )
    eng.ingest(body, "fritz")
    eng.flush()
    wal = tmp_path / "ckpt" / "fritz" / "h0" / WAL_NAME
    assert wal.stat().st_size > 4
    assert eng.checkpoint() == 3
    assert not wal.exists() and len(list(wal.parent.glob("*.bin"))) == 1
    eng.ingest(b"cpu_load,hostname=h0 value=10 %d" % (T0 + 600), "fritz")
    eng.flush()
    assert wal.exists()
    # no close(): a crash after the flush
    again = engine(tmp_path, T0 + 700)
    rep = again.start()
    assert rep.files == 3 and rep.wal_records == 1
    assert read(again, ["fritz", "h0"], "cpu_load", T0, T0 + 660) == [float(i) for i in range(11)]
    assert read(again, ["fritz", "h2"], "cpu_load", T0, T0 + 660) == [float(i) for i in range(10)]


def test_json_format_round_trip_without_wal(tmp_path: Path) -> None:
    eng = engine(tmp_path, T0 + 600, file_format="json")
    eng.start()
    eng.ingest(
        b"\n".join(b"cpu_load,hostname=h value=%d.25 %d" % (i, T0 + 60 * i) for i in range(5)), "fritz"
    )
    assert eng.wal is None
    eng.close()
    files = list((tmp_path / "ckpt" / "fritz" / "h").iterdir())
    assert [f.suffix for f in files] == [".json"]
    again = engine(tmp_path, T0 + 700, file_format="json")
    again.start()
    assert read(again, ["fritz", "h"], "cpu_load", T0, T0 + 300) == [i + 0.25 for i in range(5)]


def test_wal_left_by_a_crash_is_covered_by_the_next_checkpoint(tmp_path: Path) -> None:
    """Upstream's first checkpoint after a restart starts at the restart, and then rotates the WAL away."""
    a = engine(tmp_path, T0 + 600)
    a.start()
    a.ingest(b"\n".join(b"cpu_load,hostname=h value=%d %d" % (i, T0 + 60 * i) for i in range(5)), "fritz")
    a.flush()  # crash here
    b = engine(tmp_path, T0 + 3600)
    b.start()
    b.checkpoint()
    assert not (tmp_path / "ckpt" / "fritz" / "h" / WAL_NAME).exists()
    c = engine(tmp_path, T0 + 3700)
    c.start()
    assert read(c, ["fritz", "h"], "cpu_load", T0, T0 + 300) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("damage", ["crc", "truncated", "garbage"])
def test_damaged_wal_tail_is_truncated_at_the_last_good_record(
    tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    host = tmp_path / "ckpt" / "fritz" / "h"
    host.mkdir(parents=True)
    records = [(T0 + 60 * i, "cpu_load", [], float(i)) for i in range(6)]
    good = go_wal(records[:5])
    last = bytearray(go_wal_record(*records[5]))
    if damage == "crc":
        last[-6] ^= 0xFF  # flip a bit of the value: CRC no longer matches
    elif damage == "truncated":
        last = last[:-7]
    else:
        last = bytearray(b"\x00\x01garbage!")
    (host / WAL_NAME).write_bytes(good + bytes(last))
    with caplog.at_level(logging.WARNING):
        contents = read_wal(host / WAL_NAME)
    assert len(contents.mids) == 5 and contents.error
    assert "truncating" in caplog.text and str(host / WAL_NAME) in caplog.text
    assert (host / WAL_NAME).read_bytes() == good
    # After the repair, new records appended by a restarted store are replayed again.
    eng = engine(tmp_path, T0 + 600)
    eng.start()
    eng.ingest(b"cpu_load,hostname=h value=50 %d" % (T0 + 600), "fritz")
    eng.flush()
    again = engine(tmp_path, T0 + 700)
    again.start()
    got = read(again, ["fritz", "h"], "cpu_load", T0, T0 + 660)
    assert got[:5] == [0, 1, 2, 3, 4] and np.isnan(got[5:10]).all() and got[10] == 50


def test_max_wal_size_snapshots_the_host_before_rotating(tmp_path: Path) -> None:
    eng = engine(tmp_path, T0 + 3600, max_wal_size=2000)
    eng.start()
    for i in range(60):
        eng.ingest(b"cpu_load,hostname=h value=%d %d" % (i, T0 + 60 * i), "fritz")
        eng.flush()
    wal = tmp_path / "ckpt" / "fritz" / "h" / WAL_NAME
    assert wal.stat().st_size < 2000 + 100
    assert list(wal.parent.glob("*.bin"))
    again = engine(tmp_path, T0 + 3700)
    again.start()
    assert read(again, ["fritz", "h"], "cpu_load", T0, T0 + 3600) == [float(i) for i in range(60)]


def test_file_selection_and_retention_on_load(tmp_path: Path) -> None:
    names = ["100.bin", "200.json", "300.bin", "current.wal", "x.bin", "250.bin.tmp"]
    assert select_files(names, 250) == ["200.json", "300.bin"]
    assert select_files(names, 50) == ["100.bin", "200.json", "300.bin"]
    assert select_files(names, 400) == []
    host = tmp_path / "ckpt" / "c" / "h"
    host.mkdir(parents=True)
    (host / f"{T0}.bin").write_bytes(go_snapshot(T0, T0 + 60, {"metrics": {"cpu_load": (60, T0, [1.0])}}))
    (host / f"{T0 + 7200}.bin").write_bytes(
        go_snapshot(T0 + 7200, T0 + 7260, {"metrics": {"cpu_load": (60, T0 + 7200, [2.0])}})
    )
    store = MetricStore(simple_metrics())
    rep = load_directory(store, tmp_path / "ckpt", T0 + 3600)
    assert rep.files == 1 and read(store, ["c", "h"], "cpu_load", T0, T0 + 7300) == [2.0]


def test_older_json_checkpoint_shape_loads(tmp_path: Path) -> None:
    """Older cc-metric-store JSON checkpoints carry ``unit`` per metric and ``from``/``to`` per level."""
    child = {
        "from": T0,
        "to": T0 + 70,
        "metrics": {
            "flops_any": {"frequency": 5, "start": T0, "unit": "MFLOP/s", "data": [0.5, 0.0, 12.5]},
            "cpi": {"frequency": 5, "start": T0 + 1, "unit": "", "data": [1.5]},  # not configured: skipped
        },
        "children": {},
    }
    doc = {"from": T0, "to": T0 + 70, "metrics": {}, "children": {"hwthread0": child, "hwthread1": child}}
    host = tmp_path / "fritz" / "f0131"
    host.mkdir(parents=True)
    (host / f"{T0}.json").write_text(json.dumps(doc))
    store = MetricStore(simple_metrics())
    rep = load_directory(store, tmp_path, T0 - 10)
    assert rep.files == 1 and rep.errors == []
    assert read(store, ["fritz", "f0131"], "flops_any", T0, T0 + 15) == [
        1.0,
        0.0,
        25.0,
    ]  # summed, freq from file
    assert store.read(["fritz", "f0131", "hwthread1"], "flops_any", T0, T0 + 15).resolution == 5


def test_flush_racing_a_rotation_is_harmless(tmp_path: Path) -> None:
    eng = engine(tmp_path, T0 + 600)
    eng.start()
    eng.ingest(b"cpu_load,hostname=h value=1 %d" % T0, "fritz")
    assert eng.wal is not None
    pending = eng.wal.take_pending()  # a flush detached these records, then a checkpoint ran ...
    eng.checkpoint()
    assert eng.wal.write_pending(pending) == 0  # ... the rotated host's records are dropped
    assert not (tmp_path / "ckpt" / "fritz" / "h" / WAL_NAME).exists()
    again = engine(tmp_path, T0 + 700)
    again.start()
    assert read(again, ["fritz", "h"], "cpu_load", T0, T0 + 60) == [1.0]


def test_background_loop_flushes_and_stops(tmp_path: Path) -> None:
    import asyncio

    eng = engine(tmp_path, T0 + 600)
    eng.start()

    async def scenario() -> None:
        task = asyncio.create_task(eng.run(flush_interval=0.02))
        eng.ingest(b"cpu_load,hostname=h value=3 %d" % T0, "fritz")
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    wal = tmp_path / "ckpt" / "fritz" / "h" / WAL_NAME
    assert len(read_wal(wal).mids) == 1


def test_late_samples_are_in_the_next_checkpoint_named_in_sequence(tmp_path: Path) -> None:
    eng = engine(tmp_path, T0)
    eng.start()  # last checkpoint: T0
    eng.ingest(b"cpu_load,hostname=h value=1 %d" % T0, "fritz")
    eng.checkpoint(now=T0 + 300)
    eng.ingest(b"cpu_load,hostname=h value=2 %d" % (T0 + 360), "fritz")
    eng.ingest(b"cpu_load,hostname=h value=5 %d" % (T0 + 120), "fritz")  # late: before the checkpoint
    eng.checkpoint(now=T0 + 400)
    files = sorted(p.name for p in (tmp_path / "ckpt" / "fritz" / "h").iterdir())
    assert files == [f"{T0}.bin", f"{T0 + 300}.bin"]  # names follow the checkpoint sequence
    again = engine(tmp_path, T0 + 500)
    again.start()
    r = again.store.read(["fritz", "h"], "cpu_load", T0, T0 + 420)
    assert r.data[[0, 2, 6]].tolist() == [1, 5, 2]


def test_deferred_wal_encoding_survives_series_id_reuse(tmp_path: Path) -> None:
    """Ingest keeps WAL batches unencoded until the flush; freeing series in between (their ids are
    then reused by new series) must not relabel the records that are still waiting."""
    eng = engine(tmp_path, T0 + 600)
    eng.start()
    assert eng.wal is not None
    eng.ingest(b"cpu_load,hostname=old value=1 %d\nmem_used,hostname=old value=2 %d" % (T0, T0), "fritz")
    assert eng.wal._raw, "encoding is deferred"
    assert eng.free([["fritz", "old"]], T0 + 3600) > 0  # releases both series: their ids become free
    assert not eng.wal._raw, "the pending batch was encoded before the ids were released"
    eng.ingest(b"flops_any,hostname=new value=3 %d" % T0, "fritz")  # takes a released id
    eng.flush()
    old = read_wal(tmp_path / "ckpt" / "fritz" / "old" / WAL_NAME)
    new = read_wal(tmp_path / "ckpt" / "fritz" / "new" / WAL_NAME)
    got = sorted(zip((decode_mid(m)[0] for m in old.mids), old.values.tolist(), strict=True))
    assert got == [("cpu_load", 1.0), ("mem_used", 2.0)]
    assert [decode_mid(m)[0] for m in new.mids] == ["flops_any"] and new.values.tolist() == [3.0]


def test_a_detached_flush_encodes_with_the_series_of_its_time(tmp_path: Path) -> None:
    """A flush detaches its batches under the lock and encodes them afterwards: series released and
    their ids reused in between must not change what those records say."""
    eng = engine(tmp_path, T0 + 600)
    eng.start()
    assert eng.wal is not None
    eng.ingest(b"cpu_load,hostname=old value=1 %d\nmem_used,hostname=old value=2 %d" % (T0, T0), "fritz")
    with eng.lock:
        first = eng.wal.take_pending()
    assert first.raw is not None
    eng.free([["fritz", "old"]], T0 + 3600)
    eng.ingest(b"flops_any,hostname=new value=3 %d\nflops_any,hostname=new2 value=4 %d" % (T0, T0), "fritz")
    with eng.lock:
        second = eng.wal.take_pending()  # prepares the reused ids anew (tables reset)
    assert eng.wal.write_pending(second) > 0
    assert eng.wal.write_pending(first) > 0
    old = read_wal(tmp_path / "ckpt" / "fritz" / "old" / WAL_NAME)
    got = sorted(zip((decode_mid(m)[0] for m in old.mids), old.values.tolist(), strict=True))
    assert got == [("cpu_load", 1.0), ("mem_used", 2.0)]
    for host, value in (("new", 3.0), ("new2", 4.0)):
        w = read_wal(tmp_path / "ckpt" / "fritz" / host / WAL_NAME)
        assert [decode_mid(m)[0] for m in w.mids] == ["flops_any"] and w.values.tolist() == [value]
