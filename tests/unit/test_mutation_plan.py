"""The plans' words: each step's description, host, manifest, owner and the exact lines --dry-run prints.

tests/unit/test_plan.py pins ids, actions and order from case files; these tests pin what a user reads
for each step of the default install and uninstall plans, the helm argument lists, and the
--only/--skip messages. Plans are built from configs written here; nothing of o11yctl is monkeypatched.
"""

from __future__ import annotations

import pytest

from o11yctl.config import parse_config
from o11yctl.errors import UsageError
from o11yctl.stack.plan import HelmRelease, Plan, build_plan, build_uninstall_plan, parse_components, select

ALL = ("namespace", "storage", "volumes", "loki", "alloy", "tempo", "grafana", "route")
REPO = "https://grafana.github.io/helm-charts"


def _helm(release: str, version: str, values: str) -> str:
    return (f"helm upgrade --install {release} {release} --repo {REPO} --version {version} --namespace logging "
            f"--values {values} --wait --timeout 10m")


def _storage(component: str) -> list[str]:
    path = f"/mnt/k8s-storage/{component}"
    return [f"node-2$ stat -c '%u:%g %a %F' {path}", f"node-2$ sudo -n -- mkdir -p {path}",
            f"node-2$ sudo -n -- chown -R 10001:10001 {path}", f"node-2$ stat -c '%u:%g %a %F' {path}",
            f"node-2$ df -Pk -- {path}"]


def _uninstall(release: str) -> list[str]:
    return [f"helm uninstall {release} --namespace logging --wait --timeout 10m"]


# (id, action, description, host, manifest, owner, helm release, display lines)
INSTALL = [
    ("namespace", "apply", "namespace logging", None, "00-namespace.yaml", "namespace", None,
     ["server-side apply 00-namespace.yaml (field manager o11yctl)"]),
    ("storage.loki", "ssh", "create /mnt/k8s-storage/loki on node-2, owned by 10001:10001", "node-2", None, "loki",
     None, _storage("loki")),
    ("volumes.loki", "apply", "PersistentVolume loki-pv and PersistentVolumeClaim logging/loki-pvc", None,
     "01-loki-storage.yaml", "loki", None, ["server-side apply 01-loki-storage.yaml (field manager o11yctl)"]),
    ("helm.loki", "helm-upgrade", "helm release loki (chart loki 6.21.0)", None, None, "loki", "loki",
     [_helm("loki", "6.21.0", "02-loki-values.yaml")]),
    ("helm.alloy", "helm-upgrade", "helm release alloy (chart alloy 1.11.1)", None, None, "alloy", "alloy",
     [_helm("alloy", "1.11.1", "03-alloy-values.yaml")]),
    ("storage.tempo", "ssh", "create /mnt/k8s-storage/tempo on node-2, owned by 10001:10001", "node-2", None, "tempo",
     None, _storage("tempo")),
    ("volumes.tempo", "apply", "PersistentVolume tempo-pv and PersistentVolumeClaim logging/tempo-pvc", None,
     "06-tempo-storage.yaml", "tempo", None, ["server-side apply 06-tempo-storage.yaml (field manager o11yctl)"]),
    ("helm.tempo", "helm-upgrade", "helm release tempo (chart tempo 1.24.4)", None, None, "tempo", "tempo",
     [_helm("tempo", "1.24.4", "07-tempo-values.yaml")]),
    ("helm.grafana", "helm-upgrade", "helm release grafana (chart grafana 10.5.15)", None, None, "grafana", "grafana",
     [_helm("grafana", "10.5.15", "04-grafana-values.yaml")]),
    ("route", "apply", "HTTPRoute logging/grafana on Gateway default/eg at http://10.0.0.102/grafana", None,
     "05-grafana-httproute.yaml", "route", None,
     ["server-side apply 05-grafana-httproute.yaml (field manager o11yctl)"]),
    ("wait.ready", "wait", "wait until the stack is ready", None, None, "", None,
     ["every pod in namespace logging Running and Ready", "Loki answers /ready (svc/loki:3100)",
      "Tempo answers /ready (svc/tempo:3200)"]),
]

REMOVE_ROUTE_AND_RELEASES = [
    ("route", "delete", "delete HTTPRoute logging/grafana", None, "05-grafana-httproute.yaml", "route", None,
     ["delete the objects of 05-grafana-httproute.yaml"]),
    ("helm.grafana", "helm-uninstall", "remove helm release grafana", None, None, "grafana", "grafana",
     _uninstall("grafana")),
    ("helm.tempo", "helm-uninstall", "remove helm release tempo", None, None, "tempo", "tempo", _uninstall("tempo")),
    ("helm.alloy", "helm-uninstall", "remove helm release alloy", None, None, "alloy", "alloy", _uninstall("alloy")),
    ("helm.loki", "helm-uninstall", "remove helm release loki", None, None, "loki", "loki", _uninstall("loki")),
]

