"""The console script's entry point.

`o11yctl --version` is answered before the CLI framework is imported: it is the
command scripts call most often to check what is installed. A Ctrl-C that arrives
while the CLI is still being imported ends the run the way every other interrupt does
(exit 130, ``interrupted``, the JSON envelope with ``--json``), without a traceback.
This module imports nothing but ``sys`` before that guard is in place, so the window
in which an interrupt can still end Python with its own traceback is the interpreter's
start-up alone (a few milliseconds). Once the command has finished and written its
output, a late Ctrl-C no longer changes the outcome.
"""

from __future__ import annotations

import sys


def main() -> None:
    argv = sys.argv[1:]
    try:
        if argv == ["--version"]:
            from o11yctl import __version__

            sys.stdout.write(f"o11yctl {__version__}\n")
            return
        from o11yctl.cli import app

        try:
            app(prog_name="o11yctl")
        finally:
            _ignore_late_interrupts()
    except KeyboardInterrupt:
        _ignore_late_interrupts()
        _interrupted(argv)
        sys.exit(130)


def _ignore_late_interrupts() -> None:
    """The outcome is decided and said; Ctrl-C during interpreter teardown changes nothing."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _interrupted(argv: list[str]) -> None:
    """Say so without importing anything more (the CLI may not be importable yet)."""
    if "--json" in argv:
        import json

        command = next((a for a in argv if not a.startswith("-")), "o11yctl")
        doc = {"command": command, "ok": False, "exit_code": 130, "items": [],
               "error": {"message": "interrupted", "hint": "nothing more was started; run the command again"}}
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    else:
        sys.stderr.write("error: interrupted\nhint: nothing more was started; run the command again\n")
