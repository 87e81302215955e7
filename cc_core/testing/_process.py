"""Shared plumbing for the service fixtures: ports, polling, binaries and child processes.

Everything here is stdlib-only so that importing the pytest plugin (which pytest does for every
run in this environment) stays cheap.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import NoReturn, TypeVar

import pytest

T = TypeVar("T")

#: Host every test service binds to; nothing may listen on another interface.
HOST = "127.0.0.1"

#: Prefix of every skip reason a service fixture produces (the CI hook keys on it).
SERVICE_PREFIX = "service:"

# Extra directories searched for daemons, which live in sbin and may not be on a user's PATH.
_EXTRA_PATH = ("/usr/local/sbin", "/usr/sbin", "/sbin")

# urllib without proxies: readiness probes go to 127.0.0.1 and must never leave the machine.
_NO_PROXY_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def in_ci() -> bool:
    """True when running under CI (``CI=true``), where a missing service is an error, not a skip."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1")


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def wait_for(
    predicate: Callable[[], T], timeout: float = 30.0, what: str = "condition", interval: float = 0.05
) -> T:
    """Poll ``predicate`` until it returns something truthy and return that value.

    Exceptions raised by the predicate count as "not yet" (a refused connection is the normal
    state of a server that is still starting). Raises ``TimeoutError`` naming ``what``.
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            result = predicate()
        except Exception as exc:  # not ready yet
            last_error = exc
        else:
            if result:
                return result
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error is not None else ""
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}{detail}")
        time.sleep(interval)


def require_binary(service: str, path_or_name: str, apt_package: str) -> str:
    """Return the absolute path of a service's executable, or skip (fail under CI) if missing.

    A developer without e.g. slapd installed gets a skip that says what to install; CI must run
    everything, so there the same situation is a failure.
    """
    found: str | None
    if os.sep in path_or_name:
        found = path_or_name if os.access(path_or_name, os.X_OK) else None
    else:
        search = os.pathsep.join([os.environ.get("PATH", os.defpath), *_EXTRA_PATH])
        found = shutil.which(path_or_name, path=search)
    if found:
        return found
    if in_ci():
        pytest.fail(f"{service}: binary {path_or_name} not installed (CI requires it)", pytrace=False)
    pytest.skip(f"{SERVICE_PREFIX} {service} not installed: apt-get install {apt_package}")


def require_module(service: str, module: str, pip_package: str) -> None:
    """Skip (fail under CI) when a Python package a fixture needs is not installed."""
    import importlib.util

    if importlib.util.find_spec(module) is not None:
        return
    if in_ci():
        pytest.fail(f"{service}: Python package {pip_package} not installed (CI requires it)", pytrace=False)
    pytest.skip(f"{SERVICE_PREFIX} {service} needs {pip_package}: uv sync (dev dependency group)")


def tcp_open(port: int, host: str = HOST) -> bool:
    """True if something accepts TCP connections on host:port."""
    with socket.create_connection((host, port), timeout=1.0):
        return True


def http_ok(url: str) -> bool:
    """True if ``GET url`` answers with a 2xx status (no proxies, 1 s timeout)."""
    try:
        with _NO_PROXY_OPENER.open(url, timeout=1.0) as resp:
            return 200 <= resp.status < 300
    except urllib.error.HTTPError:
        return False


def tail(path: Path, lines: int = 40) -> str:
    """Last ``lines`` lines of a log file (empty string if it does not exist)."""
    try:
        with path.open(errors="replace") as fh:
            return "".join(deque(fh, maxlen=lines))
    except OSError:
        return ""


class ServiceProcess:
    """One server child process with its output in a log file.

    Why not ``pg_ctl``-style daemons: a foreground child has a PID we own, so teardown is a plain
    signal to that PID, and a crash during startup is noticed at once instead of at the timeout.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[object],
        log_path: Path,
        *,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        stop_signal: int = signal.SIGTERM,
        user: str | None = None,
    ) -> None:
        self.name = name
        self.argv = [str(a) for a in argv]
        self.log_path = log_path
        self.cwd = cwd
        self.env = dict(env) if env is not None else None
        self.stop_signal = stop_signal
        self.user = user
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """PID of the running child, if any."""
        return self.proc.pid if self.proc is not None else None

    def start(self) -> ServiceProcess:
        """Spawn the child (appending to the log, so restarts keep earlier output)."""
        kwargs: dict[str, object] = {}
        if self.user is not None:
            import pwd

            pw = pwd.getpwnam(self.user)
            kwargs.update(user=pw.pw_uid, group=pw.pw_gid, extra_groups=[])
            env = dict(self.env if self.env is not None else os.environ)
            env.update(HOME=pw.pw_dir, USER=self.user, LOGNAME=self.user)
            self.env = env
        with self.log_path.open("ab") as log:
            log.write(f"=== {self.name}: {' '.join(self.argv)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.cwd,
                env=self.env,
                start_new_session=True,  # a Ctrl-C in the terminal must not hit the server first
                **kwargs,  # type: ignore[arg-type]
            )
        return self

    def fail(self, message: str) -> NoReturn:
        """Stop the child and fail the test with ``message`` and the end of the log."""
        self.stop()
        pytest.fail(f"{message}\n--- last lines of {self.log_path} ---\n{tail(self.log_path)}", pytrace=False)

    def wait_ready(self, predicate: Callable[[], object], timeout: float = 30.0) -> None:
        """Poll ``predicate`` until truthy; fail fast if the child exits, fail with the log on timeout."""
        assert self.proc is not None, "start() first"
        deadline = time.monotonic() + timeout
        while True:
            code = self.proc.poll()
            if code is not None:
                self.fail(f"{self.name} exited with code {code} during startup")
            with contextlib.suppress(Exception):  # an exception means "not ready yet"
                if predicate():
                    return
            if time.monotonic() >= deadline:
                self.fail(f"{self.name} not ready after {timeout:g}s")
            time.sleep(0.05)

    def stop(self, timeout: float = 5.0) -> int | None:
        """Signal the child, wait up to ``timeout`` seconds, then SIGKILL it. Returns its exit code."""
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            try:
                proc.send_signal(self.stop_signal)
                return proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
        return proc.wait()


def run_checked(service: str, argv: Sequence[object], log_path: Path, **kwargs: object) -> None:
    """Run a one-shot helper (initdb, slapadd, promtool); on failure fail with its output."""
    result = subprocess.run(
        [str(a) for a in argv],
        capture_output=True,
        text=True,
        check=False,
        **kwargs,  # type: ignore[call-overload]
    )
    with log_path.open("a") as log:
        log.write(f"=== {' '.join(map(str, argv))}\n{result.stdout}{result.stderr}")
    if result.returncode != 0:
        pytest.fail(
            f"{service}: {Path(str(argv[0])).name} failed with code {result.returncode}\n"
            f"{result.stdout}{result.stderr}",
            pytrace=False,
        )
