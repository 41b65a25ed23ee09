"""The only place that prints.

Reports go to stdout (a Rich table, or one JSON document with ``--json``);
progress, logs and errors go to stderr, so ``--json`` output can be piped.
Rich honours ``NO_COLOR`` and falls back to plain text when not on a terminal.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from o11yctl.errors import O11yError
from o11yctl.model import CheckResult, Report, StepResult


def _width(stream: Any) -> int | None:
    # Rich assumes 80 columns off a terminal; a pipe or a CI log reads better unwrapped at 160.
    if os.environ.get("COLUMNS") or (hasattr(stream, "isatty") and stream.isatty()):
        return None
    return 160


out = Console(highlight=False, soft_wrap=False, width=_width(sys.stdout))
err = Console(stderr=True, highlight=False, width=_width(sys.stderr))

_OUTCOME_STYLE = {
    "created": "green",
    "changed": "yellow",
    "unchanged": "dim",
    "skipped": "dim",
    "failed": "bold red",
}
_STATUS_STYLE = {"PASS": "green", "WARN": "yellow", "FAIL": "bold red", "SKIP": "dim"}


def envelope(command: str, *, exit_code: int, items: Sequence[StepResult | CheckResult] = (),
             error: O11yError | None = None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The one JSON shape every reporting command prints with --json."""
    doc: dict[str, Any] = {
        "command": command,
        "ok": exit_code == 0,
        "exit_code": exit_code,
        "items": [i.to_json() for i in items],
        "error": None if error is None else {"message": error.message, "hint": error.hint},
    }
    if extra:
        doc.update(extra)
    return doc


#: Set while `status --watch --json` runs: every envelope, the last (interrupted) one too, is one line.
_json_lines: list[bool] = []


def print_json(doc: dict[str, Any]) -> None:
    text = json.dumps(doc, default=str) if _json_lines else json.dumps(doc, indent=2, default=str)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def print_error(error: O11yError) -> None:
    # One line each, never wrapped: scripts and people grep for `error:` and `hint:`.
    err.print(Text("error: ", style="bold red") + Text(error.message), soft_wrap=True)
    if error.hint:
        err.print(Text(f"hint: {error.hint}", style="dim"), soft_wrap=True)


def print_internal_error(exc: BaseException, log_file: Path | None, traceback_text: str, debug: bool) -> None:
    if debug:
        err.print(Text(traceback_text))
    err.print(Text("internal error: ", style="bold red") + Text(f"{type(exc).__name__}: {exc}"))
    if log_file:
        err.print(Text(f"the traceback was saved to {log_file}; please attach it to a bug report", style="dim"))


def info(message: str) -> None:
    err.print(Text(message))


def success(message: str) -> None:
    err.print(Text(message, style="green"))


def print_report(report: Report, *, json_output: bool) -> None:
    """A command's result: the JSON envelope, or a table and a summary line."""
    if json_output:
        print_json(envelope(report.command, exit_code=report.exit_code, items=report.items, extra=report.extra,
                            error=report.error))
        return
    if report.command == "upgrade" and (report.extra.get("dry_run") or report.extra.get("diff")):
        print_upgrade(report)
        out.print(Text(report.summary, style="green"))
        return
    if report.extra.get("dry_run"):
        print_plan(report)
        out.print(Text(report.summary, style="green"))
        return
    steps = [i for i in report.items if isinstance(i, StepResult)]
    checks = [i for i in report.items if isinstance(i, CheckResult)]
    if steps:
        out.print(steps_table(steps))
    if checks:
        out.print(checks_table(checks))
    if report.summary:
        style = "green" if report.ok else "bold red"
        out.print(Text(report.summary, style=style))
    if report.error is not None:
        print_error(report.error)


def steps_table(steps: Sequence[StepResult]) -> Table:
    table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    for col in ("step", "host", "outcome", "detail", "time"):
        table.add_column(col, overflow="fold")
    for s in steps:
        table.add_row(
            Text(s.id), Text(s.host or "-"), Text(s.outcome, style=_OUTCOME_STYLE.get(s.outcome, "")),
            Text(s.detail), Text(f"{s.seconds:.1f}s"),
        )
    return table


