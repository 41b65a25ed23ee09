"""Chart sets: which chart, at which version, from which repository deploys each component.

A set is tested as a whole: its values templates fit exactly these chart versions. The
config picks a set (``charts.set``) and may override any chart per component
(``components.<name>.chart``). ``init`` writes its comments from here. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

GRAFANA_REPOSITORY = "https://grafana.github.io/helm-charts"
#: Where the Loki, Tempo and Grafana charts are maintained since January 2026 (also
#: ``oci://ghcr.io/grafana-community/helm-charts/<chart>``).
COMMUNITY_REPOSITORY = "https://grafana-community.github.io/helm-charts"
#: SeaweedFS's own chart repository (the in-cluster object store of profile scalable).
SEAWEEDFS_REPOSITORY = "https://seaweedfs.github.io/seaweedfs/helm"
#: A short name for a repository, as the values files' headers and `status` show it.
REPOSITORY_NAMES = {GRAFANA_REPOSITORY: "grafana", COMMUNITY_REPOSITORY: "grafana-community",
                    SEAWEEDFS_REPOSITORY: "seaweedfs"}


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

CURRENT = ChartSet(
    "current",
    "the maintained charts: Loki 3.7, Tempo 2.10, Alloy 1.18, Grafana 13.2",
    # Each is the newest version in its repository's index (generated 2026-08-20), none
    # deprecated; alloy has no newer chart than the runbook's.
    checked="2026-12-04",
    pins={
        "loki": ChartPin("loki", "18.11.0", "3.7.6", COMMUNITY_REPOSITORY),
        "alloy": ChartPin("alloy", "1.11.1", "v1.18.1", GRAFANA_REPOSITORY),
        "tempo": ChartPin("tempo", "2.2.4", "2.10.8", COMMUNITY_REPOSITORY),
        "grafana": ChartPin("grafana", "12.11.1", "13.2.0", COMMUNITY_REPOSITORY),
        # profile scalable's object store; 4.44.0 is the first chart whose S3 identities can all come from
        # an existing Secret (tag 4.44, commit 3563738699f29fd1c9efde6fcbf4ba253439cac8).
        "store": ChartPin("seaweedfs", "4.44.0", "4.44", SEAWEEDFS_REPOSITORY),
    },
    templates="current",
)

SETS: dict[str, ChartSet] = {s.name: s for s in (RUNBOOK, CURRENT)}
#: Sets in the order of their charts' age: a set later in this tuple holds newer versions.
ORDER: tuple[str, ...] = ("runbook", "current")
DEFAULT_SET = "runbook"


@dataclass(frozen=True, slots=True)
class DataFormat:
    """What one version of a data component reads and writes."""

    reads: frozenset[str]
    writes: frozenset[str]
    source: str


#: Per component and app version: the formats read and written, from the projects' source.
#: Loki: schema versions accepted by PeriodConfig.validate (pkg/storage/config/schema_config.go),
#: TSDB index formats (pkg/storage/stores/shipper/indexshipper/tsdb/index/index.go, FormatV1-3)
#: and chunk formats (pkg/chunkenc, ChunkFormatV1-4); with o11yctl's values it writes schema v13,
#: TSDB format 3 and chunk format 4. Tempo: block versions known to FromVersion and written by
#: DefaultEncoding (tempodb/encoding/versioned.go).
DATA_FORMATS: dict[str, dict[str, DataFormat]] = {
    "loki": {
        v: DataFormat(
            reads=frozenset({"schema v9", "schema v10", "schema v11", "schema v12", "schema v13",
                             "tsdb index format 1", "tsdb index format 2", "tsdb index format 3",
                             "chunk format 1", "chunk format 2", "chunk format 3", "chunk format 4"}),
            writes=frozenset({"schema v13", "tsdb index format 3", "chunk format 4"}),
            source=f"grafana/loki v{v}: pkg/storage/config/schema_config.go, tsdb/index/index.go, pkg/chunkenc",
        )
        for v in ("3.3.0", "3.7.6")
    },
    "tempo": {
        "2.9.0": DataFormat(
            reads=frozenset({"block v2", "block vParquet2", "block vParquet3", "block vParquet4", "block vParquet5"}),
            writes=frozenset({"block vParquet4"}),
            source="grafana/tempo v2.9.0: tempodb/encoding/versioned.go (FromVersion, DefaultEncoding)",
        ),
        "2.10.8": DataFormat(
            reads=frozenset({"block v2", "block vParquet3", "block vParquet4", "block vParquet5"}),
            writes=frozenset({"block vParquet4"}),
            source="grafana/tempo v2.10.8: tempodb/encoding/versioned.go (FromVersion, DefaultEncoding)",
        ),
    },
}


def repository_name(url: str | None) -> str:
    """``grafana-community`` for the community repository's URL; the URL itself for others."""
    if url is None:
        return "local"
    return REPOSITORY_NAMES.get(url.rstrip("/"), url)


def set_of(component: str, chart: str, version: str) -> str | None:
    """The set whose pin for ``component`` is this chart at this version, if any."""
    for s in SETS.values():
        pin = s.pins.get(component)
        if pin is not None and (pin.chart, pin.version) == (chart, version):
            return s.name
    return None


def newer(component: str, chart: str, version: str) -> ChartPin | None:
    """The newest pin the catalog knows for ``component`` when it differs from ``chart``/``version``."""
    pin = SETS[ORDER[-1]].pins.get(component)
    if pin is None or (pin.chart, pin.version) == (chart, version):
        return None
    return pin


def chart_set(name: str) -> ChartSet:
    """A set by name.

    Raises:
        KeyError: no such set.
    """
    return SETS[name]
