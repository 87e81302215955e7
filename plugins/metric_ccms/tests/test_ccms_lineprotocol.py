"""Line-protocol ingest: what cc-metric-collector sends, escapes, bad input and batch atomicity."""

from __future__ import annotations

import math

import numpy as np
import pytest
from cc_metric_ccms.lineprotocol import LineProtocolDecoder, LineProtocolError, parse_key, ts_to_seconds
from cc_metric_ccms.store import MetricStore
from ccms_testlib import simple_metrics

T0 = 1_700_000_000


def ingest(store: MetricStore, body: bytes, cluster: str | None = "fritz", now: int = T0):
    dec = LineProtocolDecoder(store)
    batch = dec.parse(body, cluster, now)
    sids, ts, values, res = dec.apply(batch)
    st = store.write_batch(sids, ts, values)
    res.stored, res.stale = st.written, st.stale
    return res


def value_at(store: MetricStore, path: list[str], metric: str, ts: int) -> float:
    r = store.read(path, metric, ts, ts + 1)
    return float(r.data[0]) if len(r.data) else math.nan


@pytest.fixture
def store() -> MetricStore:
    return MetricStore(simple_metrics())


def test_tags_in_any_order_host_alias_and_types(store: MetricStore) -> None:
    body = b"\n".join(
        [
            b"flops_any,hostname=a,cluster=fritz,type=hwthread,type-id=3 value=1.5 %d" % T0,
            b"flops_any,type-id=4,type=hwthread,host=a value=2 %d" % T0,  # type-id before type, `host`
            b"flops_any,cluster=fritz,host=a,type=socket,type-id=0,stype=memctrl,stype-id=1 value=3 %d" % T0,
            b"flops_any,stype-id=2,stype=memctrl,type-id=0,type=socket,hostname=a value=4 %d" % T0,
            b"cpu_load,cluster=fritz,hostname=a,type=node,type-id=0 value=0.5 %d" % T0,
            b"cpu_load,hostname=b,unit=load,other=x value=7 %d" % T0,  # other tags ignored
        ]
    )
    res = ingest(store, body)
    assert res.lines == 6 and res.stored == 6
    assert store.list_children(["fritz", "a"]) == ["hwthread3", "hwthread4", "socket0"]
    assert store.list_children(["fritz", "a", "socket0"]) == ["memctrl1", "memctrl2"]
    assert value_at(store, ["fritz", "a", "hwthread4"], "flops_any", T0) == 2.0
    assert value_at(store, ["fritz", "a", "socket0", "memctrl1"], "flops_any", T0) == 3.0
    assert value_at(store, ["fritz", "a"], "cpu_load", T0) == 0.5  # type=node is the host level
    assert value_at(store, ["fritz", "b"], "cpu_load", T0) == 7.0


def test_value_types_and_number_syntax(store: MetricStore) -> None:
    cases = [
        b"1",
        b"-1.5",
        b"2.5e3",
        b"1E-2",
        b".5",
        b"3.",
        b"+4",
        b"42i",
        b"-42i",
        b"42u",
        b"9223372036854775807i",
    ]
    body = b"\n".join(b"cpu_load,hostname=h%d value=%s %d" % (i, v, T0) for i, v in enumerate(cases))
    res = ingest(store, body)
    assert res.stored == len(cases)
    got = [value_at(store, ["fritz", f"h{i}"], "cpu_load", T0) for i in range(len(cases))]
    want = [1, -1.5, 2500, 0.01, 0.5, 3, 4, 42, -42, 42, float(np.float32(9223372036854775807))]
    assert got == pytest.approx(want)


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [(T0, T0), (T0 * 1000 + 999, T0), (T0 * 10**6 + 5, T0), (T0 * 10**9 + 123, T0), (0, 0), (5, 5)],
)
def test_timestamp_precision_is_detected(raw: int, seconds: int) -> None:
    assert ts_to_seconds(raw) == seconds


def test_timestamps_in_a_body_and_missing_timestamp(store: MetricStore) -> None:
    body = (
        b"cpu_load,hostname=s value=1 %d\n"
        b"cpu_load,hostname=ms value=2 %d\n"
        b"cpu_load,hostname=us value=3 %d\n"
        b"cpu_load,hostname=ns value=4 %d\n" % (T0, T0 * 1000, T0 * 10**6, T0 * 10**9)
    )
    assert ingest(store, body).stored == 4
    for i, h in enumerate(("s", "ms", "us", "ns"), 1):
        assert value_at(store, ["fritz", h], "cpu_load", T0) == i
    assert ingest(store, b"cpu_load,hostname=now value=9\n", now=T0 + 120).stored == 1
    assert value_at(store, ["fritz", "now"], "cpu_load", T0 + 120) == 9


def test_escapes_comments_blank_lines_and_crlf(store: MetricStore) -> None:
    body = (
        b"# a comment\r\n"
        b"\r\n"
        b"cpu_load,hostname=node\\ 1,cluster=c\\,x value=1 %d\r\n"
        b"cpu_load,hostname=n\\=2 value=2 %d\n"
        b"   \n"
        b"cpu\\ load,hostname=x value=3 %d\n" % (T0, T0, T0)  # measurement "cpu load": unknown metric
    )
    res = ingest(store, body)
    assert (res.lines, res.stored, res.unknown) == (3, 2, 1)
    assert value_at(store, ["c,x", "node 1"], "cpu_load", T0) == 1
    assert value_at(store, ["fritz", "n=2"], "cpu_load", T0) == 2
    assert parse_key(b"m\\,1,a\\ b=c\\=d") == ("m,1", {"a b": "c=d"})


