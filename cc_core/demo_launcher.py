"""What `make demo` runs: set up a local site in ./ if there is none, then serve it on localhost:8080.

The generated demo site with clusters, jobs and live metrics comes with `clustercockpit demo`; until it
lands this starts the server on an empty site with a local admin ``demo`` / ``demo``, so that
`make demo` always ends in a running server one can log in to.
"""

from __future__ import annotations

from pathlib import Path

from cc_core.cli import main as cli_main
from cc_core.cli.setup import init_site

DEMO_LOGIN = ("demo", "demo")


def main() -> None:
    here = Path.cwd()
    config = str(here / "config.json")
    fresh = not (here / "var").exists()
    if fresh:
        for p in init_site(here):
            print(f"created {p}")
    if fresh or not (here / "var" / "job.db").exists():
        user, password = DEMO_LOGIN
        try:
            cli_main(["--config", config, "add-user", f"{user}:admin,api:{password}"])
        except SystemExit as e:
            if e.code not in (0, None):
                raise
    print("ClusterCockpit demo: open http://localhost:8080/ and log in as demo / demo (Ctrl-C stops it)")
    cli_main(["--config", config, "--loglevel", "info", "serve", "--addr", "localhost:8080"])


if __name__ == "__main__":
    main()