DELETE_DATA = [
    *REMOVE_ROUTE_AND_RELEASES[:3],
    ("volumes.tempo", "delete", "delete PersistentVolumeClaim logging/tempo-pvc and PersistentVolume tempo-pv", None,
     "06-tempo-storage.yaml", "tempo", None, ["delete the objects of 06-tempo-storage.yaml"]),
    ("storage.tempo", "ssh", "delete /mnt/k8s-storage/tempo on node-2", "node-2", None, "tempo", None,
     ["node-2$ sudo -n -- rm -rf --one-file-system /mnt/k8s-storage/tempo"]),
    *REMOVE_ROUTE_AND_RELEASES[3:],
    ("volumes.loki", "delete", "delete PersistentVolumeClaim logging/loki-pvc and PersistentVolume loki-pv", None,
     "01-loki-storage.yaml", "loki", None, ["delete the objects of 01-loki-storage.yaml"]),
    ("storage.loki", "ssh", "delete /mnt/k8s-storage/loki on node-2", "node-2", None, "loki", None,
     ["node-2$ sudo -n -- rm -rf --one-file-system /mnt/k8s-storage/loki"]),
    ("namespace", "delete", "delete namespace logging", None, "00-namespace.yaml", "namespace", None,
     ["delete the objects of 00-namespace.yaml"]),
]


def _described(plan: Plan) -> list[tuple[object, ...]]:
    return [(s.id, s.action, s.description, s.host, s.manifest, s.owner, s.helm.release if s.helm else None,
             s.display_lines()) for s in plan.steps]


def test_the_install_plan_says_what_each_step_does() -> None:
    cfg = parse_config("")
    plan = build_plan(cfg)
    assert _described(plan) == INSTALL
    assert plan.config is cfg and plan.selected == ALL
    assert plan.components == (*ALL[:5], "tempo", "grafana", "route", "wait")
    assert [c.describe() for c in plan.step("wait.ready").ready] == ["Loki answers /ready (svc/loki:3100)",
                                                                    "Tempo answers /ready (svc/tempo:3200)"]


def test_the_uninstall_plans_say_what_each_step_removes() -> None:
    cfg = parse_config("")
    keep = build_uninstall_plan(cfg)
    assert _described(keep) == REMOVE_ROUTE_AND_RELEASES
    assert keep.config is cfg and keep.selected == ALL
    assert _described(build_uninstall_plan(cfg, delete_data=True)) == DELETE_DATA


def test_which_executors_a_plan_needs() -> None:
    cfg = parse_config("")
    storage = build_plan(cfg, only=["storage"])
    assert storage.needs("ssh") and not storage.needs("helm") and not storage.needs("apply")
    assert not storage.needs("wait")
    full = build_plan(cfg)
    assert all(full.needs(kind) for kind in ("apply", "helm", "ssh", "wait"))


def test_a_custom_config_shows_in_the_steps() -> None:
    cfg = parse_config("cluster:\n  namespace: obs\ncharts:\n  timeout: 90s\n"
                       "route:\n  gateway:\n    name: gw\n    namespace: infra\n  url: https://g.lan/\n"
                       "components:\n  grafana:\n    chart:\n      path: /charts/grafana-1.0.0.tgz\n")
    plan = build_plan(cfg, only=["grafana", "route"])
    assert [(s.id, s.description, s.depends_on) for s in plan.steps] == [
        ("helm.grafana", "helm release grafana (chart grafana 10.5.15)", ("namespace", "helm.loki", "helm.tempo")),
        ("route", "HTTPRoute obs/grafana on Gateway infra/gw at https://g.lan", ("namespace", "helm.grafana")),
        ("wait.ready", "wait until the stack is ready", ("helm.grafana", "route")),
    ]
    assert plan.step("helm.grafana").helm == HelmRelease(
        release="grafana", chart="/charts/grafana-1.0.0.tgz", version="10.5.15", repository=None,
        values_file="04-grafana-values.yaml", namespace="obs", timeout="1m30s", local=True)
    assert plan.step("wait.ready").display_lines() == ["every pod in namespace obs Running and Ready"]
    assert plan.step("wait.ready").ready == ()
    removal = {s.id: s.description for s in build_uninstall_plan(cfg, delete_data=True).steps}
    assert removal["route"] == "delete HTTPRoute obs/grafana"
    assert removal["namespace"] == "delete namespace obs"