def test_unknown_metrics_and_path_traversal_are_dropped_and_counted(store: MetricStore) -> None:
    body = b"\n".join(
        [
            b"nope,hostname=a value=1 %d" % T0,
            b"cpu_load,hostname=../etc value=1 %d" % T0,
            b"cpu_load,hostname=a/b value=1 %d" % T0,
            b"cpu_load,hostname=a,cluster=x\\\\y value=1 %d" % T0,  # cluster "x\y"
            b"cpu_load,hostname=ok value=1 %d" % T0,
        ]
    )
    res = ingest(store, body)
    assert (res.lines, res.stored, res.unknown, res.invalid) == (5, 1, 1, 3)
    assert store.list_children(["fritz"]) == ["ok"]
    assert store.list_children() == ["fritz"]


BAD = [
    (b"cpu_load,hostname=a value=x", "invalid number"),
    (b"cpu_load,hostname=a", "missing fields"),
    (b"cpu_load,hostname=a ", "missing fields"),
    (b"cpu_load,hostname=a other=1", "unknown field 'other'"),
    (b"cpu_load,hostname=a value=1,other=2", "unknown field 'other'"),
    (b'cpu_load,hostname=a value="1"', "unsupported value type string"),
    (b"cpu_load,hostname=a value=true", "unsupported value type bool"),
    (b"cpu_load,hostname=a value=1 12x", "invalid timestamp"),
    (b"cpu_load,hostname=a value=1 99999999999999999999", "timestamp out of range"),
    (b"cpu_load,hostname=a value=1 1 2", "unexpected data after the timestamp"),
    (b"cpu_load,hostname=a\\", "bad escape"),
    (b'cpu_load,hostname=a value="open', "unterminated string"),
    (b"cpu_load,hostname= value=1", "empty tag key or value"),
    (b"cpu_load,hostname value=1", "tag without value"),
    (b"cpu_load,hostname=a value=1e999", "out of range"),
    (b"cpu_load,hostname=a value=99999999999999999999i", "out of range"),
    (b"cpu_load,hostname=a value=", "missing field value"),
    (b",hostname=a value=1", "missing measurement"),
]


@pytest.mark.parametrize(("line", "message"), BAD)
@pytest.mark.parametrize("slow", [False, True], ids=["plain-body", "body-with-comment"])
def test_malformed_line_is_reported_with_its_number(
    store: MetricStore, line: bytes, message: str, slow: bool
) -> None:
    good = b"cpu_load,hostname=good value=1 %d" % T0
    lines = [good, good, line, good]
    if slow:  # a comment forces the general parser, which must count it as a line
        lines.insert(0, b"# comment")
    with pytest.raises(LineProtocolError) as exc:
        ingest(store, b"\n".join(lines))
    assert exc.value.line == (4 if slow else 3)
    assert message in exc.value.message
    assert f"line {exc.value.line}:" in str(exc.value)


def test_rejected_batch_stores_nothing(store: MetricStore) -> None:
    ingest(store, b"cpu_load,hostname=old value=1 %d" % T0)
    body = b"\n".join(
        [b"cpu_load,hostname=new%d value=%d %d" % (i, i, T0 + 60) for i in range(100)]
        + [b"cpu_load,hostname=old value=5 %d" % (T0 + 60), b"cpu_load,hostname=bad value=oops %d" % T0]
    )
    with pytest.raises(LineProtocolError) as exc:
        ingest(store, body)
    assert exc.value.line == 102
    assert store.list_children(["fritz"]) == ["old"]  # no series or level was created
    assert store.read(["fritz", "old"], "cpu_load", T0, T0 + 120).data.tolist() == [1.0]
    # The same keys are accepted afterwards (nothing stale was cached).
    assert ingest(store, body.rsplit(b"\n", 1)[0]).stored == 101


def test_cluster_from_tag_default_or_error(store: MetricStore) -> None:
    assert ingest(store, b"cpu_load,hostname=a value=1 %d" % T0, cluster="dflt").stored == 1
    assert ingest(store, b"cpu_load,hostname=a,cluster=tagged value=1 %d" % T0, cluster="dflt").stored == 1
    assert store.list_children() == ["dflt", "tagged"]
    with pytest.raises(LineProtocolError, match="no 'cluster' tag"):
        ingest(store, b"cpu_load,hostname=a value=1 %d" % T0, cluster=None)


def test_fast_and_general_paths_agree(store: MetricStore) -> None:
    rng = np.random.default_rng(1)
    lines = [
        b"flops_any,cluster=fritz,hostname=h%d,type=hwthread,type-id=%d value=%r %d"
        % (i % 7, i % 5, float(rng.normal()), T0 + 60 * (i // 35))
        for i in range(700)
    ]
    other = MetricStore(simple_metrics())
    ingest(store, b"\n".join(lines) + b"\n")
    ingest(other, b"# forces the general parser\n" + b"\n".join(lines))
    for h in range(7):
        a = store.read(["fritz", f"h{h}"], "flops_any", T0, T0 + 3600)
        b = other.read(["fritz", f"h{h}"], "flops_any", T0, T0 + 3600)
        np.testing.assert_array_equal(a.data, b.data)


def test_repeated_series_keys_hit_the_cache(store: MetricStore) -> None:
    dec = LineProtocolDecoder(store)
    body = b"\n".join(b"cpu_load,hostname=h%d value=1 %d" % (i, T0) for i in range(50))
    first = dec.parse(body, "fritz", T0)
    assert len(first.pending) == 50
    dec.apply(first)
    second = dec.parse(body, "fritz", T0)
    assert second.pending == [] and (second.sids >= 0).all()
    # A different default cluster is a different series.
    assert len(dec.parse(body, "other", T0).pending) == 50
