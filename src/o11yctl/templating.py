"""Jinja rendering of the runbook's eight files.

One strict environment (StrictUndefined, trailing newlines kept) over the
templates shipped inside the package. Rendering is pure: a context in, file
texts out. Writing them to disk is :func:`write_files`'s job.
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

from o11yctl.errors import TemplateError

#: The runbook's "Files Overview", in order: rendered name -> template name.
FILES: tuple[str, ...] = (
    "00-namespace.yaml",
    "01-loki-storage.yaml",
    "02-loki-values.yaml",
    "03-alloy-values.yaml",
    "04-grafana-values.yaml",
    "05-grafana-httproute.yaml",
    "06-tempo-storage.yaml",
    "07-tempo-values.yaml",
)
TEMPLATE_SUFFIX = ".j2"


def templates_dir() -> Path:
    """Where the templates live: inside the wheel, or at the source tree's top level."""
    packaged = Path(str(resources.files("o11yctl"))) / "templates"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "templates"


def _to_json(value: Any) -> str:
    # JSON is valid YAML: a safe way to place any string, list or mapping into a template.
    return json.dumps(value, sort_keys=False)


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["tojson"] = _to_json
    return env


def render_files(context: Mapping[str, Any]) -> dict[str, str]:
    """Render every template with ``context``.

    Args:
        context: the values the templates place (see ``build_context`` in plan/config).

    Returns:
        Rendered file name -> text, in the runbook's order.

    Raises:
        TemplateError: a template failed; the message names the template and line.
    """
    env = _environment()
    out: dict[str, str] = {}
    for name in FILES:
        template_name = name + TEMPLATE_SUFFIX
        try:
            out[name] = env.get_template(template_name).render(**context)
        except jinja2.TemplateError as exc:
            raise TemplateError.from_jinja(template_name, exc, templates_dir()) from exc
    return out


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
