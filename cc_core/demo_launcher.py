"""What `make demo` runs: set up a local site in ./ if there is none, then serve it on localhost:8080.

The generated demo site with clusters, jobs and live metrics comes with `clustercockpit demo`; until it
lands this starts the server on an empty site so that `make demo` always ends in a running server.
"""

from __future__ import annotations

from pathlib import Path

from cc_core.cli import main as cli_main
from cc_core.cli.setup import init_site


def main() -> None:
    here = Path.cwd()
    if not (here / "var").exists():
        for p in init_site(here):
            print(f"created {p}")
    print("ClusterCockpit demo: open http://localhost:8080/ (Ctrl-C stops the server)")
    cli_main(
        ["--config", str(here / "config.json"), "--loglevel", "info", "serve", "--addr", "localhost:8080"]
    )


if __name__ == "__main__":
    main()
