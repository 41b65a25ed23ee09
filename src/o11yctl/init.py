"""`o11yctl init`: the built-in default configuration as a commented file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from o11yctl.config import DEFAULT_FILE_NAME, ENV_CONFIG
from o11yctl.errors import ConfigError, PathError, UsageError
from o11yctl.model import Outcome
from o11yctl.stack.catalog import DEFAULT_SET, SETS, chart_set

TEMPLATE = """\
# o11yctl configuration: the cluster the observability stack goes on.
# Defaults are the runbook's two-node K3s cluster. Every key is optional: a key you
# leave out takes the default shown here (lists such as `nodes` replace the default whole).
# Precedence: built-in defaults < this file < environment variables < command-line flags.

cluster:                     # the cluster as Alloy labels it, and the stack's namespace
  name: homelab              # the `cluster` label Alloy puts on every log line
  namespace: logging         # namespace of Loki, Tempo, Alloy and Grafana

nodes:                       # every node of the K3s cluster
  - name: node-1             # Kubernetes node name (its kubernetes.io/hostname label)
    address: 10.0.0.102      # IP address on the cluster network
    role: server             # server (k3s control plane) or agent
    # ssh_host: node1        # host or ~/.ssh/config alias to reach it; default: address
    # ssh_port: 22           # unset: whatever ~/.ssh/config says for ssh_host
    # ssh_user: ubuntu       # unset: whatever ~/.ssh/config says, else your login name
    # ssh_key: ~/.ssh/id_ed25519   # unset: ssh-agent and ~/.ssh/config's IdentityFile
    # pod_cidr: 10.42.0.0/24 # its spec.podCIDR; needed on servers when network_policy is on
  - name: node-2             # the second node
    address: 10.0.0.103      # the storage node: its disk holds the data
    role: agent              # a k3s agent (worker)
    labels:                  # Loki and Tempo are scheduled onto the storage node by these labels
      hardware: heavy        # Loki's and Tempo's nodeSelector
    taints:                  # ...and tolerate its taints
      - key: heavy           # the taint Loki and Tempo tolerate
        value: "true"        # kubectl taint node node-2 heavy=true:NoSchedule
        effect: NoSchedule   # NoSchedule, PreferNoSchedule or NoExecute

ssh:                         # how o11yctl reaches the nodes (storage directories, fix-vxlan, doctor)
  known_hosts: ~/.ssh/known_hosts   # host keys are verified against this file
  # config_file: ~/.ssh/config      # ssh_config to resolve aliases, ProxyJump, IdentityFile
  connect_timeout: 10        # seconds
  command_timeout: 120       # seconds

storage:                     # where Loki's and Tempo's data live: a directory on one node's disk
  node: node-2               # the node whose disk holds Loki's and Tempo's data (one of nodes[].name)
  root: /mnt/k8s-storage     # absolute path on that node; data goes to <root>/loki and <root>/tempo
  class_name: local-storage  # storageClassName of the PersistentVolumes and claims
  owner_uid: 10001           # Loki and Tempo run as UID 10001
  owner_gid: 10001           # and their group

charts:                      # which Helm charts, at which pinned versions
{chart_sets}
  # repository: https://charts.lan/grafana   # pull every chart from this repository (a mirror)
  timeout: 10m               # helm --timeout for each release

components:                  # per component: chart overrides, volume size, retention, placement
  loki:                      # logs
{loki_chart}
    size: 200Gi              # PersistentVolume size (see the README: a local volume's room is its disk's)
    retention: 7d            # whole days (Loki's index period is 24h)
    # replicas: 3            # profile scalable: Loki pods sharing the bucket (replication factor 3 from 3)
    # nodes: []              # profile scalable: the nodes Loki may run on (default: any)
  tempo:                     # traces
{tempo_chart}
    size: 50Gi               # PersistentVolume size
    retention: 168h          # how long traces are kept
    # nodes: []              # profile scalable: the nodes Tempo may run on (default: any)
  alloy:                     # the log shipper, a DaemonSet on every node
{alloy_chart}
  grafana:                   # the UI, with Loki and Tempo as datasources
{grafana_chart}
    node: node-1             # the node Grafana runs on

route:                       # the Envoy Gateway HTTPRoute that publishes Grafana
  gateway:                   # the Gateway the route attaches to
    name: eg                 # the Gateway's name (kubectl get gateways -A)
    namespace: default       # and its namespace
    listener: http           # the Gateway listener (sectionName); null attaches to all
  url: http://10.0.0.102/grafana   # Grafana's public URL; its path is the route's prefix
  hostnames: []              # HTTPRoute hostnames (DNS names); empty matches any host

images:                      # where images come from
  registry: null             # e.g. registry.lan:5000 to pull every chart image from a mirror
  test_image: busybox:latest # small image for network checks (fix-vxlan, doctor)

