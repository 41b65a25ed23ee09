"""Local commands: an argument list in, a :class:`CommandResult` out, always with a timeout.

Nothing here goes through a shell. :func:`run` never raises for a non-zero exit
(it is ``check=False`` underneath); callers decide with :func:`require_ok`, which
turns a failed result into an error whose text shows the command, its exit code
and the last lines of each stream.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from collections.abc import Mapping, Sequence

from o11yctl.errors import O11yError
from o11yctl.model import CommandResult

#: How many trailing lines of stdout and stderr a failure message shows.
TAIL_LINES = 10


class CommandNotFound(O11yError):
    """The program to run is not installed (or not on PATH)."""


class CommandTimeout(O11yError):
    """The program ran longer than its timeout and was stopped."""


def run(argv: Sequence[str], *, timeout: float, env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None, stdin: str | None = None,
        own_session: bool = False) -> CommandResult:
    """Run ``argv`` locally and collect what it did.

    Args:
        argv: the program and its arguments; never joined into a shell string.
        timeout: seconds the program may run before it is stopped.
        env: extra environment variables laid over the current environment.
        cwd: working directory.
        stdin: text fed to the program's standard input (else it reads nothing).
        own_session: start the program in a session of its own, so that a Ctrl-C at the
            terminal (sent to o11yctl's process group) does not stop it half-way.

    Returns:
        The result, whatever the exit code.

    Raises:
        CommandNotFound: the program does not exist.
        CommandTimeout: the program ran longer than ``timeout``.
    """
    full_env = None
    if env:
        full_env = dict(os.environ)
        full_env.update(env)
    started = time.monotonic()
    try:
        proc = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=timeout, env=full_env, cwd=cwd,
            input=stdin if stdin is not None else "", check=False, start_new_session=own_session,
        )
    except FileNotFoundError as exc:
        raise CommandNotFound(f"{argv[0]} not found", hint=f"install {os.path.basename(argv[0])} or put it on PATH") \
            from exc
    except PermissionError as exc:
        raise CommandNotFound(f"{argv[0]} is not executable", hint="check the file's permissions") from exc
    except subprocess.TimeoutExpired as exc:
        raise CommandTimeout(
            f"`{display(argv)}` did not finish within {timeout:g}s and was stopped",
            hint="a slow network or cluster? raise the timeout, or run the command by hand to watch it",
        ) from exc
    return CommandResult(argv=tuple(argv), exit_code=proc.returncode, stdout=proc.stdout, stderr=proc.stderr,
                         seconds=time.monotonic() - started)


def display(argv: Sequence[str]) -> str:
    """``argv`` as one line a person can copy into a shell."""
    return shlex.join(argv)


def tail(text: str, lines: int = TAIL_LINES) -> str:
    """The last ``lines`` non-empty lines of ``text``."""
    kept = [line for line in text.rstrip().splitlines() if line.strip()]
    return "\n".join(kept[-lines:])


def describe_failure(result: CommandResult, what: str | None = None) -> str:
    """A failure's text: the command, its exit code and the tail of each stream."""
    head = f"{what or '`' + display(result.argv) + '`'} failed (exit {result.exit_code})"
    parts = [head]
    err = tail(result.stderr)
    out = tail(result.stdout)
    if err:
        parts.append("stderr:\n" + _indent(err))
    if out:
        parts.append("stdout:\n" + _indent(out))
    return "\n".join(parts)


def require_ok(result: CommandResult, error: type[O11yError] = O11yError, *, what: str | None = None,
               hint: str | None = None) -> CommandResult:
    """Return ``result`` if it succeeded, else raise ``error`` describing it.

    This is the one place where an exit code becomes a failure.

    Args:
        result: what the command did.
        error: the error class to raise (e.g. HelmError).
        what: a short name for the command in the message (default: the command line).
        hint: the next thing to do.

    Raises:
        O11yError: (of class ``error``) the command exited non-zero.
    """
    if result.ok:
        return result
    raise error(describe_failure(result, what), hint=hint)


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.splitlines())
