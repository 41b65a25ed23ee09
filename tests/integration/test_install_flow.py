"""`o11yctl install`, `install --diff` and `uninstall` end to end, through the CLI.

The cluster is the fake API server (:mod:`tests.lab.fake_kube`) driven by the real
kubernetes client; helm is the stand-in (:mod:`tests.lab.fake_helm`), because real
helm cannot install into a fake API server. Pods and Services that the charts
would create are seeded, as the kubelet would report them. The storage step (SSH)
is left out here with ``--skip storage``; it is covered with a real sshd elsewhere.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.lab.fake_helm import FakeHelm
from tests.lab.fake_kube import FakeKube, KubeLab
from typer.testing import CliRunner

from o11yctl.cli import app

NS = "logging"
READY = (200, "text/plain; charset=utf-8", b"ready\n")


@dataclass
class Stack:
    api: FakeKube
    helm: FakeHelm
    kubeconfig: Path
    tmp: Path

    def run(self, *args: str, yes: bool = False) -> Any:
        argv = ["install", *args, "--kubeconfig", str(self.kubeconfig), "--json"]
        if yes:
            argv.append("--yes")
        return _invoke(argv)

    def uninstall(self, *args: str) -> Any:
        return _invoke(["uninstall", *args, "--kubeconfig", str(self.kubeconfig), "--json"])

    def add_workloads(self, *, ready: bool = True) -> None:
        """What the charts' pods and services look like once the kubelet runs them."""
        for name, node in (("loki-0", "node-2"), ("tempo-0", "node-2"), ("alloy-abcde", "node-1"),
                           ("alloy-fghij", "node-2"), ("grafana-5f7d9c-xk2lp", "node-1")):
            self.api.add_pod(NS, name, node=node, ready=ready or not name.startswith("loki"))
        self.api.add_service(NS, "loki", 3100, READY)
        self.api.add_service(NS, "tempo", 3200, READY)


def _invoke(argv: list[str]) -> Any:
    result = CliRunner().invoke(app, argv, catch_exceptions=False)
    try:
        result.doc = json.loads(result.stdout)
    except ValueError:
        result.doc = None
    return result


