"""o11yctl's command line: parse, call one core function, hand the result to ui, exit.

Heavy modules (the kubernetes client, paramiko, httpx) and even Rich are imported
inside the commands that use them, so `--help`, `--version` and shell completion
stay instant.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from typer._click import exceptions as _click_exceptions
from typer.core import TyperGroup

from o11yctl import __version__

if TYPE_CHECKING:
    from o11yctl.model import Report

EPILOG_MAIN = """\
Examples:

  o11yctl init                       write ./o11yctl.yaml, the runbook's cluster, commented

  o11yctl install --dry-run          show every step, command and helm line; contact nothing

  o11yctl render --out k8s/logging   write the eight manifests and values files

  o11yctl install                    prepare storage, apply manifests, install the charts, wait

  o11yctl verify                     prove logs and traces flow end to end

  o11yctl fix-vxlan --check          diagnose cross-node Flannel VXLAN (UDP 8472)

Configuration: --config/-c PATH, else $O11YCTL_CONFIG, else ./o11yctl.yaml, else the built-in
default (the runbook's two-node K3s cluster). Exit codes: 0 ok; 1 a step or check failed;
2 usage or configuration error; 3 preflight failed or something required is unreachable
(nothing was changed); 130 interrupted.
"""

class _Cli(TyperGroup):
    """The command group: its ``main`` is the one place that decides how every run ends.

    A command's own result or error is printed by :func:`_run`. What happens before the
    command's body runs, or around it, ends here: a usage error of the parser (exit 2, one
    line and a hint), an interrupt at any moment (exit 130, ``interrupted``), ``--help`` and
    ``--version`` (exit 0). With ``--json`` each of them prints one JSON envelope on stdout.
    """

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True, windows_expand_args: bool = True,
             **extra: Any) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        _ENDING.clear()
        try:
            code = super().main(args=argv, prog_name=prog_name, complete_var=complete_var, standalone_mode=False,
                                windows_expand_args=windows_expand_args, **extra)
        except _click_exceptions.NoArgsIsHelpError as exc:
            exc.show()
            code = exc.exit_code
        except _click_exceptions.UsageError as exc:
            code = _usage_error(exc, argv)
        except (typer.Abort, KeyboardInterrupt):
            code = EXIT_CODE_INTERRUPTED
        code = 0 if code is None else int(code)
        if code == EXIT_CODE_INTERRUPTED and not _ENDING:
            _interrupted(argv)
        if standalone_mode:
            sys.exit(code)
        return code


#: Set once a command has printed how it ended (its report, or its error).
_ENDING: list[bool] = []
EXIT_CODE_INTERRUPTED = 130


def _command_name(argv: Sequence[str]) -> str:
    """The subcommand named on the command line (for the JSON envelope), else ``o11yctl``."""
    names = set(app_commands())
    return next((a for a in argv if a in names), "o11yctl")


def app_commands() -> list[str]:
    return [c.name or (c.callback.__name__.replace("_", "-") if c.callback else "")
            for c in app.registered_commands]


def _usage_error(exc: Any, argv: Sequence[str]) -> int:
    """A parser error: one line and a hint, or the JSON envelope with --json (exit 2)."""
    from o11yctl import ui
    from o11yctl.errors import UsageError

    command = _command_name(argv)
    message = exc.format_message()
    hint = f"see `o11yctl {command} --help`" if command != "o11yctl" else "see `o11yctl --help`"
    option = getattr(exc, "option_name", None) or ""
    if isinstance(exc, _click_exceptions.NoSuchOption) and command != "o11yctl" and option in argv \
            and argv.index(option) < argv.index(command):
        hint = f"options go after the command: o11yctl {command} {option} ..."
    error = UsageError(message, hint=hint)
    _ENDING.append(True)
    if "--json" in argv:
        ui.print_json(ui.envelope(command, exit_code=error.exit_code, error=error))
    else:
        ui.print_error(error)
    return error.exit_code


def _interrupted(argv: Sequence[str]) -> None:
    """Ctrl-C before a command could say so itself."""
    from o11yctl import ui
    from o11yctl.errors import EXIT_INTERRUPTED, O11yError

    error = O11yError("interrupted", hint="nothing more was started; run the command again",
                      exit_code=EXIT_INTERRUPTED)
    if "--json" in argv:
        ui.print_json(ui.envelope(_command_name(argv), exit_code=EXIT_INTERRUPTED, error=error))
    else:
        ui.print_error(error)


app = typer.Typer(
    cls=_Cli,
    name="o11yctl",
    help="Install, verify and repair Loki, Tempo, Alloy and Grafana on a small K3s cluster.",
    epilog=EPILOG_MAIN,
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)

# --- shared options ---------------------------------------------------------------------------

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c",
        help="Config file. Default: $O11YCTL_CONFIG, else ./o11yctl.yaml, else the built-in default.",
        dir_okay=False,
    ),
]
RecoverOpt = Annotated[bool, typer.Option("--recover", help="Roll back helm releases stuck in pending-*.")]
S3StdinOpt = Annotated[bool, typer.Option(
    "--s3-keys-stdin", help="profile scalable, external store: read the access key id and secret key for the "
                            "credentials Secret from stdin, one per line (asked on a terminal); instead of "
                            "$O11YCTL_S3_ACCESS_KEY_ID / $O11YCTL_S3_SECRET_ACCESS_KEY.")]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print one JSON document on stdout (progress and logs go to stderr).")
]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show tracebacks of internal errors.", hidden=False)]
def _complete_names(names: Callable[[], Sequence[str]]) -> Callable[[str], list[str]]:
    """Shell completion for --only/--skip: the names not yet typed, after the last comma."""

    def complete(incomplete: str) -> list[str]:
        done, _, last = incomplete.rpartition(",")
        given = set(done.split(",")) if done else set()
        prefix = f"{done}," if done else ""
        return [prefix + n for n in names() if n.startswith(last) and n not in given]

    return complete


def _components() -> Sequence[str]:
    from o11yctl.stack.components import stack_for

    return stack_for().selectable


def _check_groups() -> Sequence[str]:
    from o11yctl.stack.components import stack_for

    return stack_for().check_groups


OnlyOpt = Annotated[
    list[str] | None,
    typer.Option("--only", help="Only these components (comma-separated, repeatable).", metavar="NAMES",
                 autocompletion=_complete_names(_components)),
]
SkipOpt = Annotated[
    list[str] | None,
    typer.Option("--skip", help="Leave out these components (comma-separated, repeatable).", metavar="NAMES",
                 autocompletion=_complete_names(_components)),
]
KubeconfigOpt = Annotated[
    Path | None,
    typer.Option("--kubeconfig",
                 help="kubeconfig file. Default: $O11YCTL_KUBECONFIG, else $KUBECONFIG, else ~/.kube/config."),
]
ContextOpt = Annotated[
    str | None, typer.Option("--context", help="kubeconfig context. Default: $O11YCTL_CONTEXT, else the "
                                                "kubeconfig's current context.")
]
AcceptNewOpt = Annotated[
    bool,
    typer.Option("--accept-new-host-keys",
                 help="Accept and record SSH host keys of hosts not yet in known_hosts (like OpenSSH's "
                      "accept-new). A changed key is always refused."),
]
AskSudoOpt = Annotated[bool, typer.Option("--ask-sudo-password", help="Prompt once for the sudo password.")]
SudoStdinOpt = Annotated[
    bool, typer.Option("--sudo-password-stdin", help="Read the sudo password from the first line of stdin.")
]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Answer yes to confirmations.")]


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"o11yctl {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool | None,
        typer.Option("--version", callback=_version_callback, is_eager=True, help="Print the version and exit."),
    ] = None,
) -> None:
    """Install, verify and repair Loki, Tempo, Alloy and Grafana on a small K3s cluster."""


# --- the error boundary -----------------------------------------------------------------------


def _run(command: str, json_output: bool, debug: bool, body: Callable[[], Report | None]) -> NoReturn:
    """Run a command body; turn its report or error into output and an exit code."""
    from o11yctl.errors import EXIT_INTERRUPTED, O11yError

    error: O11yError | None = None
    report: Report | None = None
    try:
        report = body()
    except O11yError as exc:
        error = exc
    except KeyboardInterrupt:
        changes = command in {"install", "uninstall", "upgrade", "move-data", "fix-vxlan", "doctor"}
        error = O11yError("interrupted", exit_code=EXIT_INTERRUPTED,
                          hint="some steps may have run: `o11yctl status` shows the stack's state, and running "
                               "the command again is safe" if changes else "nothing was changed; run the command again")
    except typer.Exit:
        raise
    except Exception as exc:  # the boundary: anything else is a bug
        _internal_error(command, exc, json_output, debug)
    from o11yctl import ui

    _ENDING.append(True)
    if error is not None:
        partial = getattr(error, "report", None)
        if json_output:
            items = partial.items if partial is not None else ()
            ui.print_json(ui.envelope(command, exit_code=error.exit_code, items=items, error=error))
        else:
            if partial is not None:
                ui.print_report(partial, json_output=False)
            ui.print_error(error)
        raise typer.Exit(error.exit_code)
    assert report is not None
    ui.print_report(report, json_output=json_output)
    raise typer.Exit(report.exit_code)


def _internal_error(command: str, exc: Exception, json_output: bool, debug: bool) -> NoReturn:
    import traceback

    from o11yctl import ui
    from o11yctl.errors import O11yError, write_crash_log

    text = "".join(traceback.format_exception(exc))
    log_file = write_crash_log(text)
    _ENDING.append(True)
    if json_output:
        wrapped = O11yError(f"internal error: {type(exc).__name__}: {exc}",
                            hint=f"traceback saved to {log_file}" if log_file else None)
        ui.print_json(ui.envelope(command, exit_code=1, error=wrapped))
    else:
        ui.print_internal_error(exc, log_file, text, debug)
    raise typer.Exit(1)


def _load(config: Path | None) -> Any:
    from o11yctl.config import load_config

    cfg, _source = load_config(config)
    return cfg


def _access(cfg: Any, *, kubeconfig: Path | None = None, context: str | None = None,
            accept_new_host_keys: bool = False, sudo_password: Any = None, request_timeout: float = 30.0) -> Any:
    """The one access object of a command: how to reach the cluster, helm and the nodes."""
    from o11yctl.access import Access, AccessOptions

    return Access(cfg, AccessOptions.from_flags(kubeconfig=str(kubeconfig) if kubeconfig else None, context=context,
                                                accept_new_host_keys=accept_new_host_keys,
                                                sudo_password=sudo_password, request_timeout=request_timeout))


# --- commands ---------------------------------------------------------------------------------


@app.command(epilog="""\
Examples:

  o11yctl init                            write ./o11yctl.yaml (or where $O11YCTL_CONFIG points)

  o11yctl init ~/homelab/o11yctl.yaml     write it there (also: --out PATH, or -c PATH)

