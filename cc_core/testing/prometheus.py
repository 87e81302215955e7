"""Prometheus: a server per test session that tests can fill with recent or historical samples."""

from __future__ import annotations

import shutil
import struct
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ._process import HOST, ServiceProcess, free_port, http_ok, require_binary, require_module

SERVICE = "prometheus"

#: One series for :meth:`PrometheusServer.remote_write`: labels (incl. ``__name__``) and (ts_ms, value) pairs.
Series = tuple[Mapping[str, str], Sequence[tuple[int, float]]]


# --- remote-write protobuf, hand-encoded (prometheus/prompb/remote.proto, types.proto) ----------------
# WriteRequest{1: repeated TimeSeries}; TimeSeries{1: repeated Label, 2: repeated Sample};
# Label{1: string name, 2: string value}; Sample{1: double value, 2: int64 timestamp_ms}.


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1  # int64 negatives are encoded as 10-byte two's complement
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field_bytes(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def encode_write_request(series: Sequence[Series]) -> bytes:
    """Serialize a remote-write ``WriteRequest`` (labels sorted by name, as Prometheus requires)."""
    out = bytearray()
    for labels, samples in series:
        ts = bytearray()
        for name, value in sorted(labels.items()):
            ts += _field_bytes(1, _field_bytes(1, name.encode()) + _field_bytes(2, value.encode()))
        for ts_ms, value in samples:
            sample = b"\x09" + struct.pack("<d", float(value)) + b"\x10" + _varint(int(ts_ms))
            ts += _field_bytes(2, sample)
        out += _field_bytes(1, bytes(ts))
    return bytes(out)


@dataclass
class PrometheusServer:
    """A running Prometheus (remote-write receiver and admin API on, 100 y retention)."""

    url: str
    port: int
    data_dir: Path
    _proc: ServiceProcess | None = field(default=None, repr=False, compare=False)
    _promtool: str = field(default="promtool", repr=False, compare=False)

    def remote_write(self, series: Sequence[Series]) -> None:
        """Push samples through ``/api/v1/write``; timestamps must be recent (newer than the head block)."""
        import cramjam
        import httpx

        body = bytes(cramjam.snappy.compress_raw(encode_write_request(series)))
        resp = httpx.post(
            f"{self.url}/api/v1/write",
            content=body,
            headers={
                "Content-Type": "application/x-protobuf",
                "Content-Encoding": "snappy",
                "X-Prometheus-Remote-Write-Version": "0.1.0",
            },
            trust_env=False,
            timeout=30,
        )
        if resp.status_code // 100 != 2:
            raise RuntimeError(f"remote write failed: {resp.status_code} {resp.text}")

    def backfill(self, openmetrics_text: str) -> None:
        """Load historical samples (OpenMetrics text, timestamps in seconds) and restart Prometheus.

        Remote write rejects samples older than the head block, so old job data goes through
        ``promtool tsdb create-blocks-from openmetrics`` into new TSDB blocks instead.
        """
        assert self._proc is not None, "server is not running"
        text = openmetrics_text.rstrip("\n") + "\n"
        if not text.rstrip().endswith("# EOF"):
            text += "# EOF\n"
        with tempfile.TemporaryDirectory(dir=self.data_dir.parent, prefix="backfill-") as work:
            src, blocks = Path(work) / "input.om", Path(work) / "blocks"
            src.write_text(text)
            result = subprocess.run(
                [self._promtool, "tsdb", "create-blocks-from", "openmetrics", str(src), str(blocks)],
                capture_output=True,
                text=True,
                check=False,
                timeout=120,
            )
            if result.returncode != 0:
                raise RuntimeError(f"promtool failed ({result.returncode}):\n{result.stdout}{result.stderr}")
            self._proc.stop()  # blocks are picked up at startup
            for block in blocks.iterdir():
                shutil.move(str(block), self.data_dir / block.name)
        self._proc.start()
        self._proc.wait_ready(lambda: http_ok(f"{self.url}/-/ready"), timeout=60)


@pytest.fixture(scope="session")
def prometheus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    """Start Prometheus on 127.0.0.1 with no scrape targets: tests push or backfill their data."""
    binary = require_binary(SERVICE, "prometheus", "prometheus")
    promtool = require_binary(SERVICE, "promtool", "prometheus")
    require_module(SERVICE, "cramjam", "cramjam")
    tmp = tmp_path_factory.mktemp("prometheus")
    data_dir = tmp / "data"
    data_dir.mkdir()
    config = tmp / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 15s\nscrape_configs: []\n")
    port = free_port()
    url = f"http://{HOST}:{port}"
    proc = ServiceProcess(
        SERVICE,
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={data_dir}",
            f"--web.listen-address={HOST}:{port}",
            "--web.enable-remote-write-receiver",
            "--web.enable-admin-api",
            "--storage.tsdb.retention.time=100y",
            "--log.level=warn",
        ],
        tmp / "prometheus.log",
        cwd=tmp,
    ).start()
    try:
        proc.wait_ready(lambda: http_ok(f"{url}/-/ready"), timeout=30)
        yield PrometheusServer(url=url, port=port, data_dir=data_dir, _proc=proc, _promtool=promtool)
    finally:
        proc.stop()