def test_helm_argument_lists() -> None:
    remote = HelmRelease("loki", "loki", "6.21.0", REPO, "02-loki-values.yaml", "logging", "10m")
    assert remote.argv("/tmp/values/") == (
        "helm", "upgrade", "--install", "loki", "loki", "--repo", REPO, "--version", "6.21.0",
        "--namespace", "logging", "--values", "/tmp/values/02-loki-values.yaml", "--wait", "--timeout", "10m")
    assert remote.argv()[12] == "02-loki-values.yaml"
    mirror_less = HelmRelease("loki", "loki", "6.21.0", None, "v.yaml", "logging", "10m")
    assert mirror_less.argv("vals") == ("helm", "upgrade", "--install", "loki", "loki", "--version", "6.21.0",
                                        "--namespace", "logging", "--values", "vals/v.yaml", "--wait", "--timeout",
                                        "10m")
    local = HelmRelease("g", "/charts/g", "1.0.0", REPO, "v.yaml", "ns", "5m", local=True)
    assert local.argv() == ("helm", "upgrade", "--install", "g", "/charts/g", "--namespace", "ns", "--values",
                            "v.yaml", "--wait", "--timeout", "5m")


@pytest.mark.parametrize(("values", "expected"), [
    (["loki, alloy", "loki"], ["loki", "alloy"]),
    (["loki,,alloy", " "], ["loki", "alloy"]),
    ([], []),
    (None, []),
])
def test_component_lists_split_on_commas(values: list[str] | None, expected: list[str]) -> None:
    assert parse_components(values, flag="--only", allowed=ALL) == expected


def test_an_unknown_component_lists_the_known_ones() -> None:
    with pytest.raises(UsageError) as caught:
        parse_components(["loki bogus"], flag="--skip", allowed=("loki", "alloy"))
    assert str(caught.value) == "--skip: unknown name 'loki bogus'"
    assert caught.value.hint == "choose from: loki, alloy"


def test_selection() -> None:
    assert select(["route", "loki"], [], ALL) == ("loki", "route")
    assert select(["loki", "alloy"], ["tempo"], ALL) == ("loki", "alloy")
    assert select([], ["loki"], ALL) == tuple(c for c in ALL if c != "loki")
    with pytest.raises(UsageError) as caught:
        select(["loki", "alloy", "tempo"], ["tempo", "loki"], ALL)
    assert str(caught.value) == "loki, tempo given to both --only and --skip"
    assert caught.value.hint == "name each component once"
    with pytest.raises(UsageError) as caught:
        select([], list(ALL), ALL)
    assert str(caught.value) == "--only/--skip leave nothing to do"
    assert caught.value.hint == f"components: {', '.join(ALL)}"


# --- profile scalable: the object store's credentials, its directories on each node, its release ---------------

TWO_NODES = ("nodes:\n  - name: node-1\n    address: 10.0.0.102\n    role: server\n"
             "  - name: node-2\n    address: 10.0.0.103\n    role: agent\n")
SCALABLE = TWO_NODES + "profile: scalable\ncharts:\n  set: current\ncomponents:\n  loki:\n    replicas: 2\n"
COMMUNITY = "https://grafana-community.github.io/helm-charts"
STORE_DIRS = ("object_store", "filer_store", "seaweed-master")
KEYS = "Secret logging/o11yctl-object-storage with the object store's keys: kept when present, else created from "


def _store_dir(node: str, directory: str) -> list[str]:
    path = f"/srv/s3/{directory}"
    return [f"{node}$ stat -c '%u:%g %a %F' {path}", f"{node}$ sudo -n -- mkdir -p {path}",
            f"{node}$ sudo -n -- chown -R 1000:1000 {path}", f"{node}$ stat -c '%u:%g %a %F' {path}",
            f"{node}$ df -Pk -- {path}"]


def _scalable_steps(plan: Plan) -> list[tuple[object, ...]]:
    return [(s.id, s.action, s.description, s.host, s.owner, s.helm.release if s.helm else None, s.depends_on,
             s.room, s.display_lines()) for s in plan.steps]


