"""What `make demo` runs: generate the demo site in ./ if there is none, then serve it live on
localhost:8080 (`clustercockpit demo run`: server, embedded metric store, simulated scheduler and
collector). Prints the URL and the login demo / demo; Ctrl-C stops everything. A second `make demo`
reuses the site (``clustercockpit demo generate --force`` makes a new one).
"""

from __future__ import annotations

from cc_core.cli import main as cli_main
from cc_core.demo.site import DEMO_LOGIN

__all__ = ["DEMO_LOGIN", "main"]


def main() -> None:
    cli_main(["--loglevel", "info", "demo", "run", "--dir", ".", "--addr", "localhost:8080"])


if __name__ == "__main__":
    main()
