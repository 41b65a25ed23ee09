"""The chart each release installs: the config's chart set, with the config's overrides laid over it. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from o11yctl.config import ChartSource, Config
from o11yctl.stack.catalog import chart_set


@dataclass(frozen=True, slots=True)
class ResolvedChart:
    """One release's chart, as install runs it."""

    component: str
    name: str
    version: str
    repository: str | None  # None for a local chart
    path: str | None  # a local chart directory or .tgz
    set: str
    app_version: str = ""  # known only for the set's own pin
    deprecated: bool = False

    @property
    def local(self) -> bool:
        return self.path is not None

    @property
    def from_set(self) -> bool:
        """The set's own pin (not overridden by the config)."""
        return bool(self.app_version)


def source(cfg: Config, component: str) -> ChartSource:
    """The config's ``components.<component>.chart`` (all unset when the config has no such section)."""
    settings = getattr(cfg.components, component, None)
    chart = getattr(settings, "chart", None)
    return chart if isinstance(chart, ChartSource) else ChartSource()


def resolve(cfg: Config, component: str) -> ResolvedChart:
    """The chart of ``component``'s release: the set's pin, each key the config gives taking its place."""
    pins = chart_set(cfg.charts.set)
    pin = pins.pin(component)
    src = source(cfg, component)
    name = src.name or pin.chart
    version = src.version or pin.version
    same = (name, version) == (pin.chart, pin.version)
    return ResolvedChart(
        component=component, name=name, version=version,
        repository=None if src.path else (src.repository or cfg.charts.repository or pin.repository),
        path=src.path, set=pins.name, app_version=pin.app_version if same else "",
        deprecated=pin.deprecated if same else False,
    )
