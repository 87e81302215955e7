"""Running Slurm's client commands: asyncio subprocesses with argument lists, a timeout and a clear error.

Every failure to get an answer from Slurm (command missing, non-zero exit, timeout, output that is not
JSON) is a `SlurmUnavailable`, which the scheduler treats as "try again later" — never as "the job is
gone".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec

log = logging.getLogger(__name__)


class SlurmUnavailable(RuntimeError):
    """A Slurm command could not be run or gave no usable answer."""


class SlurmCommands:
    """Runs ``squeue``, ``sinfo``, ``sacct`` and ``scontrol`` from ``bin_dir`` (or the PATH).

    ``slurm_conf`` sets ``SLURM_CONF`` for the children (a site with several clusters, or a test
    cluster); ``timeout`` bounds each call, after which the child is killed.
    """

    def __init__(self, *, bin_dir: str = "", slurm_conf: str = "", timeout: float = 30.0) -> None:
        self.bin_dir = bin_dir
        self.timeout = timeout
        env = dict(os.environ)
        if slurm_conf:
            env["SLURM_CONF"] = slurm_conf
        self.env: Mapping[str, str] = env

    def _argv(self, args: Sequence[str]) -> list[str]:
        exe = str(Path(self.bin_dir) / args[0]) if self.bin_dir else args[0]
        return [exe, *args[1:]]

    async def run(self, *args: str, check: bool = True) -> tuple[int, bytes, bytes]:
        """Run one command; returns (exit code, stdout, stderr). ``check`` turns a non-zero exit into
        `SlurmUnavailable`."""
        argv = self._argv(args)
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=dict(self.env),
            )
        except OSError as e:
            raise SlurmUnavailable(f"cannot run {argv[0]}: {e}") from None
        try:
            out, err = await asyncio.wait_for(proc.communicate(), self.timeout)
        except (TimeoutError, asyncio.CancelledError) as e:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            if isinstance(e, asyncio.CancelledError):
                raise
            raise SlurmUnavailable(f"{' '.join(args)} did not answer within {self.timeout:g} s") from None
        code = proc.returncode if proc.returncode is not None else -1
        if check and code != 0:
            detail = err.decode(errors="replace").strip() or out.decode(errors="replace").strip()
            raise SlurmUnavailable(f"{' '.join(args)} failed with exit code {code}: {detail[:500]}")
        return code, out, err

    async def json(self, *args: str) -> dict[str, Any]:
        """Run a command with ``--json`` output and decode it."""
        _, out, err = await self.run(*args)
        try:
            doc = msgspec.json.decode(out)
        except msgspec.DecodeError:
            detail = (err or out).decode(errors="replace").strip()
            raise SlurmUnavailable(f"{' '.join(args)} gave no JSON: {detail[:300]}") from None
        if not isinstance(doc, dict):
            raise SlurmUnavailable(f"{' '.join(args)} gave JSON that is not an object")
        errors = doc.get("errors") or []
        if errors:
            log.warning("%s reported errors: %s", " ".join(args), errors)
        return doc

    async def text(self, *args: str) -> str | None:
        """A command's text output, or None when it fails (for optional details like the job script)."""
        try:
            code, out, _ = await self.run(*args, check=False)
        except SlurmUnavailable as e:
            log.debug("%s", e)
            return None
        return out.decode(errors="replace") if code == 0 else None
