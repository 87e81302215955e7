"""LTTB: properties, upstream's applicability rules, and agreement with a plain loop version."""

from __future__ import annotations

import math

import numpy as np
import pytest
from cc_metric_ccms.lttb import lttb, lttb_rows, target_length


def reference(data: list[float], m: int) -> list[float]:
    """Upstream's algorithm written out as a scalar loop (the spec the vectorised one must match)."""
    n = len(data)
    size = (n - 2) / (m - 2)
    out = [data[0]]
    low, mid = 1, math.floor(size) + 1
    prev = 0
    for i in range(m - 2):
        high = math.floor((i + 2) * size) + 1
        if high >= n - 1:
            high = n - 2
        nxt = data[mid : high + 1]
        if nxt:
            ax_ = sum(range(mid, high + 1)) / len(nxt)
            ay_ = math.nan if any(math.isnan(v) for v in nxt) else sum(nxt) / len(nxt)
        else:
            ax_ = ay_ = math.nan
        px, py = prev, data[prev]
        best, best_area = 0, -1.0
        for c in range(low, mid):
            area = abs((px - ax_) * (data[c] - py) - (px - c) * (ay_ - py)) * 0.5
            if area > best_area or math.isnan(area):
                best_area, best = area, c
        out.append(data[best])
        prev = best
        low, mid = mid, high
    out.append(data[-1])
    return out


def same(a: list[float], b: list[float]) -> bool:
    return len(a) == len(b) and all(
        x == y or (math.isnan(x) and math.isnan(y)) for x, y in zip(a, b, strict=True)
    )


@pytest.mark.parametrize(("n", "m"), [(1440, 144), (1000, 333), (1234, 617), (50, 3), (10, 9), (2000, 4)])
def test_matches_reference_loop(n: int, m: int) -> None:
    rng = np.random.default_rng(n + m)
    data = np.cumsum(rng.normal(size=n))
    data[rng.integers(0, n, size=n // 20)] = np.nan  # gaps
    got = lttb_rows(data[None, :], m)[0].tolist()
    assert same(got, reference(data.tolist(), m))


def test_properties() -> None:
    rng = np.random.default_rng(7)
    rows = rng.normal(size=(5, 1440))
    out = lttb_rows(rows, 144)
    assert out.shape == (5, 144)
    for r in range(5):
        assert out[r, 0] == rows[r, 0] and out[r, -1] == rows[r, -1]  # ends kept
        assert set(out[r].tolist()) <= set(rows[r].tolist())  # only original points
        # each row equals its own single-row computation (rows are independent)
        np.testing.assert_array_equal(out[r], lttb_rows(rows[r : r + 1], 144)[0])
    # picks extremes: a spike survives downsampling
    spike = np.zeros(1440)
    spike[700] = 100.0
    assert lttb_rows(spike[None, :], 144)[0].max() == 100.0


def test_applicability_rules() -> None:
    data = np.arange(1440, dtype=np.float64)
    out, freq = lttb(data, 60, 600, minimum_points=1000)
    assert (len(out), freq) == (144, 600)
    assert lttb(data, 60, 60)[1] == 60 and len(lttb(data, 60, 30)[0]) == 1440  # not coarser
    assert lttb(data[:999], 60, 600, minimum_points=1000)[1] == 60  # too few points
    assert target_length(1440, 60, 600, 1000) == 144
    with pytest.raises(ValueError, match="multiple"):
        lttb(data, 60, 90)