def checks_table(checks: Sequence[CheckResult]) -> Table:
    table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    for col in ("check", "status", "detail", "time"):
        table.add_column(col, overflow="fold")
    for c in checks:
        detail = Text(c.detail)
        if c.hint and c.status != "PASS":
            detail.append(f"\n→ {c.hint}", style="dim")
        table.add_row(Text(c.id), Text(c.status, style=_STATUS_STYLE[c.status]), detail, Text(f"{c.seconds:.1f}s"))
    return table


class Progress:
    """Step progress on stderr. Steps may run at the same time: on a terminal each running step
    has its own line (spinner, step, elapsed time) and a finished step's line is printed above
    them; otherwise (a pipe, CI, ``--json``'s stderr) one line when a step starts and one when
    it ends. Called from the threads that run the steps."""

    def __init__(self, *, quiet: bool = False) -> None:
        self.quiet = quiet
        self._live = err.is_terminal and not quiet
        self._progress: Any = None
        self._tasks: dict[str, Any] = {}
        self._lock = threading.Lock()

    def start(self, step_id: str, description: str) -> None:
        if self.quiet:
            return
        if not self._live:
            err.print(Text(f"… {step_id}: {description}"), soft_wrap=True)
            return
        from rich.progress import Progress as RichProgress
        from rich.progress import SpinnerColumn, TextColumn, TimeElapsedColumn

        with self._lock:
            if self._progress is None:
                self._progress = RichProgress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                                              console=err, transient=True)
                self._progress.start()
            self._tasks[step_id] = self._progress.add_task(f"{step_id}: {description}", total=None)

    def done(self, result: StepResult) -> None:
        if self.quiet:
            return
        mark = {"failed": "✗", "skipped": "-", "unchanged": "="}.get(result.outcome, "✓")
        line = Text(f"{mark} {result.id}", style=_OUTCOME_STYLE.get(result.outcome, ""))
        line.append(f"  {result.outcome}", style=_OUTCOME_STYLE.get(result.outcome, ""))
        if result.host:
            line.append(f"  [{result.host}]")
        if result.detail:
            line.append(f"  {result.detail}", style="dim")
        line.append(f"  ({result.seconds:.1f}s)", style="dim")
        with self._lock:
            task = self._tasks.pop(result.id, None)
            if task is not None:
                self._progress.remove_task(task)
            # Printed through the live display, so the line stays above the running steps.
            (self._progress.console if self._progress is not None else err).print(line)

    def stopping(self, why: str, running: int) -> None:
        """No new step starts; say what is still being waited for."""
        if self.quiet:
            return
        text = Text(f"stopping ({why}): waiting for {running} running step(s) to finish; "
                    "Ctrl-C again to stop waiting", style="yellow")
        with self._lock:
            (self._progress.console if self._progress is not None else err).print(text)

    def close(self) -> None:
        with self._lock:
            if self._progress is not None:
                self._progress.stop()
                self._progress = None
                self._tasks.clear()

    @contextmanager
    def running(self) -> Iterator[Progress]:
        try:
            yield self
        finally:
            self.close()


def print_upgrade(report: Report) -> None:
    """``upgrade --dry-run`` / ``--diff``: per release the versions, the values diff and the data; then the steps."""
    releases = report.extra.get("releases")
    assert isinstance(releases, list)
    for rel in releases:
        before, after = rel["before"], rel["after"]
        head = Text(f"{rel['release']}: ", style="bold")
        if not rel["changes_chart"]:
            head.append(f"chart {after['chart']} {after['version']} stays", style="dim")
        else:
            was = f"{before['chart']} {before['version']} (app {before['app_version']})" if before else "unknown"
            head.append(f"{was} -> {after['chart']} {after['version']} (app {after['app_version']}) "
                        f"from {after['repository']}")
        out.print(head, soft_wrap=True)
        for line in rel["data"]:
            out.print(Text(f"  data: {line}"), soft_wrap=True)
        for line in rel["refused"]:
            out.print(Text(f"  refused: {line}", style="bold red"), soft_wrap=True)
        for line in rel["values_diff"]:
            style = "green" if line.startswith("+") else "red" if line.startswith("-") else "dim"
            out.print(Text(f"    {line}", style=style), soft_wrap=True)
    steps = report.extra.get("plan")
    if isinstance(steps, list):
        out.print(Text(f"steps, one after another ({len(steps)}):", style="bold"))
        for step in steps:
            out.print(Text(f"{step['n']:2}. {step['id']}: {step['description']}"), soft_wrap=True)
            for line in step["commands"]:
                out.print(Text(f"      {line}"), soft_wrap=True)


