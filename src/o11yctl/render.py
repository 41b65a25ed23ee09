"""`render` and `install --dry-run`: rendering the files and describing the plan, offline."""

from __future__ import annotations

from pathlib import Path

from o11yctl.config import Config
from o11yctl.context import build_context
from o11yctl.model import Outcome, Report, StepResult
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
        outcome: Outcome = "created" if old is None else ("unchanged" if old == text else "changed")
        items.append(StepResult(id=name, component="render", outcome=outcome, detail=str(out_dir / name)))
    return Report("render", items=tuple(items), summary=f"wrote {len(files)} files to {out_dir}")


def _objects(text: str, namespace: str) -> list[str]:
    import yaml

    out = []
    for doc in yaml.safe_load_all(text):
        if not doc:
            continue
        meta = doc.get("metadata", {})
        name = meta.get("name", "?")
        if meta.get("namespace"):
            name = f"{meta['namespace']}/{name}"
        out.append(f"{doc.get('kind', '?')} {name}")
    return out


def plan_report(plan: Plan) -> Report:
    """The plan as a report for `install --dry-run`: every step `skipped` (nothing runs).

    The manifests are rendered (offline) so the plan can name every object it would apply.
    """
    files = render_config(plan.config)
    steps = []
    for n, s in enumerate(plan.steps, 1):
        lines = s.display_lines()
        objects = _objects(files[s.manifest], plan.config.cluster.namespace) if s.manifest else []
        if objects:
            lines = [*lines, *(f"  {o}" for o in objects)]
        steps.append({
            "n": n, "id": s.id, "component": s.component, "kind": s.kind, "description": s.description,
            "host": s.host, "commands": lines, "manifest": s.manifest, "objects": objects,
            "helm_argv": list(s.helm.argv()) if s.helm else None, "depends_on": list(s.depends_on),
        })
    items = tuple(
        StepResult(id=s.id, component=s.component, outcome="skipped", host=s.host, detail=s.description)
        for s in plan.steps
    )
    return Report("install", items=items,
                  summary=f"dry run: {len(plan.steps)} steps planned; nothing was contacted or changed",
                  extra={"dry_run": True, "namespace": plan.config.cluster.namespace, "plan": steps})
