"""The one family of expected failures.

Every error a user can cause or meet carries a short message, a hint (the next
thing to do) and an exit code. Only the CLI turns them into output.
"""

from __future__ import annotations

import os
import tempfile
import traceback
from pathlib import Path

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_INTERRUPTED = 130

#: Crash logs kept in the temporary directory (the newest; older ones are removed when a new one is written).
CRASH_LOGS_KEPT = 5
CRASH_LOG_PREFIX = "o11yctl-crash-"


class O11yError(Exception):
    """An expected failure with a message, a hint and an exit code."""

    exit_code: int = EXIT_FAILED

    def __init__(self, message: str, *, hint: str | None = None, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message


class ConfigError(O11yError, ValueError):
    """The configuration file or a flag is wrong (exit 2)."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, *, hint: str | None = None, problems: list[str] | None = None) -> None:
        super().__init__(message, hint=hint)
        self.problems = problems or []


class UsageError(O11yError, ValueError):
    """Flags that do not fit together (exit 2)."""

    exit_code = EXIT_USAGE


class PathError(UsageError):
    """A path the user gave cannot be read or written (exit 2): the path, the reason and what to do."""

    @classmethod
    def of(cls, what: str, path: object, exc: OSError) -> PathError:
        reason = exc.strerror or type(exc).__name__
        if isinstance(exc, FileNotFoundError):
            hint = "create the directory first, or choose another path"
        elif isinstance(exc, FileExistsError | NotADirectoryError | IsADirectoryError):
            hint = "it names a file where a directory is needed (or the other way round): choose another path"
        elif isinstance(exc, PermissionError):
            hint = "choose a path you may write to"
        elif exc.errno == 30:  # EROFS
            hint = "that file system is read-only: choose a path on a writable one"
        else:
            hint = "choose another path"
        return cls(f"{what} {path}: {reason}", hint=hint)


class TemplateError(O11yError):
    """A template failed to render; names the template and line."""

    exit_code = EXIT_FAILED

    @classmethod
    def from_jinja(cls, template: str, exc: Exception, root: Path) -> TemplateError:
        lineno = getattr(exc, "lineno", None)
        if lineno is None:
            # An undefined variable is raised at render time; find our template's frame.
            for frame in reversed(traceback.extract_tb(exc.__traceback__)):
                if frame.filename.endswith(template):
                    lineno = frame.lineno
                    break
        where = f"{template} (L{lineno})" if lineno else template
        context = ""
        if lineno:
            try:
                lines = (root / template).read_text(encoding="utf-8").splitlines()
                lo, hi = max(lineno - 2, 1), min(lineno + 1, len(lines))
                context = "\n".join(f"{n:4} | {lines[n - 1]}" for n in range(lo, hi + 1))
            except OSError:
                pass
        message = f"Error in template: {where}: {exc}"
        if context:
            message += "\n" + context
        return cls(message, hint="this is a bug in o11yctl's templates; please report it")


class PreflightError(O11yError):
    """Something required is missing or unreachable; nothing was changed (exit 3)."""

    exit_code = EXIT_UNREACHABLE


class RemoteError(O11yError):
    """An SSH connection or remote command failed."""


class UnreachableError(RemoteError):
    """A host could not be reached at all (exit 3)."""

    exit_code = EXIT_UNREACHABLE


class HostKeyError(UnreachableError):
    """A host key was unknown or changed; the connection was refused."""


class SudoPasswordRequired(RemoteError):
    """sudo on the host wants a password and none was given."""


class HelmError(O11yError):
    """A helm command failed."""


class KubeError(O11yError):
    """The Kubernetes API refused or failed a request.

    ``status`` is the HTTP status of the API server's answer (None when there was none),
    so callers can tell a refusal (403 from admission, 422 invalid) from a failure.
    """

    def __init__(self, message: str, *, hint: str | None = None, exit_code: int | None = None,
                 status: int | None = None) -> None:
        super().__init__(message, hint=hint, exit_code=exit_code)
        self.status = status

    @property
    def refused(self) -> bool:
        """The server understood the request and said no because of what it asked (not who asked)."""
        return self.status in (403, 422) and self.exit_code != EXIT_UNREACHABLE


class NotAvailable(O11yError):
    """A command that this version does not implement yet."""


def write_crash_log(text: str, *, directory: str | None = None, keep: int = CRASH_LOGS_KEPT) -> Path | None:
    """Save an internal error's traceback to a new file (mode 0600) and keep only the newest ``keep`` of them.

    Args:
        text: the traceback.
        directory: where (default: the temporary directory).
        keep: how many crash logs to keep, this one included.

    Returns:
        The file, or None when it could not be written.
    """
    try:
        fd, name = tempfile.mkstemp(prefix=CRASH_LOG_PREFIX, suffix=".log", dir=directory)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
    except OSError:
        return None
    folder = Path(name).parent
    uid = os.getuid()
    logs = []
    for path in folder.glob(f"{CRASH_LOG_PREFIX}*.log"):
        try:
            info = path.lstat()
        except OSError:
            continue
        if info.st_uid == uid and path.is_file() and not path.is_symlink():
            logs.append((info.st_mtime, path))
    for _mtime, old in sorted(logs, key=lambda m: (m[0], m[1] == Path(name)), reverse=True)[keep:]:
        if old != Path(name):
            old.unlink(missing_ok=True)
    return Path(name)
