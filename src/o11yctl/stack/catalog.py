"""Chart sets: which chart, at which version, from which repository deploys each component.

A set is tested as a whole: its values templates fit exactly these chart versions. The
config picks a set (``charts.set``) and may override any chart per component
(``components.<name>.chart``). ``init`` writes its comments from here. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

GRAFANA_REPOSITORY = "https://grafana.github.io/helm-charts"


@dataclass(frozen=True, slots=True)
class ChartPin:
    """One chart at one version."""

    chart: str
    version: str
    app_version: str
    repository: str
    #: The repository marks this version deprecated (no more fixes from that chart).
    deprecated: bool = False


@dataclass(frozen=True, slots=True)
class ChartSet:
    """A named, tested set of pins, and the directory of the values templates that fit them."""

    name: str
    description: str
    checked: str  # the date the versions were checked against the repositories' indexes
    pins: Mapping[str, ChartPin] = field(default_factory=dict)
    #: Templates that differ from the runbook's live in templates/<this>/ ("": templates/ itself).
    templates: str = ""

    def pin(self, component: str) -> ChartPin:
        return self.pins[component]


RUNBOOK = ChartSet(
    "runbook",
    "the runbook's pins: Loki 3.3, Tempo 2.9, Alloy 1.18, Grafana 12.3",
    checked="2026-11-26",
    pins={
        "loki": ChartPin("loki", "6.21.0", "3.3.0", GRAFANA_REPOSITORY),
        "alloy": ChartPin("alloy", "1.11.1", "v1.18.1", GRAFANA_REPOSITORY),
        "tempo": ChartPin("tempo", "1.24.4", "2.9.0", GRAFANA_REPOSITORY, deprecated=True),
        "grafana": ChartPin("grafana", "10.5.15", "12.3.1", GRAFANA_REPOSITORY, deprecated=True),
    },
)

SETS: dict[str, ChartSet] = {s.name: s for s in (RUNBOOK,)}
DEFAULT_SET = "runbook"


def chart_set(name: str) -> ChartSet:
    """A set by name.

    Raises:
        KeyError: no such set.
    """
    return SETS[name]
