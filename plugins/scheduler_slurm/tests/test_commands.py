"""Running commands: argument lists, a timeout that kills the child, and one error type for every way a
command can fail to answer (real child processes, no Slurm needed)."""

from __future__ import annotations

import time

import anyio
import pytest
from cc_scheduler_slurm.commands import SlurmCommands, SlurmUnavailable


def run(coro_fn, *args):  # type: ignore[no-untyped-def]
    return anyio.run(coro_fn, *args)


def test_timeout_kills_the_command() -> None:
    slurm = SlurmCommands(timeout=0.3)
    t0 = time.monotonic()
    with pytest.raises(SlurmUnavailable, match=r"did not answer within 0\.3 s"):
        run(slurm.run, "sleep", "10")
    assert time.monotonic() - t0 < 5


def test_missing_binary_and_failures_are_unavailable(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SlurmUnavailable, match="cannot run"):
        run(SlurmCommands(bin_dir=str(tmp_path)).run, "squeue", "--json")
    with pytest.raises(SlurmUnavailable, match="exit code 3: oops"):
        run(SlurmCommands().run, "sh", "-c", "echo oops >&2; exit 3")
    with pytest.raises(SlurmUnavailable, match="gave no JSON"):
        run(SlurmCommands().json, "echo", "Slurm accounting storage is disabled")
    assert run(SlurmCommands().text, "false") is None


def test_arguments_are_not_interpreted_by_a_shell_and_slurm_conf_is_passed() -> None:
    slurm = SlurmCommands(slurm_conf="/etc/slurm/test.conf")
    code, out, _ = run(slurm.run, "printf", "%s|%s", "a b; rm -rf /", "$SLURM_CONF")
    assert (code, out) == (0, b"a b; rm -rf /|$SLURM_CONF")
    assert run(slurm.json, "sh", "-c", 'printf \'{"conf": "%s"}\' "$SLURM_CONF"') == {
        "conf": "/etc/slurm/test.conf"
    }
