"""A site installs only what it asks for: `pip install ".[ccms]"` gives the core and that plugin only."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _uv() -> str:
    uv = shutil.which("uv") or str(ROOT / ".tools" / "bin" / "uv")
    if not Path(uv).exists():
        pytest.skip("uv is not available")
    return uv


@pytest.mark.slow
def test_extra_installs_only_core_and_that_plugin(tmp_path: Path) -> None:
    uv = _uv()
    wheels = tmp_path / "wheels"
    subprocess.run(
        [uv, "build", "--quiet", "--package", "clustercockpit-metric-ccms", "--wheel", "-o", str(wheels)],
        cwd=ROOT,
        check=True,
        timeout=300,
    )
    venv = tmp_path / "venv"
    subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    # --no-sources: resolve like pip does (from the index and --find-links), not from the workspace.
    subprocess.run(
        [
            uv,
            "pip",
            "install",
            "--quiet",
            "--no-sources",
            "--python",
            str(py),
            "--find-links",
            str(wheels),
            f"{ROOT}[ccms]",
        ],
        check=True,
        timeout=600,
    )
    out = subprocess.run(
        [str(venv / "bin" / "clustercockpit"), "plugins", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    listing = [p for p in json.loads(out.stdout) if not p["builtin"]]
    assert [(p["name"], p["distribution"]) for p in listing] == [
        ("metric-ccms", "clustercockpit-metric-ccms")
    ]
    probe = subprocess.run(
        [
            str(py),
            "-c",
            "import importlib.util as u; print([m for m in ('cc_archive_s3','cc_auth_ldap',"
            "'cc_metric_prometheus','obstore','ldap3') if u.find_spec(m)])",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert probe.stdout.strip() == "[]", probe.stdout + probe.stderr