def print_plan(report: Report) -> None:
    """Print an install plan (``--dry-run``): numbered steps, the exact commands under each."""
    steps = report.extra["plan"]
    assert isinstance(steps, list)
    migration = report.extra.get("migration")
    if isinstance(migration, dict):
        out.print(Text(f"Moving namespace {report.extra['namespace']} to profile scalable ({migration['stage']}):",
                       style="bold"))
        for line in migration["lines"]:
            out.print(Text(f"  - {line}"), soft_wrap=True)
    out.print(Text(f"o11yctl {report.command} plan for namespace {report.extra['namespace']}: {len(steps)} steps; each "
                   f"starts once the steps it comes after have finished, up to {report.extra.get('parallel', 1)} "
                   "at once", style="bold"))
    for step in steps:
        head = Text(f"{step['n']:2}. ", style="bold")
        head.append(f"[{step['component']}] ", style="cyan")
        head.append(step["description"])
        out.print(head)
        for line in step["commands"]:
            out.print(Text(f"      {line}"), soft_wrap=True)
        if step["depends_on"]:
            out.print(Text(f"      after: {', '.join(step['depends_on'])}", style="dim"))
    out.print(Text("Values files are rendered into a private temporary directory at install time; "
                   "`o11yctl render --out DIR` writes the same files.", style="dim"))


def confirm(question: str, *, assume_yes: bool) -> bool:
    """Ask on the terminal; without a terminal and without --yes, the answer is no."""
    if assume_yes:
        return True
    if not sys.stdin.isatty():
        return False
    from rich.prompt import Confirm

    return Confirm.ask(question, console=err, default=False)


def confirm_changes(question: str, lines: Sequence[str], *, assume_yes: bool) -> bool:
    """Show what would change (on stderr), then ask; without a terminal and without --yes, the answer is no."""
    if not assume_yes:
        for line in lines:
            err.print(Text(f"  {line}"))
    return confirm(question, assume_yes=assume_yes)


def ask_secret(prompt: str) -> str:
    import getpass

    return getpass.getpass(prompt)


_CELL_STYLE = {"ok": "green", "fail": "bold red", "?": "yellow"}


def print_vxlan(report: Report) -> None:
    """fix-vxlan's node-by-node ping matrix, what blocks each failing direction, and the plan of --dry-run."""
    extra = report.extra
    matrix = extra.get("matrix")
    if isinstance(matrix, dict) and matrix:
        names = list(matrix)
        out.print(Text("overlay pings over the VXLAN device (each row pings each column):", style="bold"))
        table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
        table.add_column("from \\ to")
        for name in names:
            table.add_column(name, justify="center")
        for src in names:
            row = [Text(src, style="bold")]
            for dst in names:
                cell = "-" if src == dst else str(matrix[src].get(dst, "?"))
                row.append(Text(cell, style=_CELL_STYLE.get(cell, "dim")))
            table.add_row(*row)
        out.print(table)
    pods = extra.get("pod_test")
    loki = pods.get("loki") if isinstance(pods, dict) else None
    if isinstance(pods, dict) and isinstance(loki, dict) and pods.get("runs"):
        out.print(Text(f"pods pinging Loki's pod {loki['ip']} on {loki['node']} ({pods['image']}):", style="bold"))
        for run in pods["runs"]:
            cell = str(run["result"])
            out.print(Text(f"  {run['node']}  ") + Text(cell, style=_CELL_STYLE.get(cell, "dim")))
    before = extra.get("before")
    blocked = before.get("blocked") if isinstance(before, dict) else extra.get("blocked")
    if isinstance(blocked, list) and blocked:
        out.print(Text("blocked directions" + (" (before the fix)" if isinstance(before, dict) else "") + ":",
                       style="bold"))
        for b in blocked:
            line = Text(f"  {b['from']} → {b['to']}", style="bold red")
            line.append(f"  from {b['source']}: " + "; ".join(b["by"]), style="")
            out.print(line, soft_wrap=True)
    plan = extra.get("plan")
    if extra.get("mode") == "dry-run" and isinstance(plan, dict):
        steps = plan.get("steps") or []
        out.print(Text(f"commands a fix would run ({len(steps)} change(s); each with sudo, the check first):",
                       style="bold"))
        node = None
        for step in steps:
            if step["node"] != node:
                node = step["node"]
                out.print(Text(f"  {node}:", style="cyan"))
            out.print(Text(f"    # {step['description']}", style="dim"), soft_wrap=True)
            for line in step["commands"]:
                out.print(Text(f"    {line}"), soft_wrap=True)


