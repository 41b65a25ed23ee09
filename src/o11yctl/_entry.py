"""The console script's entry point.

`o11yctl --version` is answered before the CLI framework is imported: it is the
command scripts call most often to check what is installed.
"""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:] == ["--version"]:
        from o11yctl import __version__

        sys.stdout.write(f"o11yctl {__version__}\n")
        return
    from o11yctl.cli import app

    app(prog_name="o11yctl")
