"""Largest-Triangle-Three-Buckets downsampling, with upstream's rules (cc-lib ``resampler``).

Shared by the metric dispatcher (archived jobs) and the embedded metric store (live data).

Same decisions as upstream so that a plot looks the same whichever backend served it: the first and
last points are kept; bucket ``i`` spans ``floor(i·size)+1 … floor((i+1)·size)`` with
``size = (n-2)/(m-2)``; the point of a bucket with the largest triangle against the previously chosen
point and the mean of the next bucket wins (the first one on ties); a NaN area (a gap nearby) wins over
any number, the last NaN one if several, so gaps stay visible after downsampling.

Only the choice inside a bucket depends on the previous bucket, so the bucket means are computed for
all buckets at once and the sequential part works on all rows (series) of a 2-D array together: one
pass over the buckets serves every series of a job that shares a length.
"""

from __future__ import annotations

import numpy as np


def target_length(n: int, old_freq: int, new_freq: int, minimum_points: int) -> int:
    """Points after downsampling ``n`` points from ``old_freq`` to ``new_freq`` s, or -1 for "keep
    as is" (upstream ``validateFrequency``). Raises ValueError if ``new_freq`` is not a multiple."""
    if old_freq <= 0 or new_freq <= 0 or new_freq <= old_freq:
        return -1
    if new_freq % old_freq:
        raise ValueError(
            f"new sampling frequency ({new_freq}) must be a multiple of old frequency ({old_freq})"
        )
    m = n // (new_freq // old_freq)
    if m == 0 or n < minimum_points or m >= n:
        return -1
    return m


def lttb(
    data: np.ndarray, old_freq: int, new_freq: int, minimum_points: int = 1000
) -> tuple[np.ndarray, int]:
    """Downsample one series; returns ``(data, frequency)`` — unchanged when not applicable."""
    data = np.asarray(data, dtype=np.float64)
    m = target_length(len(data), old_freq, new_freq, minimum_points)
    if m < 0:
        return data, old_freq
    return lttb_rows(data[None, :], m)[0], new_freq


def lttb_rows(rows: np.ndarray, m: int) -> np.ndarray:
    """LTTB of every row of ``rows`` (R × n, float64) down to ``m`` points each."""
    rows = np.asarray(rows, dtype=np.float64)
    r, n = rows.shape
    if m >= n:
        return rows.copy()
    if m <= 2:
        # Upstream divides by m-2 and ends up with just the first and last point.
        return rows[:, [0, n - 1]].copy()
    out = np.empty((r, m), dtype=np.float64)
    out[:, 0] = rows[:, 0]
    out[:, m - 1] = rows[:, n - 1]
    size = (n - 2) / (m - 2)
    # Bucket edges: bucket i (0-based, the i-th inner point) is [edges[i], edges[i+1]).
    edges = np.floor(np.arange(m - 1) * size).astype(np.int64) + 1
    edges = np.minimum(edges, n - 2)
    edges[0] = 1
    edges[1] = int(np.floor(size)) + 1  # upstream does not clip the first middle edge
    # Mean of the *next* bucket for every bucket: [edges[i+1], high_i] inclusive, high_i clipped.
    highs = np.minimum(np.floor(np.arange(2, m) * size).astype(np.int64) + 1, n - 2)
    mids = edges[1:]
    csum = np.zeros((r, n + 1))
    np.cumsum(np.nan_to_num(rows, nan=0.0), axis=1, out=csum[:, 1:])
    nan_c = np.zeros((r, n + 1), dtype=np.int64)
    np.cumsum(np.isnan(rows), axis=1, out=nan_c[:, 1:])
    cnt = highs + 1 - mids
    with np.errstate(invalid="ignore", divide="ignore"):
        avg_y = (csum[:, highs + 1] - csum[:, mids]) / cnt
        avg_x = (mids + highs) / 2.0
    has_nan = (nan_c[:, highs + 1] - nan_c[:, mids]) > 0
    avg_y[has_nan | (cnt <= 0)] = np.nan
    avg_x = np.where(cnt > 0, avg_x, np.nan)

    prev = np.zeros(r, dtype=np.int64)
    ridx = np.arange(r)
    for i in range(m - 2):
        lo, hi = int(edges[i]), int(mids[i])
        ax = prev.astype(np.float64)
        ay = rows[ridx, prev]
        if hi <= lo:  # empty bucket: upstream picks index 0
            sel = np.zeros(r, dtype=np.int64)
        else:
            cx = avg_x[i]
            cy = avg_y[:, i]
            y = rows[:, lo:hi]
            x = np.arange(lo, hi, dtype=np.float64)
            area = np.abs((ax - cx)[:, None] * (y - ay[:, None]) - (ax[:, None] - x) * (cy - ay)[:, None])
            nanm = np.isnan(area)
            w = hi - lo
            if nanm.any():
                last_nan = w - 1 - np.argmax(nanm[:, ::-1], axis=1)
                best = np.argmax(np.where(nanm, -np.inf, area), axis=1)
                sel = np.where(nanm.any(axis=1), last_nan, best) + lo
            else:
                sel = np.argmax(area, axis=1) + lo
        out[:, i + 1] = rows[ridx, sel]
        prev = sel
    return out
