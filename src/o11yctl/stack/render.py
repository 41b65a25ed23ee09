"""Jinja rendering of the stack's files (the runbook's eight for the default stack).

One strict environment (StrictUndefined, trailing newlines kept) over the
templates shipped inside the package. Rendering is pure: a context in, file
texts out. Writing them to disk is :func:`write_files`'s job, and
:func:`render_to_dir` (``o11yctl render``) does both.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

from o11yctl.config import Config
from o11yctl.errors import PathError, TemplateError
from o11yctl.model import Outcome, Report, StepResult
from o11yctl.stack.components import stack_for
from o11yctl.stack.context import build_context

#: The files of the default stack: the runbook's "Files Overview", in order.
FILES: tuple[str, ...] = stack_for().files

TEMPLATE_SUFFIX = ".j2"


def templates_dir() -> Path:
    """Where the templates live: inside the wheel, or at the source tree's top level."""
    packaged = Path(str(resources.files("o11yctl"))) / "templates"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[3] / "templates"


def _to_json(value: Any) -> str:
    # JSON is valid YAML: a safe way to place any string, list or mapping into a template.
    return json.dumps(value, sort_keys=False)


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        # The package's templates, and a component's own template by its absolute path.
        loader=jinja2.FileSystemLoader([str(templates_dir()), "/"]),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["tojson"] = _to_json
    return env


def render_files(context: Mapping[str, Any]) -> dict[str, str]:
    """Render every file the context lists (``context["files"]``, see ``stack.context.build_context``).

    Args:
        context: the values the templates place.

    Returns:
        Rendered file name -> text, in the runbook's order.

    Raises:
        TemplateError: a template failed; the message names the template and line.
    """
    env = _environment()
    out: dict[str, str] = {}
    for name, spec in context["files"].items():
        template_name = _template(spec["dir"], spec["template"])
        values = dict(context)
        if spec["volume"]:
            values["volume"] = context[spec["volume"]]
        try:
            out[name] = env.get_template(template_name).render(**values)
        except jinja2.TemplateError as exc:
            raise TemplateError.from_jinja(template_name, exc, templates_dir()) from exc
    return out


def _template(directory: str, name: str) -> str:
    """A chart set's own template, else the shared one."""
    if directory and (templates_dir() / directory / name).is_file():
        return f"{directory}/{name}"
    return name


def render_config(cfg: Config) -> dict[str, str]:
    """The files for ``cfg``: file name -> text."""
    return render_files(build_context(cfg))


def render_to_dir(cfg: Config, out_dir: Path) -> Report:
    """Render and write the files atomically into ``out_dir``; report created/changed/unchanged per file."""
    files = render_config(cfg)
    try:
        before = {name: (out_dir / name).read_text(encoding="utf-8") if (out_dir / name).is_file() else None
                  for name in files}
        write_files(files, out_dir)
    except OSError as exc:
        raise PathError.of("--out", out_dir, exc) from None
    items = []
    for name, text in files.items():
        old = before[name]
        outcome: Outcome = "created" if old is None else ("unchanged" if old == text else "changed")
        items.append(StepResult(id=name, component="render", outcome=outcome, detail=str(out_dir / name)))
    return Report("render", items=tuple(items), summary=f"wrote {len(files)} files to {out_dir}")


def write_files(files: Mapping[str, str], out_dir: Path) -> list[Path]:
    """Write rendered files into ``out_dir`` atomically (temp file + rename), creating it.

    Returns:
        The paths written, in order.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, text in files.items():
        target = out_dir / name
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=out_dir)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        written.append(target)
    return written
