"""`serve`: run the web server (upstream -server / -dev)."""

from __future__ import annotations

import gc
import logging

import click

from cc_core.cli.state import state

log = logging.getLogger(__name__)


def split_addr(addr: str) -> tuple[str, int]:
    """``"localhost:8080"``, ``":8080"``, ``"[::1]:8080"`` → (host, port)."""
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit():
        raise click.BadParameter(f"{addr!r} is not host:port", param_hint="main.addr")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


@click.command("serve")
@click.option("--dev", is_flag=True, help="Development mode: Swagger UI and GraphiQL (upstream -dev).")
@click.option("--addr", default=None, help="Listen address host:port [default: main.addr].")
@click.pass_context
def serve(ctx: click.Context, dev: bool, addr: str | None) -> None:
    """Run the HTTP server (upstream -server)."""
    import uvicorn

    from cc_core.app import create_app

    st = state(ctx)
    config = st.validated_config()
    if not config.main.disable_authentication:
        config.secret(
            "SESSION_KEY", required_for="to sign login sessions (unless main.disable-authentication)"
        )
    host, port = split_addr(addr or config.main.addr)
    app = create_app(config, registry=st.registry(), dev=dev)
    ssl: dict[str, str] = {}
    if config.main.https_cert_file and config.main.https_key_file:
        ssl = {"ssl_certfile": config.main.https_cert_file, "ssl_keyfile": config.main.https_key_file}
    scheme = "https" if ssl else "http"
    # Everything built so far (~170k objects: modules, the GraphQL schema, SQLAlchemy metadata, the app)
    # lives as long as the process. Freezing it keeps it out of the cyclic garbage collector, whose full
    # collections over it took ~100 ms each — pauses that, not request work, set the tail latency.
    gc.collect()
    gc.freeze()
    click.echo(f"ClusterCockpit listening on {scheme}://{host}:{port}/")
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level={"debug": "debug", "info": "info"}.get(st.loglevel, "warning"),
        timeout_graceful_shutdown=60,
        proxy_headers=False,  # forwarded headers are honoured only from main.trusted-proxies
        server_header=False,
        **ssl,  # type: ignore[arg-type]
    )


COMMANDS = [serve]