@pytest.fixture
def stack(kube_cluster: KubeLab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    helm = FakeHelm(tmp_path / "helm").first_on_path(monkeypatch)
    yield Stack(kube_cluster.api, helm, kube_cluster.kubeconfig, tmp_path)
    helm.check_clean()


def outcomes(result: Any) -> dict[str, str]:
    assert result.doc is not None, result.output
    return {i["id"]: i["outcome"] for i in result.doc["items"]}


def test_first_run_creates_everything_second_run_changes_nothing(stack: Stack) -> None:
    stack.add_workloads()
    first = stack.run("--skip", "storage")
    assert first.exit_code == 0, first.output
    assert outcomes(first) == {
        "namespace": "created", "volumes.loki": "created", "helm.loki": "created", "helm.alloy": "created",
        "volumes.tempo": "created", "helm.tempo": "created", "helm.grafana": "created", "route": "created",
        "wait.ready": "unchanged",
    }
    pvc = stack.api.obj("v1", "PersistentVolumeClaim", "loki-pvc", NS)
    assert pvc is not None and pvc["status"]["phase"] == "Bound"
    route = stack.api.obj("gateway.networking.k8s.io/v1", "HTTPRoute", "grafana", NS)
    assert route is not None and route["spec"]["parentRefs"][0]["name"] == "eg"
    assert stack.helm.releases(NS)["loki"][-1]["chart"] == "loki-6.21.0"
    upgrade = next(c for c in stack.helm.calls if c[0] == "upgrade" and c[2] == "loki")
    assert upgrade[:4] == ["upgrade", "--install", "loki", "loki"]
    assert upgrade[upgrade.index("--version") + 1] == "6.21.0"
    assert upgrade[upgrade.index("--repo") + 1] == "https://grafana.github.io/helm-charts"
    assert "--wait" in upgrade and upgrade[upgrade.index("--timeout") + 1] == "10m"
    assert not Path(upgrade[upgrade.index("--values") + 1]).exists(), "values files are removed afterwards"

    mutations = len(stack.api.mutations)
    second = stack.run("--skip", "storage")
    assert second.exit_code == 0, second.output
    assert set(outcomes(second).values()) == {"unchanged"}, second.doc["items"]
    assert len(stack.api.mutations) == mutations
    assert [r["revision"] for r in stack.helm.releases(NS)["loki"]] == [1], "no new helm revision"
    assert "already at chart loki-6.21.0" in next(i["detail"] for i in second.doc["items"] if i["id"] == "helm.loki")


def _owners(obj: dict[str, Any], *path: str) -> dict[str, str]:
    """Who owns each field under ``path`` (managedFields, FieldsV1): field name -> manager."""
    out: dict[str, str] = {}
    for entry in obj["metadata"].get("managedFields") or []:
        node = entry["fieldsV1"]
        for name in path:
            node = node.get(f"f:{name}", {})
        for key in node:
            if key.startswith("f:"):
                out[key[2:]] = entry["manager"]
    return out


def test_a_rerun_keeps_the_volumes_bound_to_their_claims(stack: Stack) -> None:
    """The volume controller owns claimRef.uid (granular claimRef); a re-run must not give up o11yctl's fields."""
    stack.add_workloads()
    assert stack.run("--skip", "storage").exit_code == 0
    bound = {name: stack.api.obj("v1", "PersistentVolume", name) for name in ("loki-pv", "tempo-pv")}
    for name, pv in bound.items():
        assert pv is not None and pv["status"]["phase"] == "Bound", name
        owners = _owners(pv, "spec", "claimRef")
        assert owners == {"apiVersion": "o11yctl", "kind": "o11yctl", "namespace": "o11yctl", "name": "o11yctl",
                          "uid": "kube-controller-manager", "resourceVersion": "kube-controller-manager"}, owners

    second = stack.run("--skip", "storage")
    assert second.exit_code == 0, second.output
    assert outcomes(second)["volumes.loki"] == "unchanged" and outcomes(second)["volumes.tempo"] == "unchanged"
    for name, before in bound.items():
        after = stack.api.obj("v1", "PersistentVolume", name)
        assert after is not None and before is not None
        assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"], name
        ref = after["spec"]["claimRef"]
        assert (ref["namespace"], ref["name"]) == (NS, name.replace("-pv", "-pvc"))
        assert ref["uid"] == before["spec"]["claimRef"]["uid"]
        assert after["status"]["phase"] == "Bound"


def test_failing_step_stops_the_run_with_helms_stderr(stack: Stack) -> None:
    stack.add_workloads()
    stack.helm.fail("upgrade", "tempo", 'Error: chart "tempo" version "1.24.4" not found in '
                                        "https://grafana.github.io/helm-charts repository")
    result = stack.run("--skip", "storage")
    assert result.exit_code == 1
    got = outcomes(result)
    assert got["helm.loki"] == "created" and got["helm.tempo"] == "failed"
    assert got["helm.grafana"] == "skipped" and got["route"] == "skipped"
    message = result.doc["error"]["message"]
    assert "step helm.tempo failed" in message
    assert 'chart "tempo" version "1.24.4" not found' in message
    assert "already done: namespace, volumes.loki, helm.loki" in message
    assert stack.api.obj("gateway.networking.k8s.io/v1", "HTTPRoute", "grafana", NS) is None


def test_only_and_skip_select_components(stack: Stack) -> None:
    result = stack.run("--only", "namespace,volumes")
    assert result.exit_code == 0, result.output
    assert list(outcomes(result)) == ["namespace", "volumes.loki", "volumes.tempo"]
    assert stack.helm.calls == [], "no helm step selected: helm is not even asked its version"
    result = stack.run("--only", "namespace,route")
    assert list(outcomes(result)) == ["namespace", "route"]


@pytest.mark.parametrize("breakage, expected", [
    ("no-node", "node node-2 (nodes[].name in the config) is not in the cluster"),
    ("no-label", "storage node node-2 lacks the label hardware=heavy"),
    ("no-crds", "the Gateway API CRDs are not installed"),
    ("no-gateway", "Gateway default/eg (route.gateway in the config) does not exist"),
    ("same-namespace", "admits routes only from its own namespace default"),
    ("pending", "helm release logging/loki is pending-upgrade"),
    ("no-kubeconfig", "no kubeconfig at"),
    ("unreachable", "cannot reach the Kubernetes API"),
])
def test_preflight_failures_change_nothing_and_exit_3(stack: Stack, breakage: str, expected: str,
                                                        tmp_path: Path) -> None:
    api = stack.api
    if breakage == "no-node":
        api.store = {k: v for k, v in api.store.items() if not (k[2] == "nodes" and k[4] == "node-2")}
    elif breakage == "no-label":
        api.store[("", "v1", "nodes", "", "node-2")]["metadata"]["labels"].pop("hardware")
    elif breakage == "no-crds":
        api.types = {k: v for k, v in api.types.items() if v.group != "gateway.networking.k8s.io"}
    elif breakage == "no-gateway":
        api.store = {k: v for k, v in api.store.items() if k[2] != "gateways"}
    elif breakage == "same-namespace":
        api.store[("gateway.networking.k8s.io", "v1", "gateways", "default", "eg")]["spec"]["listeners"] = [
            {"name": "http", "protocol": "HTTP", "port": 80}]
    elif breakage == "pending":
        stack.helm.seed_release("loki", NS, [{"status": "deployed", "chart": "loki-6.21.0"},
                                             {"status": "pending-upgrade", "chart": "loki-6.21.0"}])
    elif breakage == "no-kubeconfig":
        stack.kubeconfig = tmp_path / "missing"
    elif breakage == "unreachable":
        doc = yaml.safe_load(stack.kubeconfig.read_text())
        doc["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:9"
        stack.kubeconfig.write_text(yaml.safe_dump(doc))
    result = stack.run("--skip", "storage", yes=True)
    assert result.exit_code == 3, result.output
    assert expected in result.doc["error"]["message"]
    assert "nothing was changed" in result.doc["error"]["message"]
    assert stack.api.mutations == []
    assert "upgrade" not in stack.helm.commands()


def test_preflight_lists_every_problem_with_the_fixing_commands(stack: Stack) -> None:
    node = stack.api.store[("", "v1", "nodes", "", "node-2")]
    node["metadata"]["labels"].pop("hardware")
    node["spec"]["taints"] = []
    stack.api.types = {k: v for k, v in stack.api.types.items() if v.group != "gateway.networking.k8s.io"}
    result = stack.run("--skip", "storage")
    assert result.exit_code == 3
    error = result.doc["error"]
    assert "preflight found 2 problems" in error["message"]
    assert "kubectl label node node-2 hardware=heavy --overwrite" in error["hint"]
    assert "kubectl taint node node-2 heavy=true:NoSchedule --overwrite" in error["hint"]


def test_label_nodes_adds_the_missing_label_and_taint(stack: Stack) -> None:
    stack.add_workloads()
    node = stack.api.store[("", "v1", "nodes", "", "node-2")]
    node["metadata"]["labels"].pop("hardware")
    node["spec"]["taints"] = []
    result = stack.run("--skip", "storage", "--label-nodes", yes=True)
    assert result.exit_code == 0, result.output
    assert outcomes(result)["label-nodes.node-2"] == "changed"
    node = stack.api.obj("v1", "Node", "node-2")
    assert node is not None
    assert node["metadata"]["labels"]["hardware"] == "heavy"
    assert {"key": "heavy", "value": "true", "effect": "NoSchedule"} in node["spec"]["taints"]


def test_install_adopts_objects_and_releases_made_by_hand(stack: Stack) -> None:
    stack.add_workloads()
    # The runbook followed by hand: kubectl apply and helm install, with other values.
    stack.api.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    stack.api.seed({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "loki-pv"},
                    "spec": {"capacity": {"storage": "200Gi"}, "accessModes": ["ReadWriteOnce"],
                             "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "local-storage",
                             "local": {"path": "/mnt/k8s-storage/loki"},
                             "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                                 {"key": "kubernetes.io/hostname", "operator": "In", "values": ["node-2"]}]}]}}}})
    stack.helm.seed_release("loki", NS, [{"status": "deployed", "chart": "loki-6.21.0",
                                          "values": {"deploymentMode": "SingleBinary"}}])

    diff = stack.run("--skip", "storage", "--diff")
    assert diff.exit_code == 0, diff.output
    assert diff.doc["diff"] is True
    changes = {c["target"]: c for c in diff.doc["changes"]}
    assert changes["Namespace logging"]["outcome"] == "changed" and changes["Namespace logging"]["adopted"]
    assert changes["helm release logging/loki"]["outcome"] == "changed"
    assert any(line.startswith("values.") for line in changes["helm release logging/loki"]["lines"])
    assert changes["PersistentVolumeClaim logging/loki-pvc"]["outcome"] == "created"
    assert stack.api.mutations == [], "--diff changes nothing"
    assert "upgrade" not in stack.helm.commands()

    refused = stack.run("--skip", "storage")
    assert refused.exit_code == 1
    assert "not confirmed" in refused.doc["error"]["message"]
    assert stack.api.mutations == []

    adopted = stack.run("--skip", "storage", yes=True)
    assert adopted.exit_code == 0, adopted.output
    got = outcomes(adopted)
    assert got["namespace"] == "changed" and got["helm.loki"] == "changed" and got["helm.tempo"] == "created"
    assert [r["revision"] for r in stack.helm.releases(NS)["loki"]] == [1, 2]
    pv = stack.api.obj("v1", "PersistentVolume", "loki-pv")
    assert pv is not None and pv["status"]["phase"] == "Bound"
    assert any(m["manager"] == "o11yctl" for m in pv["metadata"]["managedFields"])

    again = stack.run("--skip", "storage")
    assert set(outcomes(again).values()) == {"unchanged"}


def test_recover_rolls_back_a_pending_release(stack: Stack) -> None:
    stack.add_workloads()
    stack.helm.seed_release("loki", NS, [{"status": "superseded", "chart": "loki-6.20.0"},
                                         {"status": "deployed", "chart": "loki-6.21.0"},
                                         {"status": "pending-upgrade", "chart": "loki-6.21.0"}])
    result = stack.run("--skip", "storage", "--recover", yes=True)
    assert result.exit_code == 0, result.output
    detail = next(i["detail"] for i in result.doc["items"] if i["id"] == "helm.loki")
    assert "rolled back the interrupted revision 3 to 2" in detail
    assert stack.helm.calls[[c[0] for c in stack.helm.calls].index("rollback")][:3] == ["rollback", "loki", "2"]
    assert stack.helm.releases(NS)["loki"][-1]["status"] == "deployed"


def test_recover_removes_a_never_deployed_release(stack: Stack) -> None:
    stack.add_workloads()
    stack.helm.seed_release("tempo", NS, [{"status": "pending-install", "chart": "tempo-1.24.4"}])
    refused = stack.run("--skip", "storage", "--recover")
    assert refused.exit_code == 1, "recovering changes an existing release: it needs a confirmation"
    result = stack.run("--skip", "storage", "--recover", yes=True)
    assert result.exit_code == 0, result.output
    detail = next(i["detail"] for i in result.doc["items"] if i["id"] == "helm.tempo")
    assert "removed the never-deployed release" in detail
    assert [r["revision"] for r in stack.helm.releases(NS)["tempo"]] == [1]


def test_wait_reports_the_pod_that_is_not_ready(stack: Stack) -> None:
    from o11yctl.access import Access, AccessOptions
    from o11yctl.config import default_config
    from o11yctl.deploy.install import InstallOptions, run_install
    from o11yctl.errors import KubeError
    from o11yctl.stack.plan import build_plan

    stack.add_workloads(ready=False)
    cfg = default_config()
    plan = build_plan(cfg, skip=("storage",))
    with Access(cfg, AccessOptions(kubeconfig=str(stack.kubeconfig))) as access, pytest.raises(Exception) as info:
        run_install(plan, access, InstallOptions(wait_timeout=0.5, poll_interval=0.05))
    error = info.value
    assert "step wait.ready failed" in str(error)
    assert "loki-0 (Running)" in str(error)
    assert "kubectl describe pod -n logging loki-0" in (error.hint or "")  # type: ignore[attr-defined]
    assert isinstance(error.__cause__, KubeError)


def test_wait_reads_the_api_servers_status_when_it_cannot_reach_a_pod(stack: Stack) -> None:
    """The proxy's 503 Status is read into its message and the overlay hint, not pasted as JSON."""
    from o11yctl.access import Access, AccessOptions
    from o11yctl.config import default_config
    from o11yctl.deploy.install import InstallOptions, run_install
    from o11yctl.stack.plan import build_plan

    stack.add_workloads()
    stack.api.unreachable_endpoint(NS, "tempo", 3200, "10.42.1.6:3200")
    cfg = default_config()
    plan = build_plan(cfg, skip=("storage",))
    with Access(cfg, AccessOptions(kubeconfig=str(stack.kubeconfig))) as access, pytest.raises(Exception) as info:
        run_install(plan, access, InstallOptions(wait_timeout=0.5, poll_interval=0.05))
    message, hint = str(info.value), info.value.hint or ""  # type: ignore[attr-defined]
    assert "could not connect to Tempo's pod at 10.42.1.6:3200" in message
    assert "dial tcp 10.42.1.6:3200: connect: no route to host" in message
    assert '"kind"' not in message
    assert "o11yctl fix-vxlan --check" in hint


def test_uninstall_keeps_the_data_and_install_binds_the_same_volumes_again(stack: Stack) -> None:
    stack.add_workloads()
    assert stack.run("--skip", "storage").exit_code == 0
    pv_uid = stack.api.obj("v1", "PersistentVolume", "loki-pv")["metadata"]["uid"]  # type: ignore[index]

    removed = stack.uninstall()
    assert removed.exit_code == 0, removed.output
    got = outcomes(removed)
    assert got["route"] == "changed" and got["helm.grafana"] == "changed" and got["helm.loki"] == "changed"
    assert got["keep.loki"] == "skipped"
    assert stack.helm.releases(NS) == {}
    assert stack.api.obj("gateway.networking.k8s.io/v1", "HTTPRoute", "grafana", NS) is None
    assert stack.api.obj("v1", "PersistentVolumeClaim", "loki-pvc", NS) is not None, "claims are kept"
    assert stack.api.obj("v1", "Namespace", NS) is not None

    # Someone deletes the claim by hand: the PV (Retain) is Released with a stale claim.
    stack.api.handle("DELETE", f"/api/v1/namespaces/{NS}/persistentvolumeclaims/loki-pvc",
                     {"Authorization": f"Bearer {stack.api.token}"}, b"")
    assert stack.api.obj("v1", "PersistentVolume", "loki-pv")["status"]["phase"] == "Released"  # type: ignore[index]

    again = stack.run("--skip", "storage")
    assert again.exit_code == 0, again.output
    detail = next(i["detail"] for i in again.doc["items"] if i["id"] == "volumes.loki")
    assert "stale claim: cleared it" in detail
    pv = stack.api.obj("v1", "PersistentVolume", "loki-pv")
    pvc = stack.api.obj("v1", "PersistentVolumeClaim", "loki-pvc", NS)
    assert pv is not None and pvc is not None
    assert pv["metadata"]["uid"] == pv_uid, "the same volume, so the same data"
    assert pv["status"]["phase"] == "Bound" and pvc["status"]["phase"] == "Bound"
    assert pv["spec"]["claimRef"]["uid"] == pvc["metadata"]["uid"]


def test_uninstall_delete_data_needs_confirmation(stack: Stack) -> None:
    stack.add_workloads()
    assert stack.run("--only", "namespace,volumes").exit_code == 0
    refused = stack.uninstall("--delete-data")
    assert refused.exit_code == 1
    assert "--delete-data was not confirmed" in refused.doc["error"]["message"]
    assert stack.api.obj("v1", "PersistentVolume", "loki-pv") is not None


POLICY_CONFIG = """\
nodes:
  - {name: node-1, address: 10.0.0.102, role: server, pod_cidr: %s}
  - name: node-2
    address: 10.0.0.103
    role: agent
    labels: {hardware: heavy}
    taints: [{key: heavy, value: "true", effect: NoSchedule}]
network_policy:
  enabled: true
  allow_namespaces: [apps]
"""


def test_network_policies_are_applied_when_asked_and_left_alone_on_a_rerun(stack: Stack) -> None:
    stack.add_workloads()
    config = stack.tmp / "o11yctl.yaml"
    config.write_text(POLICY_CONFIG % "10.42.0.0/24")  # what the cluster gave node-1
    first = stack.run("-c", str(config), "--skip", "storage")
    assert first.exit_code == 0, first.output
    assert outcomes(first)["policy"] == "created"
    loki = stack.api.obj("networking.k8s.io/v1", "NetworkPolicy", "loki-ingress", NS)
    assert loki is not None and loki["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == "loki"
    second = stack.run("-c", str(config), "--skip", "storage")
    assert outcomes(second)["policy"] == "unchanged"


def test_a_pod_cidr_the_cluster_did_not_give_is_a_preflight_problem(stack: Stack) -> None:
    config = stack.tmp / "o11yctl.yaml"
    config.write_text(POLICY_CONFIG % "10.42.9.0/24")
    result = stack.run("-c", str(config), "--skip", "storage")
    assert result.exit_code == 3
    assert "nodes[0].pod_cidr is 10.42.9.0/24 but the cluster gave node node-1 10.42.0.0/24" in \
        result.doc["error"]["message"]
    assert stack.api.obj("networking.k8s.io/v1", "NetworkPolicy", "loki-ingress", NS) is None
