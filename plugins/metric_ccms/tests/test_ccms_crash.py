"""kill -9 during steady ingest: a restart replays every sample acknowledged before the last WAL flush."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from cc_metric_ccms.engine import MetricStoreEngine
from ccms_testlib import make_config, simple_metrics

T0 = 1_700_000_000
CHILD = Path(__file__).parent / "ccms_crash_child.py"


def test_sigkill_during_ingest_loses_nothing_flushed(tmp_path: Path) -> None:
    root = tmp_path / "ckpt"
    proc = subprocess.Popen(
        [sys.executable, str(CHILD), str(root), str(T0)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    flushed = 0
    deadline = time.monotonic() + 60
    try:
        assert proc.stdout is not None
        while flushed < 700 and time.monotonic() < deadline:  # > 1 block (512) and several checkpoints
            line = proc.stdout.readline()
            if not line:
                break
            flushed = int(line.split()[1])
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert flushed >= 700, f"child did not get far enough: {flushed}; stderr: {err[-2000:]}"
    assert list(root.glob("fritz/h0/*.bin")), "no checkpoint was written before the kill"

    eng = MetricStoreEngine(make_config(root), simple_metrics(), clock=lambda: T0)
    eng.start()
    for h in range(4):
        for c in range(8):
            r = eng.store.read(["fritz", f"h{h}", f"hwthread{c}"], "flops_any", T0, T0 + 60 * flushed)
            expected = np.arange(flushed) * 100.0 + h * 10 + c
            assert r.from_ == T0 and len(r.data) == flushed, (h, c, len(r.data))
            np.testing.assert_array_equal(r.data, expected)
    # Whatever was stored after the last acknowledged flush is either complete or absent, never wrong.
    later = eng.store.read(
        ["fritz", "h0", "hwthread0"], "flops_any", T0 + 60 * flushed, T0 + 60 * (flushed + 100)
    )
    assert np.array_equal(later.data, (np.arange(len(later.data)) + flushed) * 100.0)
