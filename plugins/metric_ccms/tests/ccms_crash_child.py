"""Ingests forever into an embedded store; prints ``flushed N`` once batches 0..N-1 are durable.

Run by test_ccms_crash.py, which SIGKILLs it. Arguments: checkpoint directory, base timestamp.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from cc_metric_ccms.engine import MetricStoreEngine
from ccms_testlib import make_config, simple_metrics


def main() -> None:
    root, t0 = Path(sys.argv[1]), int(sys.argv[2])
    eng = MetricStoreEngine(make_config(root), simple_metrics(), clock=lambda: t0)
    eng.start()
    i = 0
    while True:
        body = b"\n".join(
            b"flops_any,hostname=h%d,type=hwthread,type-id=%d value=%d %d"
            % (h, c, i * 100 + h * 10 + c, t0 + 60 * i)
            for h in range(4)
            for c in range(8)
        )
        eng.ingest(body, "fritz")
        i += 1
        if i % 97 == 0:
            eng.checkpoint()
        if i % 5 == 0:
            eng.flush()
            print(f"flushed {i}", flush=True)


if __name__ == "__main__":
    main()