def print_findings(report: Report) -> None:
    """doctor's findings: for each, the symptom and subject, then cause, evidence, fix and any fix applied."""
    findings = report.extra.get("findings")
    if not isinstance(findings, list):
        return
    for f in findings:
        fixed = f.get("status") == "fixed"
        head = Text("✓ " if fixed else "✗ ", style="green" if fixed else "bold red")
        head.append(f"[{f['component']}] ", style="cyan")
        head.append(f"{f['symptom']}", style="bold")
        head.append(f"  {f['subject']}  ({f['id']})", style="dim")
        out.print(head, soft_wrap=True)
        out.print(Text("  cause:    ") + Text(str(f["cause"])), soft_wrap=True)
        for i, line in enumerate(f.get("evidence") or []):
            out.print(Text("  evidence: " if i == 0 else "            ", style="") + Text(str(line), style="dim"),
                      soft_wrap=True)
        out.print(Text("  fix:      ") + Text(str(f["fix"]), style="yellow"), soft_wrap=True)
        result = f.get("fix_result")
        if isinstance(result, dict):
            style = _OUTCOME_STYLE.get(str(result["outcome"]), "")
            out.print(Text(f"  applied:  {result['outcome']}: ", style=style) + Text(str(result["detail"])),
                      soft_wrap=True)
        out.print(Text(""))


def status_view(report: Report) -> Group:
    """`status` as Rich renderables: releases, pods, volumes, storage, retention and ingestion, Grafana."""
    doc = report.extra.get("status")
    assert isinstance(doc, dict)
    parts: list[Any] = [Text(f"namespace {doc['namespace']}", style="bold")]

    def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
        t = Table(title=title, title_justify="left", title_style="bold", show_edge=False, pad_edge=False, box=None,
                  header_style="bold")
        for col in columns:
            t.add_column(col, overflow="fold")
        for row in rows:
            t.add_row(*(Text(str(cell)) for cell in row))
        parts.append(t)

    if doc.get("releases") is not None:
        table("helm releases", ("release", "chart", "app version", "set", "revision", "status", "updated"),
              [(r["name"], r["chart"] + (" (deprecated)" if r.get("deprecated") else ""), r["app_version"],
                r.get("set") or "-", r["revision"], r["status"], r["updated"]) for r in doc["releases"]])
        newer = [r for r in doc["releases"] if r.get("newer")]
        if newer:
            lines = ", ".join(f"{r['name']} {r['newer']['chart']} {r['newer']['version']} "
                              f"(app {r['newer']['app_version']})" for r in newer)
            parts.append(Text(f"newer maintained charts: {lines}; see `o11yctl upgrade --to current --dry-run`",
                              style="yellow"))
    if doc.get("pods") is not None:
        table("pods", ("pod", "node", "status", "ready", "restarts", "age"),
              [(p["name"], p["node"], p["status"], p["ready"], p["restarts"], p["age"]) for p in doc["pods"]])
    if doc.get("volumes"):  # none in profile scalable: Loki and Tempo keep their data in the object store
        table("volumes", ("claim", "status", "volume", "volume status", "capacity", "path"),
              [(v["pvc"] or f"{v['component']}: missing", v["pvc_status"], v["bound_to"] or v["pv"] or "-",
                v["pv_status"], v["capacity"] or "-", v["path"] or "-") for v in doc["volumes"]])
    if doc.get("storage"):
        table("data directories (du -sh over SSH)", ("component", "node", "path", "used", "filesystem", "free"),
              [(u["component"], u["host"], u["path"],
                "missing" if not u["exists"] else u["used"] + ("" if u["complete"] else " (at least)"),
                u["fs_size"], u["fs_free"]) for u in doc["storage"]])
    store = doc.get("buckets")
    if isinstance(store, dict):
        parts.extend(buckets_view(store))
    move = doc.get("migration")
    if isinstance(move, dict):
        m = Text("move to profile scalable: ", style="bold")
        if move["stage"] == "finished":
            m.append(f"finished {move.get('finished') or ''}; Loki on the bucket since {move['s3_from']}; "
                     f"kept with their data: {', '.join(move['claims'])}")
        else:
            m.append(f"bridge: Loki writes to the bucket since {move['s3_from']} and reads older logs from its "
                     f"volume; `o11yctl migrate` finishes after {move['finish_after']}")
        parts.append(m)
    retention = doc.get("retention") or {}
    line = Text("retention: ", style="bold")
    line.append(", ".join(f"{k} {v}" for k, v in retention.items()))
    rate = doc.get("ingestion")
    if isinstance(rate, dict):
        line.append("\nLoki ingestion: ", style="bold")
        if rate.get("bytes_per_day") is not None:
            line.append(f"{per_day(rate['bytes_per_day'])} (uncompressed, average since Loki started)")
        if rate.get("note"):
            line.append(("; " if rate.get("bytes_per_day") is not None else "") + str(rate["note"]))
    parts.append(line)
    grafana = doc.get("grafana") or {}
    g = Text("Grafana: ", style="bold")
    g.append(f"{grafana.get('url')}  (user {grafana.get('admin_user')}; password: {grafana.get('password_command')})")
    parts.append(g)
    for name, problem in (doc.get("problems") or {}).items():
        parts.append(Text(f"{name}: {problem}", style="bold red"))
    return Group(*parts)


