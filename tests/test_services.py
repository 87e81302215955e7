"""Smoke tests for the real-service fixtures in ``cc_core.testing``: each service really works."""

from __future__ import annotations

import asyncio
import http.server
import socket
import threading
import time
import warnings
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from cc_core.testing import (
    InfluxServer,
    LdapServer,
    NatsServer,
    OIDCProvider,
    PostgresServer,
    PrometheusServer,
    S3Server,
    ServiceProcess,
    free_port,
    require_binary,
    wait_for,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytest_plugins = ["pytester"]


# --- helpers of the plugin itself --------------------------------------------------------------------


def test_free_port_is_bindable_on_loopback() -> None:
    port = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


def test_wait_for_returns_value_and_times_out() -> None:
    calls: list[int] = []

    def ready_on_third() -> int:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionRefusedError
        return 42

    assert wait_for(ready_on_third, timeout=5, what="x") == 42
    with pytest.raises(TimeoutError, match="waiting for the impossible"):
        wait_for(lambda: False, timeout=0.1, what="the impossible")


def test_service_process_fails_with_log_tail_on_early_exit(tmp_path: Path) -> None:
    proc = ServiceProcess("frobd", ["sh", "-c", "echo 'frobd: cannot bind'; exit 3"], tmp_path / "frobd.log")
    with pytest.raises(pytest.fail.Exception, match=r"(?s)exited with code 3.*frobd: cannot bind"):
        proc.start().wait_ready(lambda: False, timeout=10)
    assert proc.pid is None


def test_service_process_kills_a_server_that_ignores_sigterm(tmp_path: Path) -> None:
    proc = ServiceProcess(
        "stubborn", ["sh", "-c", "trap '' TERM; echo up; while :; do sleep 0.05; done"], tmp_path / "s.log"
    ).start()
    proc.wait_ready(lambda: "\nup\n" in (tmp_path / "s.log").read_text(), timeout=10)
    started = time.monotonic()
    assert proc.stop(timeout=0.3) == -9  # SIGTERM ignored, so SIGKILL after the grace period
    assert time.monotonic() - started < 3


_SKIPPING_TESTS = """
import pytest
from cc_core.testing import require_binary

def test_missing_binary():
    require_binary("frobd", "frobd-not-installed-anywhere", "frob-server")

def test_service_skip():
    pytest.skip("service: frobd not installed: apt-get install frob-server")

def test_unrelated_skip():
    pytest.skip("not today")
"""


def test_missing_service_skips_locally(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    pytester.makepyfile(_SKIPPING_TESTS)
    result = pytester.runpytest("-p", "no:cacheprovider", "-rs")
    result.assert_outcomes(skipped=3)
    result.stdout.fnmatch_lines(["*service: frobd not installed: apt-get install frob-server*"])


def test_missing_service_fails_under_ci(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    pytester.makepyfile(
        test_funcs=_SKIPPING_TESTS,
        test_module_skip='import pytest\npytest.skip("service: frobd missing", allow_module_level=True)\n',
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--continue-on-collection-errors")
    result.assert_outcomes(failed=2, skipped=1, errors=1)
    result.stdout.fnmatch_lines(
        ["*frobd: binary frobd-not-installed-anywhere not installed (CI requires it)*"]
    )


def test_require_binary_finds_sbin_daemons(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/bin")  # a non-root PATH often lacks sbin, where the daemons live
    assert require_binary("runuser", "runuser", "util-linux") in ("/usr/sbin/runuser", "/sbin/runuser")


# --- PostgreSQL ----------------------------------------------------------------------------------------


@pytest.mark.service("postgresql")
def test_postgresql(postgresql_server: PostgresServer, postgresql_url: str) -> None:
    psycopg = pytest.importorskip("psycopg", reason="service: psycopg not installed (uv sync --all-extras)")
    from sqlalchemy import create_engine, text

    dbname = postgresql_url.rsplit("/", 1)[1]
    assert postgresql_url == f"postgresql+psycopg://postgres@127.0.0.1:{postgresql_server.port}/{dbname}"
    engine = create_engine(postgresql_url)
    try:
        with engine.begin() as conn:
            assert (
                conn.execute(text("SELECT count(*) FROM pg_tables WHERE schemaname='public'")).scalar() == 0
            )
            conn.execute(text("CREATE TABLE job (id serial PRIMARY KEY, cluster text, meta jsonb)"))
            conn.execute(
                text("INSERT INTO job (cluster, meta) VALUES (:c, CAST(:m AS jsonb))"),
                [{"c": "fritz", "m": '{"jobName": "a"}'}, {"c": "alex", "m": '{"jobName": "b"}'}],
            )
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT cluster, meta->>'jobName' FROM job ORDER BY id")).all()
        assert [tuple(r) for r in rows] == [("fritz", "a"), ("alex", "b")]
    finally:
        engine.dispose()
    with psycopg.connect(postgresql_server.libpq_url(dbname)) as conn:
        assert conn.execute("SELECT count(*) FROM job").fetchone() == (2,)
        assert conn.execute("SHOW fsync").fetchone() == ("off",)
    assert dbname in postgresql_server.psql("SELECT datname FROM pg_database").split()


# --- NATS ----------------------------------------------------------------------------------------------


@pytest.mark.service("nats")
def test_nats_publish_subscribe(nats_server: NatsServer) -> None:
    nats = pytest.importorskip("nats", reason="service: nats not installed (uv sync --all-extras)")
    lines = [f"cpu_load,cluster=fritz,hostname=f{i:04d} value={i}.5 1700000000".encode() for i in range(100)]

    async def roundtrip() -> list[bytes]:
        nc = await nats.connect(nats_server.url)
        got: list[bytes] = []
        done = asyncio.Event()

        async def handler(msg: object) -> None:
            got.append(msg.data)  # type: ignore[attr-defined]
            if len(got) == len(lines):
                done.set()

        await nc.subscribe("ccmetrics", cb=handler)
        await nc.flush()
        for line in lines:
            await nc.publish("ccmetrics", line)
        await nc.flush()
        await asyncio.wait_for(done.wait(), 5)
        await nc.close()
        return got

    assert asyncio.run(roundtrip()) == lines


# --- LDAP ----------------------------------------------------------------------------------------------


@pytest.mark.service("ldap")
def test_ldap_bind_search_and_user_sync(slapd_server: LdapServer) -> None:
    ldap3 = pytest.importorskip("ldap3", reason="service: ldap3 not installed (uv sync --all-extras)")
    server = ldap3.Server(slapd_server.host, port=slapd_server.port)

    def bind(uid: str, password: str) -> bool:
        conn = ldap3.Connection(server, slapd_server.user_dn(uid), password)
        try:
            return bool(conn.bind())
        finally:
            conn.unbind()

    assert bind("alice", "alicepw")
    assert bind("bob", "bobpw")
    assert not bind("alice", "wrong")

    with slapd_server.connect() as conn:
        conn.search(
            slapd_server.users_dn,
            "(&(objectClass=posixAccount)(uid=*))",
            ldap3.SUBTREE,
            attributes=["uid", "cn", "uidNumber", "gecos", "displayName"],
        )
        users = {e.uid.value: e for e in conn.entries}
        assert {"alice", "bob"} <= set(users)
        assert users["alice"].displayName.value == "Alice Anderson"
        conn.search(slapd_server.groups_dn, "(cn=hpcadmins)", attributes=["member"])
        assert conn.entries[0].member.values == [slapd_server.user_dn("alice")]

    dn = slapd_server.add_user("carol", "carolpw", cn="Carol Clark")
    try:
        assert bind("carol", "carolpw")
        with slapd_server.connect() as conn:
            conn.search(dn, "(objectClass=*)", ldap3.BASE, attributes=["uidNumber", "sn"])
            assert int(conn.entries[0].uidNumber.value) > 10002
            assert conn.entries[0].sn.value == "Clark"
    finally:
        slapd_server.delete_user("carol")
    assert not bind("carol", "carolpw")
    with slapd_server.connect() as conn:
        conn.search(slapd_server.users_dn, "(uid=carol)")
        assert conn.entries == []


# --- Prometheus ----------------------------------------------------------------------------------------


def _query_range(prom: PrometheusServer, query: str, start: float, end: float, step: int) -> list[dict]:
    resp = httpx.get(
        f"{prom.url}/api/v1/query_range",
        params={"query": query, "start": start, "end": end, "step": step},
        trust_env=False,
    )
    resp.raise_for_status()
    body = resp.json()
    assert body["status"] == "success"
    return body["data"]["result"]


@pytest.mark.service("prometheus")
def test_prometheus_remote_write(prometheus_server: PrometheusServer) -> None:
    now_ms = int(time.time()) * 1000
    stamps = [now_ms - 60_000 + i * 10_000 for i in range(7)]
    prometheus_server.remote_write(
        [
            (
                {"__name__": "cc_smoke_cpu", "cluster": "fritz", "hostname": host},
                [(ts, float(n * 100 + i)) for i, ts in enumerate(stamps)],
            )
            for n, host in enumerate(["f0001", "f0002"])
        ]
    )
    result = _query_range(
        prometheus_server, 'cc_smoke_cpu{cluster="fritz"}', stamps[0] / 1000, stamps[-1] / 1000, 10
    )
    by_host = {r["metric"]["hostname"]: r["values"] for r in result}
    assert set(by_host) == {"f0001", "f0002"}
    assert [float(v) for _, v in by_host["f0002"]] == [100.0 + i for i in range(7)]
    assert [t for t, _ in by_host["f0001"]] == [ts / 1000 for ts in stamps]


@pytest.mark.service("prometheus")
def test_prometheus_backfill_historical(prometheus_server: PrometheusServer) -> None:
    start = 1_700_000_000  # Nov 2023: far older than any head block, so remote write would reject it
    text = "# TYPE cc_smoke_mem gauge\n" + "".join(
        f'cc_smoke_mem{{cluster="fritz",hostname="f0000"}} {1000 + i} {start + 60 * i}\n' for i in range(10)
    )
    prometheus_server.backfill(text + "# EOF\n")
    result = _query_range(prometheus_server, "cc_smoke_mem", start, start + 540, 60)
    assert len(result) == 1
    assert result[0]["metric"] == {"__name__": "cc_smoke_mem", "cluster": "fritz", "hostname": "f0000"}
    assert [(t, float(v)) for t, v in result[0]["values"]] == [
        (start + 60 * i, 1000.0 + i) for i in range(10)
    ]


# --- InfluxDB ------------------------------------------------------------------------------------------


@pytest.mark.service("influxdb")
def test_influxdb_write_and_select(influxdb_server: InfluxServer) -> None:
    start = 1_700_000_040  # a multiple of 60: InfluxDB aligns GROUP BY time() buckets to the epoch
    lines = "\n".join(
        f"cc_smoke_load,cluster=fritz,hostname=f{h:04d} value={h + t} {start + t * 30}"
        for h in range(2)
        for t in range(4)
    )
    influxdb_server.write(lines)
    body = influxdb_server.query(
        "SELECT mean(value) FROM cc_smoke_load WHERE cluster='fritz' "
        "AND time >= 1700000040s AND time < 1700000160s GROUP BY time(60s), hostname"
    )
    series = {s["tags"]["hostname"]: s["values"] for s in body["results"][0]["series"]}
    assert series == {
        "f0000": [[start, 0.5], [start + 60, 2.5]],
        "f0001": [[start, 1.5], [start + 60, 3.5]],
    }
    assert ["ccmetrics"] in influxdb_server.query("SHOW DATABASES")["results"][0]["series"][0]["values"]


# --- S3 ------------------------------------------------------------------------------------------------


@pytest.mark.service("s3")
def test_s3_obstore_roundtrip(s3_server: S3Server, s3_bucket: str) -> None:
    obs = pytest.importorskip("obstore", reason="service: obstore not installed (uv sync --all-extras)")
    from obstore.store import S3Store

    store = S3Store(
        s3_bucket,
        endpoint=s3_server.endpoint,
        access_key_id=s3_server.access_key,
        secret_access_key=s3_server.secret_key,
        region=s3_server.region,
        client_options={"allow_http": True},
        virtual_hosted_style_request=False,
    )
    obs.put(store, "fritz/123/1700000000/meta.json", b'{"jobId": 123}')
    obs.put(store, "fritz/124/1700000100/meta.json", b'{"jobId": 124}')
    assert obs.get(store, "fritz/123/1700000000/meta.json").bytes().to_bytes() == b'{"jobId": 123}'
    keys = sorted(m["path"] for batch in obs.list(store, prefix="fritz") for m in batch)
    assert keys == ["fritz/123/1700000000/meta.json", "fritz/124/1700000100/meta.json"]
    listed = s3_server.client().list_objects_v2(Bucket=s3_bucket)["KeyCount"]
    assert listed == 2


# --- OIDC ----------------------------------------------------------------------------------------------


def _oidc_login(provider: OIDCProvider, sub: str) -> tuple[dict, dict]:
    """Full authorization-code flow with PKCE and nonce; returns (verified ID token claims, userinfo)."""
    with warnings.catch_warnings():  # authlib deprecates its httpx integration in favour of httpx2
        import authlib.deprecate  # noqa: F401 - installs an "always" filter on first import

        warnings.simplefilter("ignore", DeprecationWarning)
        from authlib.common.security import generate_token
        from authlib.integrations.httpx_client import OAuth2Client
    from joserfc import jwt
    from joserfc.jwk import KeySet

    meta = httpx.get(provider.discovery_url, trust_env=False).json()
    assert meta["issuer"] == provider.issuer
    redirect_uri = "http://127.0.0.1:8080/oidc-callback"
    client = OAuth2Client(
        "cc-backend",
        "cc-secret",
        scope="openid email profile",
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        trust_env=False,
    )
    verifier, nonce = generate_token(48), generate_token(20)
    url, _state = client.create_authorization_url(
        meta["authorization_endpoint"], code_verifier=verifier, nonce=nonce
    )
    resp = httpx.post(url, data={"sub": sub}, trust_env=False)  # the user submits the login form
    assert resp.status_code == 302
    assert resp.headers["location"].startswith(redirect_uri + "?")
    token = client.fetch_token(
        meta["token_endpoint"], authorization_response=resp.headers["location"], code_verifier=verifier
    )
    keys = KeySet.import_key_set(httpx.get(meta["jwks_uri"], trust_env=False).json())
    claims = jwt.decode(token["id_token"], keys).claims
    assert (claims["iss"], claims["nonce"], claims["sub"]) == (provider.issuer, nonce, sub)
    assert claims["aud"] in ("cc-backend", ["cc-backend"])
    userinfo = client.get(meta["userinfo_endpoint"]).json()
    client.close()
    return claims, userinfo


@pytest.mark.service("oidc")
def test_oidc_authorization_code_flow(oidc_provider: OIDCProvider) -> None:
    _claims, info = _oidc_login(oidc_provider, "alice")
    assert info["preferred_username"] == "alice"
    assert info["email"] == "alice@example.com"
    assert info["realm_access"] == {"roles": ["user"]}
    assert info["projects"] == ["p1"]

    oidc_provider.set_user("carol", {"preferred_username": "carol", "realm_access": {"roles": ["manager"]}})
    claims, info = _oidc_login(oidc_provider, "carol")
    assert claims["realm_access"] == {"roles": ["manager"]}
    assert info["preferred_username"] == "carol"
    assert oidc_provider.users["carol"]["realm_access"] == {"roles": ["manager"]}


# --- Chromium ------------------------------------------------------------------------------------------


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """No per-request lines on stderr."""


@pytest.mark.service("chromium")
def test_chromium_loads_local_page(chromium: Browser, tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text(
        "<!doctype html><title>ClusterCockpit smoke</title>"
        "<button onclick=\"document.getElementById('x').textContent='clicked'\">Click</button><p id=x></p>"
    )
    handler = partial(_QuietHandler, directory=str(tmp_path))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    page = chromium.new_page()
    try:
        page.goto(f"http://127.0.0.1:{httpd.server_port}/index.html")
        assert page.title() == "ClusterCockpit smoke"
        page.click("text=Click")
        assert page.text_content("#x") == "clicked"
    finally:
        page.close()
        httpd.shutdown()
        httpd.server_close()
