"""Copy the pinned npm packages' distribution files into web/vendor/ (served at /static/vendor/).

Run by `make assets` after `npm ci`; the files are shipped in the wheel but never committed.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

HERE = Path(__file__).parent
MODULES = HERE / "node_modules"
VENDOR = HERE / "vendor"

# vendor subdirectory -> list of (file or directory in node_modules, name in vendor)
MANIFEST: dict[str, list[tuple[str, str]]] = {
    "bootstrap": [
        ("bootstrap/dist/css/bootstrap.min.css", "bootstrap.min.css"),
        ("bootstrap/dist/js/bootstrap.bundle.min.js", "bootstrap.bundle.min.js"),
    ],
    "bootstrap-icons": [
        ("bootstrap-icons/font/bootstrap-icons.min.css", "bootstrap-icons.min.css"),
        ("bootstrap-icons/font/fonts", "fonts"),
    ],
    "htmx": [("htmx.org/dist/htmx.min.js", "htmx.min.js")],
    "uplot": [
        ("uplot/dist/uPlot.iife.min.js", "uPlot.iife.min.js"),
        ("uplot/dist/uPlot.min.css", "uPlot.min.css"),
    ],
    "graphiql": [
        ("graphiql/graphiql.min.js", "graphiql.min.js"),
        ("graphiql/graphiql.min.css", "graphiql.min.css"),
        ("react/umd/react.production.min.js", "react.production.min.js"),
        ("react-dom/umd/react-dom.production.min.js", "react-dom.production.min.js"),
    ],
    "swagger-ui": [
        ("swagger-ui-dist/swagger-ui-bundle.js", "swagger-ui-bundle.js"),
        ("swagger-ui-dist/swagger-ui-standalone-preset.js", "swagger-ui-standalone-preset.js"),
        ("swagger-ui-dist/swagger-ui.css", "swagger-ui.css"),
    ],
}


def main() -> int:
    if not MODULES.is_dir():
        print(f"error: {MODULES} is missing; run `npm ci` in {HERE} first", file=sys.stderr)
        return 1
    tmp = VENDOR.with_name("vendor.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for sub, files in MANIFEST.items():
        (tmp / sub).mkdir(parents=True)
        for src, dst in files:
            source = MODULES / src
            if not source.exists():
                print(f"error: {source} not found (package version changed?)", file=sys.stderr)
                return 1
            if source.is_dir():
                shutil.copytree(source, tmp / sub / dst)
            else:
                shutil.copy2(source, tmp / sub / dst)
    shutil.rmtree(VENDOR, ignore_errors=True)
    tmp.rename(VENDOR)
    print(f"web assets copied to {VENDOR}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