Where it writes: PATH, else --out, else -c/--config (the same file the other commands read with
-c), else $O11YCTL_CONFIG when set, else ./o11yctl.yaml. An existing file is kept unless --force.
""")
def init(
    path: Annotated[Path | None, typer.Argument(help="Where to write.", show_default=False)] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Where to write (same as PATH).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
    config: Annotated[Path | None, typer.Option(
        "--config", "-c", dir_okay=False,
        help="Where to write: an alias of --out, so `-c FILE` names the same file for init as for the other "
             "commands.")] = None,
    json_output: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Write the built-in default configuration (the runbook's cluster) as a commented YAML file."""

    def body() -> Report:
        from o11yctl.init import init_target, write_default_config
        from o11yctl.model import Report, StepResult

        target, source = init_target(path=path, out=out, config=config)
        outcome = write_default_config(target, force=force)
        use = "" if source in ("./o11yctl.yaml", "$O11YCTL_CONFIG") else f" -c {target}"
        return Report("init", items=(StepResult("init", "config", outcome, f"wrote {target} (from {source})"),),
                      summary=f"wrote {target} (from {source}); edit it, then run `o11yctl install --dry-run{use}`")

    _run("init", json_output, debug, body)


@app.command(epilog="Example: o11yctl render --out k8s/logging -c o11yctl.yaml")
def render(
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory to write the eight files into (created).")],
    config: ConfigOpt = None,
    json_output: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Render the runbook's eight files (manifests and Helm values) from the configuration."""

    def body() -> Report:
        from o11yctl.stack.render import render_to_dir

        return render_to_dir(_load(config), out)

    _run("render", json_output, debug, body)


@app.command(epilog="""\
Examples:

  o11yctl install --dry-run                   the full plan, offline

  o11yctl install --only storage              only prepare the data directories over SSH

  o11yctl install --skip grafana,route        everything but Grafana and its route

Components for --only/--skip: namespace, storage, volumes, loki, alloy, tempo, grafana, route.
""")
def install(
    config: ConfigOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan and exit; contact nothing.")] = False,
    diff: Annotated[bool, typer.Option("--diff", help="Read the cluster and show what would change.")] = False,
    only: OnlyOpt = None,
    skip: SkipOpt = None,
    yes: YesOpt = False,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    accept_new_host_keys: AcceptNewOpt = False,
    ask_sudo_password: AskSudoOpt = False,
    sudo_password_stdin: SudoStdinOpt = False,
    recover: RecoverOpt = False,
    label_nodes: Annotated[
        bool, typer.Option("--label-nodes", help="Apply the storage node's missing label and taint.")
    ] = False,
    allow_chart_mismatch: Annotated[
        bool, typer.Option("--allow-chart-mismatch", help="Accept a local chart whose version differs from the pin.")
    ] = False,
    s3_keys_stdin: S3StdinOpt = False,
    json_output: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Prepare storage, apply the manifests, install the charts at pinned versions, wait until ready."""

    def body() -> Report | None:
        from o11yctl.stack.context import stack_of
        from o11yctl.stack.plan import build_plan, parse_components

        if dry_run and diff:
            from o11yctl.errors import UsageError

            raise UsageError("--dry-run and --diff exclude each other",
                             hint="--dry-run prints the plan without contacting anything; --diff reads the cluster "
                                  "and says what would change")
        cfg = _load(config)
        allowed = stack_of(cfg).selectable
        plan = build_plan(cfg, only=parse_components(only, flag="--only", allowed=allowed),
                          skip=parse_components(skip, flag="--skip", allowed=allowed))
        if dry_run:
            from o11yctl.deploy.install import dry_run_report

            return dry_run_report(plan)
        from o11yctl import ui
        from o11yctl.deploy.install import InstallOptions, run_install

        options = InstallOptions(diff=diff, assume_yes=yes, recover=recover, label_nodes=label_nodes,
                                 allow_chart_mismatch=allow_chart_mismatch,
                                 s3_keys=_s3_keys(s3_keys_stdin, sudo_password_stdin))
        progress = ui.Progress()
        with _access(cfg, kubeconfig=kubeconfig, context=context, accept_new_host_keys=accept_new_host_keys,
                     sudo_password=_sudo_password(ask_sudo_password, sudo_password_stdin)) as access, \
                progress.running():
            return run_install(plan, access, options, callbacks=_walk_callbacks(progress),
                confirm=lambda question, lines: ui.confirm_changes(question, lines, assume_yes=yes))

    _run("install", json_output, debug, body)


def _sudo_password(ask: bool, stdin: bool) -> Any:
    from o11yctl.errors import UsageError
    from o11yctl.secrets import Secret

    if ask and stdin:
        raise UsageError("--ask-sudo-password and --sudo-password-stdin exclude each other", hint="pick one")
    if stdin:
        line = sys.stdin.readline()
        if not line:
            raise UsageError("--sudo-password-stdin: stdin is empty", hint="pipe the password in, e.g. from a vault")
        return Secret(line.rstrip("\r\n"))
    if ask:
        from o11yctl import ui

        return Secret(ui.ask_secret("sudo password: "))
    return None


def _s3_keys(stdin: bool, sudo_stdin: bool) -> Any:
    """--s3-keys-stdin: an external store's access key id and secret key, one per line (asked on a terminal)."""
    if not stdin:
        return None
    from o11yctl.deploy.credentials import stdin_keys
    from o11yctl.errors import UsageError

    if sudo_stdin:
        raise UsageError("--s3-keys-stdin and --sudo-password-stdin both read standard input",
                         hint="give the sudo password with --ask-sudo-password, or the keys in "
                              "$O11YCTL_S3_ACCESS_KEY_ID and $O11YCTL_S3_SECRET_ACCESS_KEY")
    if sys.stdin.isatty():
        from o11yctl import ui

        return stdin_keys(ui.ask_secret("S3 access key id: ") + "\n" + ui.ask_secret("S3 secret key: ") + "\n")
    return stdin_keys(sys.stdin.read(64 * 1024))


def _not_yet(command: str, json_output: bool, debug: bool) -> NoReturn:
    def body() -> Report:
        from o11yctl.errors import NotAvailable

        raise NotAvailable(f"`o11yctl {command}` is not available in this version yet",
                           hint="see README.md for what each command does today")

    _run(command, json_output, debug, body)


@app.command(epilog="""\
Examples:

  o11yctl uninstall                     remove the releases and the route; keep PVCs, PVs and data

  o11yctl uninstall --delete-data --yes  remove everything, the stored logs and traces too
""")
def uninstall(
    config: ConfigOpt = None,
    delete_data: Annotated[bool, typer.Option("--delete-data", help="Also delete PVCs, PVs and data directories.")]
    = False,
    yes: YesOpt = False,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    accept_new_host_keys: AcceptNewOpt = False,
    ask_sudo_password: AskSudoOpt = False,
    sudo_password_stdin: SudoStdinOpt = False,
    json_output: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Remove the releases and objects in reverse order; keep the data unless --delete-data."""

    def body() -> Report:
        from o11yctl import ui
        from o11yctl.deploy.uninstall import UninstallOptions, run_uninstall

        cfg = _load(config)
        options = UninstallOptions(delete_data=delete_data, assume_yes=yes)
        progress = ui.Progress()
        with _access(cfg, kubeconfig=kubeconfig, context=context, accept_new_host_keys=accept_new_host_keys,
                     sudo_password=_sudo_password(ask_sudo_password, sudo_password_stdin)) as access, \
                progress.running():
            return run_uninstall(cfg, access, options, callbacks=_walk_callbacks(progress),
                confirm=lambda question, lines: ui.confirm_changes(question, lines, assume_yes=yes))

    _run("uninstall", json_output, debug, body)


def _walk_callbacks(progress: Any) -> Any:
    """The walk's progress events, shown by ``progress`` (a :class:`o11yctl.ui.Progress`)."""
    from o11yctl.deploy.walk import Callbacks

    return Callbacks(on_start=lambda step: progress.start(step.id, step.description), on_done=progress.done,
                     on_stopping=progress.stopping)


def _chart_sets() -> list[str]:
    from o11yctl.stack.catalog import SETS

    return list(SETS)


@app.command(epilog="""\
Examples:

  o11yctl upgrade --to current --dry-run   the whole move, offline: versions, values diff, data, steps

  o11yctl upgrade --to current --diff      read the cluster first: the live values against the new ones

  o11yctl upgrade --to current             check, then one release at a time, each verified

Releases go one at a time: Loki and Tempo (they hold the data), then Alloy, then Grafana.
Each is followed by its pods Ready, its /ready and `verify --only <it>`; a release that
fails is rolled back to the revision it had and nothing after it is touched. The
PersistentVolumes, claims and directories stay as they are. Re-running changes nothing.
""")
def upgrade(
    to: Annotated[str, typer.Option("--to", metavar="SET", help="The chart set to move to (see `o11yctl init`).",
                                    autocompletion=_complete_names(_chart_sets))],
    config: ConfigOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the whole upgrade and exit; contact nothing.")]
    = False,
    diff: Annotated[bool, typer.Option("--diff", help="Check and read the cluster; show what would change.")]
    = False,
    yes: YesOpt = False,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    accept_new_host_keys: AcceptNewOpt = False,
    ask_sudo_password: AskSudoOpt = False,
    sudo_password_stdin: SudoStdinOpt = False,
    json_output: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Move the installed charts to another chart set (e.g. the maintained ones), data kept."""

    def body() -> Report:
        from o11yctl.errors import UsageError
        from o11yctl.stack.upgrade import target_config

        if dry_run and diff:
            raise UsageError("--dry-run and --diff exclude each other",
                             hint="--dry-run prints the upgrade without contacting anything; --diff reads the "
                                  "cluster and says what would change")
        cfg = _load(config)
        target_config(cfg, to)  # an unknown set is a usage error before anything else
        if dry_run:
            from o11yctl.deploy.upgrade import dry_run_report

            return dry_run_report(cfg, to)
        from o11yctl import ui
        from o11yctl.deploy.upgrade import UpgradeOptions, run_upgrade

        progress = ui.Progress()
        with _access(cfg, kubeconfig=kubeconfig, context=context, accept_new_host_keys=accept_new_host_keys,
                     sudo_password=_sudo_password(ask_sudo_password, sudo_password_stdin)) as access, \
                progress.running():
            return run_upgrade(cfg, access, UpgradeOptions(to_set=to, diff=diff, assume_yes=yes),
                               callbacks=_walk_callbacks(progress),
                confirm=lambda question, lines: ui.confirm_changes(question, lines, assume_yes=yes))

    _run("upgrade", json_output, debug, body)


@app.command("move-data", epilog="""\
Examples:

  o11yctl move-data --dry-run                       every step and command; reads only the volumes

  o11yctl move-data --from /mnt/k8s-storage --dry-run   the same, offline, from that old root

  o11yctl move-data                                 check the room, then move, one component at a time

After `storage.root` changed in the config: for Loki, then Tempo, scale its StatefulSet
to 0, copy its directory on the storage node (cp -a, owner and modes kept; compared with
the source), re-create its PersistentVolume at the new path and re-bind its claim, start
it again and run its verify checks. Refused (nothing changed) when the target lacks room.
The old directories are never deleted: the summary names them and the command to delete
them. On a failure, what was stopped is started again where its claim is still usable.
""")
def move_data(
    config: ConfigOpt = None,
    from_root: Annotated[str | None, typer.Option(
        "--from", metavar="OLD_ROOT",
        help="The old storage.root: where the data is when a volume is gone, or for an offline --dry-run.")]
    = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print every step and command and exit; change nothing "
                                                             "(offline with --from).")] = False,
    yes: YesOpt = False,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    accept_new_host_keys: AcceptNewOpt = False,
    ask_sudo_password: AskSudoOpt = False,
    sudo_password_stdin: SudoStdinOpt = False,
    json_output: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Move Loki's and Tempo's data directories to the config's storage.root, on the storage node."""

    def body() -> Report:
        cfg = _load(config)
        if dry_run:
            from o11yctl.deploy.move import dry_run_report

            if from_root is not None:
                return dry_run_report(cfg, None, from_root)
            with _access(cfg, kubeconfig=kubeconfig, context=context) as access:
                return dry_run_report(cfg, access, None)
        from o11yctl import ui
        from o11yctl.deploy.move import MoveOptions, run_move_data

        progress = ui.Progress()
        with _access(cfg, kubeconfig=kubeconfig, context=context, accept_new_host_keys=accept_new_host_keys,
                     sudo_password=_sudo_password(ask_sudo_password, sudo_password_stdin)) as access, \
                progress.running():
            return run_move_data(cfg, access, MoveOptions(from_root=from_root, assume_yes=yes),
                                 callbacks=_walk_callbacks(progress),
                confirm=lambda question, lines: ui.confirm_changes(question, lines, assume_yes=yes))

    _run("move-data", json_output, debug, body)


@app.command(epilog="""\
Examples:

  o11yctl migrate -c scalable.yaml --dry-run        where the move stands, and the plan of the stage due

  o11yctl migrate -c scalable.yaml --dry-run --stage bridge   a stage's plan, offline

  o11yctl migrate -c scalable.yaml                  run the stage due (asks first; --yes skips the question)

Moves a single-node install to profile scalable in two stages, one retention apart. The
config is the profile scalable one, with the installed stack's namespace and storage node.
1 (bridge): the single-node install stays; Loki writes to the bucket from the next UTC day
(older logs are still read from its volume), Tempo from now (the traces on its volume are no
longer shown); a ConfigMap records the day. 2 (finish), once Loki's retention has passed
since that day: Loki's and Tempo's StatefulSets are deleted with --cascade=orphan and
profile scalable is installed. The old claims, volumes and directories are never deleted.
Before stage 2 is due, migrate changes nothing and exits 1; --early finishes anyway.
""")
def migrate(
    config: ConfigOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Read where the move stands and print the plan of the "
                                                             "stage due; change nothing.")] = False,
    stage: Annotated[str | None, typer.Option(
        "--stage", metavar="bridge|finish", autocompletion=_complete_names(lambda: ("bridge", "finish")),
        help="With --dry-run: print that stage's plan offline, without contacting the cluster.")] = None,
    early: Annotated[bool, typer.Option("--early", help="Finish before Loki's retention has passed since the bucket "
                                                         "period began (older logs stay on the volume, unshown).")]
    = False,
    yes: YesOpt = False,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    accept_new_host_keys: AcceptNewOpt = False,
    ask_sudo_password: AskSudoOpt = False,
    sudo_password_stdin: SudoStdinOpt = False,
    recover: RecoverOpt = False,
    s3_keys_stdin: S3StdinOpt = False,
    json_output: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Move a single-node install to profile scalable, data kept (two stages, one retention apart)."""

    def body() -> Report:
        from o11yctl.errors import UsageError

        if stage not in (None, "bridge", "finish"):
            raise UsageError(f"--stage: unknown stage {stage!r}", hint="choose bridge or finish")
        if stage is not None and not dry_run:
            raise UsageError("--stage goes with --dry-run", hint="migrate runs the stage that is due; "
                                                                "`--dry-run --stage bridge|finish` prints one offline")
        cfg = _load(config)
        if dry_run:
            from o11yctl.deploy.migrate import dry_run as migrate_dry_run

            if stage is not None:
                return migrate_dry_run(cfg, None, stage=stage, early=early)
            with _access(cfg, kubeconfig=kubeconfig, context=context) as access:
                return migrate_dry_run(cfg, access, stage=None, early=early)
        from o11yctl import ui
        from o11yctl.deploy.migrate import MigrateOptions, run_migrate

        progress = ui.Progress()
        with _access(cfg, kubeconfig=kubeconfig, context=context, accept_new_host_keys=accept_new_host_keys,
                     sudo_password=_sudo_password(ask_sudo_password, sudo_password_stdin)) as access, \
                progress.running():
            keys = _s3_keys(s3_keys_stdin, sudo_password_stdin)
            return run_migrate(cfg, access, MigrateOptions(early=early, assume_yes=yes, recover=recover,
                                                           s3_keys=keys),
                               callbacks=_walk_callbacks(progress),
                               confirm=lambda question, lines: ui.confirm_changes(question, lines, assume_yes=yes))

    _run("migrate", json_output, debug, body)


def _url_option(flag: str, env: str, text: str) -> Any:
    return typer.Option(flag, envvar=env, show_envvar=True, help=text, metavar="URL")


@app.command(epilog="""\
Examples:

  o11yctl verify --only loki,tempo --loki-url http://127.0.0.1:3100 --tempo-url http://127.0.0.1:3200

  O11YCTL_GRAFANA_TOKEN=... o11yctl verify --only grafana --grafana-url http://127.0.0.1:3000/grafana

Services without a URL flag are reached through the Kubernetes API's service proxy (kubeconfig:
--kubeconfig, else $KUBECONFIG, else ~/.kube/config); the data directories over SSH. Groups for
--only/--skip: cluster, loki, alloy, tempo, grafana. Grafana's data source checks log in with
O11YCTL_GRAFANA_TOKEN (never a flag), else with the admin password from the chart's Secret, at
--grafana-url, else at route.url, and only over https:// or to a loopback address (a port-forward):
credentials never cross the network in clear text (see --allow-http-token). Test data is
labelled: log lines go to the stream {job="o11yctl-verify"}, spans to the service o11yctl-verify.
Exit codes: 0 nothing failed; 1 a check failed; 2 usage error; 3 the kubeconfig named by
--kubeconfig/--context is unusable, or every selected check was skipped.
""")
def verify(
    config: ConfigOpt = None,
    only: Annotated[
        list[str] | None,
        typer.Option("--only", help="Only these check groups (comma-separated, repeatable).", metavar="GROUPS",
                     autocompletion=_complete_names(_check_groups)),
    ] = None,
    skip: Annotated[
        list[str] | None,
        typer.Option("--skip", help="Leave out these check groups (comma-separated, repeatable).", metavar="GROUPS",
                     autocompletion=_complete_names(_check_groups)),
    ] = None,
    loki_url: Annotated[str | None, _url_option("--loki-url", "O11YCTL_LOKI_URL",
                                                "Loki's HTTP API, e.g. http://127.0.0.1:3100.")] = None,
    tempo_url: Annotated[str | None, _url_option("--tempo-url", "O11YCTL_TEMPO_URL",
                                                 "Tempo's HTTP API (port 3200).")] = None,
    otlp_url: Annotated[str | None, _url_option("--otlp-url", "O11YCTL_OTLP_URL",
                                                "Tempo's OTLP/HTTP receiver. Default: the --tempo-url host on "
                                                "port 4318.")] = None,
    grafana_url: Annotated[str | None, _url_option("--grafana-url", "O11YCTL_GRAFANA_URL",
                                                   "Grafana, with its sub path, e.g. "
                                                   "http://127.0.0.1:3000/grafana.")] = None,
    timeout: Annotated[float, typer.Option("--timeout", min=0.1, metavar="SECONDS",
                                           help="Deadline for all checks together (they run at once).")] = 60.0,
    grafana_ca: Annotated[Path | None, typer.Option(
        "--grafana-ca", envvar="O11YCTL_GRAFANA_CA", show_envvar=True, dir_okay=False, metavar="FILE",
        help="CA bundle (PEM) to verify Grafana's https:// certificate with, for a private CA.")] = None,
    allow_http_token: Annotated[bool, typer.Option(
        "--allow-http-token",
        help="Also send O11YCTL_GRAFANA_TOKEN to a plain http:// Grafana URL on another host. Risky: anyone on "
             "the network path can read the token and act as it in Grafana. Without this flag the token goes "
             "only over https:// or to a loopback address; the admin password never goes over plain HTTP.")
    ] = False,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    accept_new_host_keys: AcceptNewOpt = False,
    json_output: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Check readiness and run end-to-end tests against Loki, Tempo and Grafana."""

    def body() -> Report:
        from o11yctl.verify.run import VerifyOptions, run_verify

        cfg = _load(config)
        options = VerifyOptions(only=only or (), skip=skip or (), loki_url=loki_url, tempo_url=tempo_url,
                                otlp_url=otlp_url, grafana_url=grafana_url, timeout=timeout,
                                grafana_ca=str(grafana_ca) if grafana_ca else None,
                                allow_http_token=allow_http_token)
        with _access(cfg, kubeconfig=kubeconfig, context=context, accept_new_host_keys=accept_new_host_keys,
                     request_timeout=options.request_timeout) as access:
            return run_verify(cfg, access, options)

    _run("verify", json_output, debug, body)


@app.command("fix-vxlan", epilog="""\
Examples:

  o11yctl fix-vxlan --check          ping matrix over flannel.1 and why each failing direction fails

  o11yctl fix-vxlan --dry-run        also print the exact commands a fix would run on each node

  o11yctl fix-vxlan                  accept UDP 8472 from each blocked peer's VXLAN endpoint only, test again

  o11yctl fix-vxlan --restart        ...then restart k3s / k3s-agent on the nodes involved

When a cluster is reachable (--kubeconfig, else $KUBECONFIG, else ~/.kube/config), --check and a
fix also run the runbook's pod test: a short-lived pod (images.test_image) on each other node pings
the Loki pod, and is deleted afterwards. Its rows (group pod-ping) never change the exit code.
Exit codes: 0 the overlay works (afterwards); 1 it does not (the report says what is broken);
3 a node could not be reached (the others are still reported; nothing was changed).
""")
def fix_vxlan(
    config: ConfigOpt = None,
    check: Annotated[bool, typer.Option("--check", help="Only diagnose (read-only); change nothing.")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Diagnose (read-only) and print the exact commands a fix would run.")
    ] = False,
    restart: Annotated[
        bool, typer.Option("--restart", help="After the fix, restart K3s on the nodes that changed or still fail "
                                             "(vxlan.restart sets the command per role).")
    ] = False,
    fix_checksum_offload: Annotated[
        bool, typer.Option("--fix-checksum-offload",
                           help="Also turn off tx-checksum-ip-generic on the VXLAN device (ethtool -K).")
    ] = False,
    yes: YesOpt = False,
    no_pod_test: Annotated[
        bool, typer.Option("--no-pod-test", help="Leave out the runbook's pod test (a pod on each node pinging "
                                                 "the Loki pod; it runs only when a cluster is reachable).")
    ] = False,
    pod_test_timeout: Annotated[
        float, typer.Option("--pod-test-timeout", min=1.0, metavar="SECONDS",
                            help="How long the test pods may take, image pull included.")
    ] = 60.0,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    accept_new_host_keys: AcceptNewOpt = False,
    ask_sudo_password: AskSudoOpt = False,
    sudo_password_stdin: SudoStdinOpt = False,
    json_output: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Diagnose and fix cross-node Flannel VXLAN (UDP 8472) over SSH."""

    def body() -> Report:
        from o11yctl import ui
        from o11yctl.vxlan.run import FixVxlanOptions, run_fix_vxlan

        cfg = _load(config)
        options = FixVxlanOptions(check=check, dry_run=dry_run, restart=restart, assume_yes=yes,
                                  fix_checksum_offload=fix_checksum_offload, pod_test=not no_pod_test,
                                  pod_test_timeout=pod_test_timeout)
        with _access(cfg, kubeconfig=kubeconfig, context=context, accept_new_host_keys=accept_new_host_keys,
                     sudo_password=_sudo_password(ask_sudo_password, sudo_password_stdin),
                     request_timeout=10.0) as access:
            report = run_fix_vxlan(cfg, access, options, on_event=None if json_output else ui.info,
                                   confirm=lambda question: ui.confirm(question, assume_yes=yes))
        if not json_output:
            ui.print_vxlan(report)
        return report

    _run("fix-vxlan", json_output, debug, body)


@app.command(epilog="""\
Examples:

  o11yctl status                       releases, pods, volumes, disk use, retention, Grafana's URL

  o11yctl status --watch               the same, redrawn every 5 seconds until Ctrl-C

  o11yctl status --json | jq .status.volumes

With --watch --json, each refresh is one line holding one JSON envelope (JSON Lines).
Exit codes: 0 every part read; 1 a part could not be read (the others still show); 3 the
cluster cannot be reached; 130 interrupted.
""")
def status(
    config: ConfigOpt = None,
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Refresh in place until Ctrl-C.")] = False,
    interval: Annotated[float, typer.Option("--interval", min=1.0, metavar="SECONDS",
                                            help="Seconds between refreshes with --watch.")] = 5.0,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    accept_new_host_keys: AcceptNewOpt = False,
    json_output: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Show the stack's health on one screen: releases, pods, volumes, storage, retention, Grafana."""

    def body() -> Report:
        from o11yctl import ui
        from o11yctl.status.read import read_status

        cfg = _load(config)
        with _access(cfg, kubeconfig=kubeconfig, context=context, accept_new_host_keys=accept_new_host_keys,
                     request_timeout=10.0) as access:
            if watch:
                ui.watch_status(lambda: read_status(cfg, access), interval, json_output=json_output)
                raise typer.Exit(0)
            report = read_status(cfg, access)
        if not json_output:
            ui.print_status(report)
        return report

    _run("status", json_output, debug, body)


@app.command(epilog="""\
Examples:

  o11yctl doctor                      one finding per problem: symptom, cause, evidence, fix

  o11yctl doctor --fix                also apply the safe fixes, each shown and confirmed first

  o11yctl doctor --bundle s.tar.gz    also collect logs, events and descriptions for a maintainer

What it checks (the runbook's troubleshooting): PVC stays in Pending, pod stuck in Pending,
CrashLoopBackOff, pod running but /ready fails, Alloy running but no logs in Loki. It reads the
cluster through the Kubernetes API, and the nodes over SSH only when a finding needs it (a data
directory's owner, the overlay's diagnosis). The bundle never holds Secret objects or Helm release
records, and known secret values (Secret data, the sudo password, O11YCTL_GRAFANA_TOKEN) are
replaced by [REDACTED].
Exit codes: 0 no problem found (or all fixed); 1 problems remain; 2 usage error; 3 the cluster
cannot be reached.
""")
def doctor(
    config: ConfigOpt = None,
    fix: Annotated[
        bool, typer.Option("--fix", help="Apply the fixes o11yctl can apply safely itself (chown of a data directory "
                                         "over SSH, a node's label or taint, fix-vxlan), each shown and confirmed "
                                         "first.")
    ] = False,
    yes: YesOpt = False,
    bundle: Annotated[
        Path | None,
        typer.Option("--bundle", metavar="FILE.tar.gz", dir_okay=False,
                     help="Also write a support bundle: pod logs and previous logs, events, PV/PVC/node descriptions, "
                          "helm status and values, o11yctl's config and version. No Secrets; known secret values "
                          "removed."),
    ] = None,
    check_timeout: Annotated[float, typer.Option(
        "--check-timeout", min=0.1, metavar="SECONDS",
        help="Deadline for verify's read-only checks, which doctor runs first, all together (raise it on a "
             "slow link).")] = 15.0,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    accept_new_host_keys: AcceptNewOpt = False,
    ask_sudo_password: AskSudoOpt = False,
    sudo_password_stdin: SudoStdinOpt = False,
    json_output: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Walk the runbook's troubleshooting tree and name the cause of each problem."""

    def body() -> Report:
        from o11yctl import ui
        from o11yctl.config import load_config
        from o11yctl.doctor.run import DoctorCallbacks, DoctorOptions, run_doctor

        cfg, source = load_config(config)
        options = DoctorOptions(fix=fix, assume_yes=yes, bundle=bundle, config_source=source.describe(),
                                check_timeout=check_timeout)
        with _access(cfg, kubeconfig=kubeconfig, context=context, accept_new_host_keys=accept_new_host_keys,
                     sudo_password=_sudo_password(ask_sudo_password, sudo_password_stdin)) as access:
            report = run_doctor(cfg, access, options, DoctorCallbacks(
                show=ui.info, confirm=lambda question: ui.confirm(question, assume_yes=yes)))
        if not json_output:
            ui.print_findings(report)
        return report

    _run("doctor", json_output, debug, body)