def buckets_view(store: dict[str, Any]) -> list[Any]:
    """The object store's buckets: a table of their usage where the store reports it, else a line saying so."""
    from o11yctl.stack.quantity import human_bytes

    if not store.get("reported"):
        return [Text("object store buckets: ", style="bold") + Text(f"{', '.join(store.get('buckets') or [])}: "
                                                                    f"{store.get('note')}")]
    t = Table(title=f"object store buckets ({store.get('source')})", title_justify="left", title_style="bold",
              show_edge=False, pad_edge=False, box=None, header_style="bold")
    for col in ("bucket", "volumes", "files", "used", "deleted, not vacuumed", "on disk (all copies)"):
        t.add_column(col, overflow="fold", justify="left" if col == "bucket" else "right")
    for u in store.get("usage") or []:
        read_only = f" ({u['read_only_volumes']} read-only)" if u.get("read_only_volumes") else ""
        t.add_row(Text(str(u["bucket"])), Text(f"{u['volumes']}{read_only}"), Text(str(u["files"])),
                  Text(human_bytes(u["logical_bytes"])), Text(human_bytes(u["deleted_bytes"])),
                  Text(human_bytes(u["bytes_with_copies"])))
    line = Text(str(store.get("note") or ""))
    slots = store.get("volume_slots")
    if isinstance(slots, dict):
        line = Text(f"volume slots: {slots['free']} free of {slots['max']} (one per volume copy); ") + line
    return [t, line]


def per_day(value: float) -> str:
    """A rate in the largest unit that keeps two significant decimals: 2.00 GiB/day, 0.35 MiB/day, 300 bytes/day."""
    for unit, size in (("GiB", 1024**3), ("MiB", 1024**2)):
        if value >= 0.01 * size:
            return f"{value / size:.2f} {unit}/day"
    return f"{value:.0f} bytes/day"


def print_status(report: Report) -> None:
    """`status` once."""
    out.print(status_view(report))


def watch_status(read: Callable[[], Report], interval: float, *, json_output: bool) -> None:
    """`status --watch`: read and show again every ``interval`` seconds until Ctrl-C.

    On a terminal the screen is redrawn in place; otherwise each reading is printed after
    the last one, and with ``--json`` each is one line holding one envelope (JSON Lines).
    Ctrl-C ends it like any other command's interrupt (exit 130).
    """
    from rich.live import Live

    def once() -> Report:
        return read()

    if json_output or not out.is_terminal:
        if json_output:
            _json_lines.append(True)
        while True:  # Ctrl-C ends it as any command's interrupt does (exit 130)
            report = once()
            if json_output:  # JSON Lines: one envelope per refresh
                print_json(envelope("status", exit_code=report.exit_code, extra=report.extra))
            else:
                print_status(report)
            time.sleep(interval)
    with Live(status_view(once()), console=out, auto_refresh=False, screen=False) as live:
        while True:
            time.sleep(interval)
            live.update(status_view(once()), refresh=True)
