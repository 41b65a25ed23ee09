"""`render` and `install --dry-run`: rendering the files and describing the plan, offline."""

from __future__ import annotations

from pathlib import Path

from o11yctl.config import Config
from o11yctl.context import build_context
from o11yctl.model import Report, StepResult
from o11yctl.plan import Plan
from o11yctl.templating import render_files, write_files


def render_config(cfg: Config) -> dict[str, str]:
    """The eight files for ``cfg``: file name -> text."""
    return render_files(build_context(cfg))


def render_to_dir(cfg: Config, out_dir: Path) -> Report:
    """Render and write the eight files atomically into ``out_dir``; report created/changed/unchanged."""
    files = render_config(cfg)
    before = {name: (out_dir / name).read_text(encoding="utf-8") if (out_dir / name).is_file() else None
              for name in files}
    write_files(files, out_dir)
    items = []
    for name, text in files.items():
        old = before[name]
        outcome = "created" if old is None else ("unchanged" if old == text else "changed")
        items.append(StepResult(id=name, component="render", outcome=outcome, detail=str(out_dir / name)))
    return Report("render", items=tuple(items), summary=f"wrote {len(files)} files to {out_dir}")


def plan_report(plan: Plan) -> Report:
    """The plan as a report for `install --dry-run`: every step `skipped` (nothing runs)."""
    items = tuple(
        StepResult(id=s.id, component=s.component, outcome="skipped", host=s.host,
                   detail=" ; ".join(s.display_lines()) or s.description)
        for s in plan.steps
    )
    steps = [
        {
            "id": s.id, "component": s.component, "kind": s.kind, "description": s.description, "host": s.host,
            "commands": s.display_lines(), "manifest": s.manifest,
            "helm_argv": list(s.helm.argv()) if s.helm else None, "depends_on": list(s.depends_on),
        }
        for s in plan.steps
    ]
    return Report("install", items=items, summary=f"dry run: {len(plan.steps)} steps planned, nothing changed",
                  extra={"dry_run": True, "plan": steps})