vxlan:                       # `o11yctl fix-vxlan`: Flannel's VXLAN overlay between the nodes
  interface: flannel.1       # the VXLAN device Flannel creates on every node
  port: 8472                 # its UDP port; only this port is opened, only to the other nodes
  ping_count: 2              # overlay pings from each node to each peer
  ping_wait: 1               # seconds to wait for the last reply
  restart:                   # run with sudo only with --restart (or --yes when the overlay still fails)
    server: systemctl restart k3s         # on nodes with role: server
    agent: systemctl restart k3s-agent    # on nodes with role: agent
  restart_wait: 60           # seconds to wait for the overlay after a restart
  persist_dir: /etc/o11yctl  # the boot script re-adding only o11yctl's rules goes here
  systemd_unit_dir: /etc/systemd/system   # ...and the unit that runs it at boot (when systemd runs)
  boot: auto                 # auto: a systemd unit where systemd runs; systemd; none: only save the script

profile: single-node         # single-node: the runbook's shape; scalable: Loki and Tempo on object storage
                             # (an installed single-node stack moves there with `o11yctl migrate`, data kept)

object_storage:              # profile scalable only (needs charts.set: current; README: Outgrowing one node)
  store: in-cluster          # in-cluster: an S3 store o11yctl installs on the nodes below; external: yours
  # endpoint: https://s3.lan:9000   # store external: your S3 endpoint
  region: us-east-1          # the region S3 requests are signed for
  path_style: true           # path-style bucket URLs, as most self-hosted stores want
  # ca_file: ~/s3-ca.pem     # store external, https: the CA that signed its certificate (Loki and Tempo too)
  buckets:                   # one per kind of data
    loki_chunks: loki-chunks # Loki's chunks and index
    loki_ruler: loki-ruler   # Loki's rules
    tempo: tempo-traces      # Tempo's blocks
  credentials_secret: o11yctl-object-storage   # Secret with access_key_id/secret_access_key (never this file)
  nodes: []                  # in-cluster: the nodes whose disks hold the store's data (default: every node)
  root: /mnt/k8s-storage/object-store   # in-cluster: the directory on each of those nodes
  size: 100Gi                # in-cluster: the store's volume on each node

network_policy:              # opt in: NetworkPolicies around Loki and Tempo (README: Security)
  enabled: false             # only Alloy, Grafana, the API server and allow_namespaces reach their ports
  allow_namespaces: []       # namespaces whose pods may push logs and traces to them, or query them
"""


def _chart_sets() -> str:
    lines = [f"  set: {DEFAULT_SET}".ljust(29) + "# the tested set of chart versions; one of:"]
    for name, pins in SETS.items():
        lines.append(f"  #   {name}: {pins.description} (checked {pins.checked})")
    lines.append("  # To move an installed stack to another set, data kept: o11yctl upgrade --to SET")
    return "\n".join(lines)


def _chart(component: str) -> str:
    pin = chart_set(DEFAULT_SET).pin(component)
    return "\n".join([
        f"    # chart:                 # default: {pin.chart} {pin.version} (app {pin.app_version}) from the set",
        f"    #   version: {pin.version}".ljust(29) + "# another version of the chart",
        "    #   repository: https://...   # another repository (default: the set's, " f"{pin.repository})",
        f"    #   path: ./charts/{pin.chart}-{pin.version}.tgz   # a local chart (directory or .tgz), air-gapped",
    ])


def default_config_text() -> str:
    """The built-in default as a commented file; the chart lines come from the chart catalog."""
    return TEMPLATE.format(chart_sets=_chart_sets(), **{f"{c}_chart": _chart(c)
                                                        for c in chart_set(DEFAULT_SET).pins})


def init_target(*, path: Path | None, out: Path | None, config: Path | None) -> tuple[Path, str]:
    """Where ``init`` writes, and why there: PATH, --out, -c, $O11YCTL_CONFIG, else ./o11yctl.yaml.

    Raises:
        UsageError: two different places were given.
    """
    given = [(p, how) for p, how in ((path, "PATH"), (out, "--out"), (config, "-c/--config")) if p is not None]
    if len({str(p) for p, _ in given}) > 1:
        raise UsageError(f"{' and '.join(how for _, how in given)} name different files",
                         hint="give the file once (PATH, --out and -c are the same thing for init)")
    if given:
        return given[0]
    env = os.environ.get(ENV_CONFIG)
    if env:
        return Path(os.path.expanduser(env)), "$" + ENV_CONFIG
    return Path(DEFAULT_FILE_NAME), "./" + DEFAULT_FILE_NAME


def write_default_config(target: Path, *, force: bool) -> Outcome:
    """Write the commented default to ``target``; refuse to overwrite unless ``force``.

    Returns:
        ``created`` or ``changed`` (overwritten with --force).

    Raises:
        ConfigError: the file exists and ``force`` is false, or it cannot be written.
    """
    existed = target.exists()
    if existed and not force:
        raise ConfigError(f"{target} already exists", hint="pass --force to overwrite it, or --out for another path")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        # A name nobody can guess or pre-create (O_EXCL, mode 0600): a symlink planted at a predictable
        # temporary name could otherwise redirect the write (think --out /tmp/...).
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(default_config_text())
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise PathError.of("cannot write", target, exc) from None
    return "changed" if existed else "created"
