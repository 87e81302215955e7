"""ClusterCockpit's pytest plugin: fixtures that run real services on 127.0.0.1 for tests.

Registered as the ``pytest11`` entry point ``clustercockpit``, so every test in an environment with
``clustercockpit`` installed (the core, each plugin, third-party plugins) can request:

=====================  =======  ==============================================================
fixture                scope    yields
=====================  =======  ==============================================================
``postgresql_server``  session  :class:`PostgresServer` (a throwaway cluster, fsync off)
``postgresql_url``     test     SQLAlchemy URL of a fresh empty database (dropped afterwards)
``nats_server``        session  :class:`NatsServer`
``slapd_server``       session  :class:`LdapServer` (alice/alicepw, bob/bobpw, group hpcadmins)
``prometheus_server``  session  :class:`PrometheusServer` (``remote_write``, ``backfill``)
``influxdb_server``    session  :class:`InfluxServer` (database ``ccmetrics``; ``write``, ``query``)
``s3_server``          session  :class:`S3Server` (moto)
``s3_bucket``          test     name of a fresh bucket on ``s3_server``
``oidc_provider``      session  :class:`OIDCProvider` (users alice and admin)
``chromium``           module   a Playwright sync ``Browser`` (system Chromium, headless)
``slurm_cluster``      session  :class:`SlurmCluster` (munged, slurmctld, slurmd; node ``cc-node1``)
=====================  =======  ==============================================================

Servers start lazily (only when a test asks), are stopped by PID at the end of the session and
log to files under pytest's temp dir. A missing binary skips the test with a reason starting with
``service:`` and the package to install; under ``CI=true`` it fails instead, because CI must run
everything. Mark such tests ``@pytest.mark.service("name")``.

Importing this module must stay cheap (pytest loads it for every run): the service libraries
(moto, playwright, ldap3, ...) are imported inside the fixtures.
"""

from __future__ import annotations

from typing import Any

import pytest

from ._process import SERVICE_PREFIX, ServiceProcess, free_port, in_ci, require_binary, wait_for
from .browser import CHROMIUM_ARGS, chromium
from .influx import InfluxServer, influxdb_server
from .ldap import LdapServer, slapd_server
from .nats import NatsServer, nats_server
from .oidc import OIDCProvider, oidc_provider
from .postgres import PostgresServer, postgresql_server, postgresql_url
from .prometheus import PrometheusServer, encode_write_request, prometheus_server
from .s3 import S3Server, s3_bucket, s3_server
from .slurm import SlurmCluster, slurm_cluster

__all__ = [
    "CHROMIUM_ARGS",
    "SERVICE_PREFIX",
    "InfluxServer",
    "LdapServer",
    "NatsServer",
    "OIDCProvider",
    "PostgresServer",
    "PrometheusServer",
    "S3Server",
    "ServiceProcess",
    "SlurmCluster",
    "chromium",
    "encode_write_request",
    "free_port",
    "in_ci",
    "influxdb_server",
    "nats_server",
    "oidc_provider",
    "postgresql_server",
    "postgresql_url",
    "prometheus_server",
    "pytest_configure",
    "pytest_make_collect_report",
    "pytest_runtest_makereport",
    "require_binary",
    "s3_bucket",
    "s3_server",
    "slapd_server",
    "slurm_cluster",
    "wait_for",
]


# Emitted inside oidc-provider-mock's server thread (it uses authlib's older OpenIDCode API), so
# they would land on whichever test is running; they say nothing about the code under test.
_WARNING_FILTERS = (
    r"ignore:get_jwt_config\(self, grant\) is deprecated:DeprecationWarning:authlib.oidc.core.grants._legacy",
)


def pytest_configure(config: pytest.Config) -> None:
    """Register the warning filters above for every test run with this plugin."""
    for line in _WARNING_FILTERS:
        config.addinivalue_line("filterwarnings", line)


def _service_skip_reason(report: pytest.CollectReport | pytest.TestReport) -> str | None:
    """The reason of a skip produced for a missing service, or None for any other outcome."""
    if not report.skipped or hasattr(report, "wasxfail"):
        return None
    longrepr: Any = report.longrepr
    # A skip's longrepr is (path, lineno, "Skipped: <reason>").
    reason = str(longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else longrepr)
    reason = reason.removeprefix("Skipped: ")
    return reason if reason.startswith(SERVICE_PREFIX) else None


def _fail_service_skip(report: pytest.CollectReport | pytest.TestReport) -> None:
    """Under CI=true, turn a service skip into a failure: CI must not go green by skipping."""
    if not in_ci():
        return
    reason = _service_skip_reason(report)
    if reason is not None:
        report.outcome = "failed"
        report.longrepr = f"{reason}\n(CI=true: a required service is missing, so this is a failure)"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Belt and braces for :func:`require_binary`: catches ``pytest.skip("service: ...")`` anywhere."""
    report = yield
    _fail_service_skip(report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Any:
    """The same for module-level skips (``pytest.importorskip(..., reason="service: ...")``)."""
    report = yield
    _fail_service_skip(report)
    return report
