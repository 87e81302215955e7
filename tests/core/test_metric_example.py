"""The worked example plugin (examples/metric_example, docs/plugins.md) stays working: its own test
suite (the core's metric contract against CSV files) passes, and its hook registers kind ``example-csv``.
It is not a workspace member (it stands for a third-party plugin), so it is put on ``sys.path`` here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cc_core.plugins import make_plugin_manager

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "metric_example"


@pytest.fixture
def on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLE))


def test_hook_registers_the_backend(on_path: None) -> None:
    import cc_metric_example
    from cc_metric_example.backend import CSVBackend

    registry = make_plugin_manager(load_entrypoints=False, extra_plugins=[cc_metric_example])
    assert registry.get("metric", "example-csv").cls is CSVBackend  # type: ignore[union-attr]


def test_example_suite_passes() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(EXAMPLE), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=EXAMPLE,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout and "failed" not in proc.stdout
