"""`demo generate` and `demo run`: a generated demo site, served live (what `make demo` runs).

Both work on a site directory (``--dir``, default the current one): its ``config.json``, ``.env`` and
``var/``. The global ``--config`` option does not apply; the demo site always uses its own files.
"""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

import click

from cc_core.cli.state import CLIState, state

_DIR = click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=".",
    show_default=True,
    help="Site directory (config.json, .env and var/ are created there).",
)


def _generate(directory: Path, jobs: int, seed: int, force: bool) -> None:
    from cc_core.demo.generate import DemoSiteError, generate_site

    click.echo(f"generating the demo site in {directory.resolve()} ({jobs:,} jobs) …")
    try:
        report = generate_site(directory, jobs=jobs, seed=seed, force=force, say=click.echo)
    except DemoSiteError as e:
        raise click.ClickException(str(e)) from None
    if report is None:
        click.echo(f"{directory / 'var'} already holds a demo site (use --force to generate it again)")
        return
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(report.archetypes.items()))
    phases = ", ".join(f"{k} {v:.1f} s" for k, v in report.seconds.items())
    click.echo(f"{report.imported:,} jobs ({kinds}), {report.users} users; {phases}")


@click.group("demo")
def demo() -> None:
    """Generate and run a demo site: clusters, users, a job archive with metric data, live jobs."""


@demo.command("generate")
@_DIR
@click.option("--jobs", type=click.IntRange(min=1), default=3000, show_default=True, help="Finished jobs.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed (same seed, same site).")
@click.option("--force", is_flag=True, help="Remove var/ and generate again.")
def generate(directory: Path, jobs: int, seed: int, force: bool) -> None:
    """Write the demo site into <dir>/var: cluster configs, users (login demo/demo), a job archive with
    metric data, and the database filled from it (init-db). Does nothing if it exists (see --force)."""
    _generate(directory, jobs, seed, force)


@demo.command("run")
@_DIR
@click.option("--addr", default="localhost:8080", show_default=True, help="Listen address host:port.")
@click.option(
    "--jobs", type=click.IntRange(min=1), default=3000, show_default=True, help="Jobs if generating."
)
@click.pass_context
def run(ctx: click.Context, directory: Path, addr: str, jobs: int) -> None:
    """Serve the demo site (generated first if absent) with a simulated scheduler and collector:
    jobs start and stop through the REST API, every node sends metrics every 10 s. Ctrl-C stops it."""
    from cc_core.app import create_app
    from cc_core.auth.jwt_tokens import load_private_key, mint
    from cc_core.cli.server import split_addr
    from cc_core.demo.generate import is_generated
    from cc_core.demo.simulate import nats_target, serve_with_simulation
    from cc_core.demo.site import DEMO_LOGIN

    if not is_generated(directory):
        _generate(directory, jobs, 0, False)
    outer = state(ctx)
    st = CLIState(config_path=str(directory / "config.json"), env_file=None, loglevel=outer.loglevel)
    config = st.validated_config()
    config.secret("SESSION_KEY", required_for="to sign login sessions")
    private = config.secret("JWT_PRIVATE_KEY", required_for="to sign the simulated scheduler's API token")
    assert private is not None
    token = mint(load_private_key(private), "scheduler", ["api"], max_age_seconds=30 * 86400)
    host, port = split_addr(addr)
    app = create_app(config, registry=st.registry())
    gc.collect()
    gc.freeze()
    user, password = DEMO_LOGIN
    click.echo(
        f"ClusterCockpit demo: open http://{addr}/ and log in as {user} / {password} (Ctrl-C stops it)"
    )
    log_level = {"debug": "debug", "info": "info"}.get(outer.loglevel, "warning")
    try:
        asyncio.run(
            serve_with_simulation(app, host, port, token, log_level=log_level, nats=nats_target(config))
        )
    except KeyboardInterrupt:
        pass
    click.echo("demo stopped")


COMMANDS = [demo]