def test_the_scalable_plan_makes_the_stores_keys_and_directories_before_its_release() -> None:
    cfg = parse_config(SCALABLE + "object_storage:\n  root: /srv/s3/\n  nodes: [node-2]\n  size: 50Gi\n")
    dirs = [f"storage.store.node-2.{d}" for d in STORE_DIRS]
    steps = _scalable_steps(build_plan(cfg))
    assert steps[:6] == [
        ("namespace", "apply", "namespace logging", None, "namespace", None, (), None,
         ["server-side apply 00-namespace.yaml (field manager o11yctl)"]),
        ("credentials", "secret", KEYS + "generated keys; never shown", None, "credentials", None, ("namespace",),
         None, ["create the Secret through the API when it is missing (its values are never printed)"]),
        # the size is the room of the first directory only: one volume per node holds the objects
        *[(dirs[i], "ssh", f"create /srv/s3/{d} on node-2, owned by 1000:1000", "node-2", "store", None, (),
           "50Gi" if i == 0 else None, _store_dir("node-2", d)) for i, d in enumerate(STORE_DIRS)],
        ("helm.store", "helm-upgrade", "helm release seaweedfs (chart seaweedfs 4.44.0)", None, "store", "seaweedfs",
         ("namespace", *dirs, "credentials"), None,
         ["helm upgrade --install seaweedfs seaweedfs --repo https://seaweedfs.github.io/seaweedfs/helm --version "
          "4.44.0 --namespace logging --values 09-object-store-values.yaml --wait --timeout 10m"]),
    ]
    assert steps[6][:7] == ("helm.loki", "helm-upgrade", "helm release loki (chart loki 18.11.0)", None, "loki",
                            "loki", ("namespace", "credentials", "helm.store"))
    assert steps[6][8] == [f"helm upgrade --install loki loki --repo {COMMUNITY} --version 18.11.0 --namespace "
                           "logging --values 02-loki-values.yaml --wait --timeout 10m"]
    assert [s[0] for s in steps[7:]] == ["helm.alloy", "helm.tempo", "helm.grafana", "route", "wait.ready"]
    assert steps[8][6] == ("namespace", "credentials", "helm.store")


def test_an_external_store_needs_only_its_keys() -> None:
    cfg = parse_config(SCALABLE + "object_storage:\n  store: external\n  endpoint: https://s3.lan:9000\n")
    steps = _scalable_steps(build_plan(cfg))
    assert [s[0] for s in steps] == ["namespace", "credentials", "helm.loki", "helm.alloy", "helm.tempo",
                                     "helm.grafana", "route", "wait.ready"]
    assert steps[1][2] == KEYS + "$O11YCTL_S3_ACCESS_KEY_ID and $O11YCTL_S3_SECRET_ACCESS_KEY; never shown"
    assert steps[2][6] == steps[4][6] == ("namespace", "credentials")


def test_the_scalable_uninstall_removes_the_store_after_what_uses_it() -> None:
    cfg = parse_config(SCALABLE + "object_storage:\n  root: /srv/s3\n  nodes: [node-2]\n")
    users = ("helm.loki", "helm.alloy", "helm.tempo", "helm.grafana", "route")
    steps = [(s.id, s.description, s.host, s.depends_on, s.display_lines())
             for s in build_uninstall_plan(cfg, delete_data=True).steps]
    assert steps[5:] == [
        ("helm.store", "remove helm release seaweedfs", None, users,
         ["helm uninstall seaweedfs --namespace logging --wait --timeout 10m"]),
        *[(f"storage.store.node-2.{d}", f"delete /srv/s3/{d} on node-2", "node-2", ("helm.store", *users),
           [f"node-2$ sudo -n -- rm -rf --one-file-system /srv/s3/{d}"]) for d in reversed(STORE_DIRS)],
        ("namespace", "delete namespace logging", None, ("helm.store", *users),
         ["delete the objects of 00-namespace.yaml"]),
    ]
    kept = [s.id for s in build_uninstall_plan(cfg).steps]
    assert kept == ["route", "helm.grafana", "helm.tempo", "helm.alloy", "helm.loki", "helm.store"]


def test_the_network_policies_step_and_the_room_each_data_directory_needs() -> None:
    cfg = parse_config("network_policy:\n  enabled: true\nnodes:\n  - name: node-1\n    address: 10.0.0.102\n"
                       "    role: server\n    pod_cidr: 10.42.0.0/24\n  - name: node-2\n    address: 10.0.0.103\n"
                       "    role: agent\n    labels: {hardware: heavy}\n    taints: [{key: heavy, value: 'true'}]\n")
    plan = build_plan(cfg)
    policy = plan.step("policy")
    assert (policy.action, policy.description, policy.manifest, policy.depends_on) == (
        "apply", "the NetworkPolicies (08-network-policies.yaml)", "08-network-policies.yaml", ("namespace",))
    assert plan.step("wait.ready").depends_on[-1] == "policy"
    # the size in the config is what the storage step checks the filesystem for (df)
    assert [(s.id, s.room) for s in plan.steps if s.room] == [("storage.loki", "200Gi"), ("storage.tempo", "50Gi")]
