"""The one description of the cluster: YAML file -> validated, frozen Config.

Lookup order for the file: ``--config/-c PATH``, then ``$O11YCTL_CONFIG``, then
``./o11yctl.yaml``, else the built-in default (the runbook's two-node cluster).
A file is laid over the built-in default: mappings merge key by key, lists (such
as ``nodes``) replace the default's list whole. Validation happens once, here;
every error names the dotted key path, the file line where one is known, and
what was expected.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from o11yctl.errors import ConfigError
from o11yctl.stack.catalog import DEFAULT_SET, SETS

DEFAULT_FILE_NAME = "o11yctl.yaml"
ENV_CONFIG = "O11YCTL_CONFIG"

# --- value syntaxes -------------------------------------------------------------------------

_DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS_SUBDOMAIN = re.compile(rf"^{_DNS_LABEL}(\.{_DNS_LABEL})*$")
_SAFE_REMOTE_PATH = re.compile(r"^/[A-Za-z0-9._/+-]*$")
_SSH_HOST = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._:-]*$")
_SSH_USER = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_QUANTITY = re.compile(r"^([0-9]+(\.[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$")
_DURATION = re.compile(r"^(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
_IMAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@-]*$")
_REGISTRY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]*(:[0-9]+)?(/[A-Za-z0-9._-]+)*$")
_HOSTNAME = re.compile(r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_VERSION = re.compile(r"^v?[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?$")


def _dns_name(value: str) -> str:
    if len(value) > 253 or not _DNS_SUBDOMAIN.fullmatch(value):
        raise ValueError("expected a Kubernetes name: lower-case letters, digits, '-' and '.', e.g. node-2")
    return value


def _remote_path(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError(f"expected an absolute path on the node, got {value!r}")
    if not _SAFE_REMOTE_PATH.fullmatch(value) or "/../" in value + "/":  # the "/" finds a final /..
        raise ValueError(
            f"{value!r} contains characters o11yctl does not put into remote commands; "
            "use letters, digits and . _ - + / only"
        )
    return value.rstrip("/") or "/"


def _local_path(value: str) -> str:
    if "\0" in value or not value.strip():
        raise ValueError("expected a file path")
    return str(Path(os.path.expanduser(value)))


def _quantity(value: Any) -> str:
    text = value if isinstance(value, str) else None
    match = _QUANTITY.fullmatch(text) if text else None
    if text is None or match is None or match.group(3) is None or float(match.group(1)) <= 0:
        raise ValueError(f'expected a Kubernetes quantity with a unit, like "200Gi" or "50Gi", got {value!r}')
    return text


def parse_duration(value: str) -> int:
    """Seconds in a duration such as ``7d``, ``168h`` or ``1d12h``."""
    match = _DURATION.fullmatch(value)
    if not value or not match or not any(match.groups()):
        raise ValueError(f'expected a duration like "7d" or "168h", got {value!r}')
    weeks, days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    return (((weeks * 7 + days) * 24 + hours) * 60 + minutes) * 60 + seconds


def go_duration(seconds: int) -> str:
    """A Go ``time.Duration`` string (no days): 604800 -> ``168h``."""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    out = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "") + (f"{secs}s" if secs else "")
    return out or "0s"


def _duration(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f'expected a duration like "7d" or "168h", got {value!r}')
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError(f"expected a positive duration, got {value!r}")
    return value


def _ip(value: Any) -> str:
    try:
        return str(ipaddress.ip_address(str(value)))
    except ValueError:
        raise ValueError(f"expected an IP address like 10.0.0.102, got {value!r}") from None


_SHORT_DURATION = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


def _timeout(value: Any) -> float:
    """Seconds: a number (``10``, ``2.5``), or hours, minutes and seconds (``30s``, ``2m``, ``1h30m``)."""
    expected = f"expected seconds, a number like 10 (or 30s, 2m, 1h), got {value!r}"
    if isinstance(value, bool):
        raise ValueError(expected)
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        match = _SHORT_DURATION.fullmatch(value.strip())
        if not value.strip() or match is None or not any(match.groups()):
            raise ValueError(expected)
        hours, minutes, secs = (int(g) if g else 0 for g in match.groups())
        seconds = float(hours * 3600 + minutes * 60 + secs)
    else:
        raise ValueError(expected)
    if seconds <= 0:
        raise ValueError(f"expected a positive number of seconds, got {value!r}")
    return seconds


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _pattern(regex: re.Pattern[str], what: str) -> AfterValidator:
    def check(value: str) -> str:
        if not regex.fullmatch(value):
            raise ValueError(f"expected {what}, got {value!r}")
        return value

    return AfterValidator(check)


#: A PEM block: its label and its body.
_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.DOTALL)
#: What a ConfigMap may hold (its data, all keys together).
_CONFIGMAP_BYTES = 1024 * 1024


def ca_certificates(path: str) -> str:
    """The certificates of a CA file (``object_storage.ca_file``), as the cluster gets them.

    Only the ``CERTIFICATE`` blocks are kept, in the file's order, each checked to be an X.509
    certificate (Loki and Tempo skip one that is not, silently). A file with a private key is
    refused: the certificates go into a ConfigMap, which anyone who may read the namespace reads.

    Raises:
        ValueError: the file cannot be read, holds no certificate, a broken one, or a private key.
    """
    import ssl

    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not a PEM file (a DER certificate converts with "
                         f"`openssl x509 -inform der -in {path} -out ca.pem`)") from None
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or type(exc).__name__}") from None
    if "PRIVATE KEY-----" in text:
        raise ValueError(f"{path} holds a private key: give a file with the CA's certificate only (it goes into "
                         "a ConfigMap, readable by anyone who may read the namespace)")
    blocks = []
    for label, body in _PEM_BLOCK.findall(text):
        if label == "CERTIFICATE":
            lines = [line.strip() for line in body.strip().splitlines() if line.strip()]
            blocks.append("-----BEGIN CERTIFICATE-----\n" + "\n".join(lines) + "\n-----END CERTIFICATE-----\n")
    if not blocks:
        raise ValueError(f"{path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    for n, block in enumerate(blocks, 1):
        try:
            context.load_verify_locations(cadata=block)
        except ssl.SSLError:
            raise ValueError(f"{path}: certificate {n} is not a valid X.509 certificate (was it copied "
                             "whole?)") from None
    out = "".join(blocks)
    if len(out.encode()) > _CONFIGMAP_BYTES:
        raise ValueError(f"{path}: {len(blocks)} certificates are more than a ConfigMap holds (1 MiB): give only "
                         "the CA that signed the store's certificate")
    return out


DnsName = Annotated[str, AfterValidator(_dns_name)]
RemotePath = Annotated[str, AfterValidator(_remote_path)]
LocalPath = Annotated[str, AfterValidator(_local_path)]
Quantity = Annotated[str, BeforeValidator(_quantity)]
Duration = Annotated[str, BeforeValidator(_duration)]
IpAddress = Annotated[str, BeforeValidator(_ip)]
Timeout = Annotated[float, BeforeValidator(_timeout)]
ImageRef = Annotated[str, _pattern(_IMAGE, "an image reference like busybox:1.36")]
ChartVersion = Annotated[str, _pattern(_VERSION, "a chart version like 6.21.0")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, validate_default=True)


class Taint(_Strict):
    """A node taint, as `kubectl taint` takes it: key=value:effect."""

    key: str
    value: str = ""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] = "NoSchedule"

    @field_validator("key")
    @classmethod
    def _key(cls, v: str) -> str:
        if not _LABEL_KEY.fullmatch(v):
            raise ValueError(f"expected a taint key like heavy, got {v!r}")
        return v

    @field_validator("value")
    @classmethod
    def _value(cls, v: str) -> str:
        if not _LABEL_VALUE.fullmatch(v):
            raise ValueError(f"expected a taint value like true, got {v!r}")
        return v

    def as_toleration(self) -> dict[str, str]:
        return {"key": self.key, "operator": "Equal", "value": self.value, "effect": self.effect}

    def __str__(self) -> str:
        return f"{self.key}={self.value}:{self.effect}" if self.value else f"{self.key}:{self.effect}"


class Node(_Strict):
    """One machine of the cluster."""

    name: DnsName = Field(description="Kubernetes node name (its kubernetes.io/hostname label)")
    address: IpAddress = Field(description="the node's IP address on the cluster network")
    role: Literal["server", "agent"] = Field(description="k3s role: server (control plane) or agent")
    ssh_host: str | None = Field(default=None, description="SSH host or ~/.ssh/config alias; default: address")
    ssh_port: int | None = Field(default=None, ge=1, le=65535, description="default: from ~/.ssh/config, else 22")
    ssh_user: str | None = Field(default=None, description="default: from ~/.ssh/config, else your login name")
    ssh_key: LocalPath | None = Field(default=None, description="private key; default: ssh-agent, ~/.ssh/config")
    labels: dict[str, str] = Field(default_factory=dict, description="labels the node must carry")
    taints: list[Taint] = Field(default_factory=list, description="taints the node carries")
    pod_cidr: str | None = Field(default=None, description="the node's pod network (spec.podCIDR), e.g. "
                                                           "10.42.0.0/24; needed on servers by network_policy")

    @field_validator("pod_cidr")
    @classmethod
    def _pod_cidr(cls, v: str | None) -> str | None:
        if v is None:
            return v
        try:
            net = ipaddress.ip_network(v, strict=True)
        except ValueError:
            raise ValueError(f"expected a network like 10.42.0.0/24 (kubectl get node NAME -o "
                             f"jsonpath='{{.spec.podCIDR}}'), got {v!r}") from None
        return str(net)

    @field_validator("ssh_host")
    @classmethod
    def _ssh_host(cls, v: str | None) -> str | None:
        if v is not None and not _SSH_HOST.fullmatch(v):
            raise ValueError(f"expected a host name, address or ~/.ssh/config alias, got {v!r}")
        return v

    @field_validator("ssh_user")
    @classmethod
    def _ssh_user(cls, v: str | None) -> str | None:
        if v is not None and not _SSH_USER.fullmatch(v):
            raise ValueError(f"expected a user name like ubuntu, got {v!r}")
        return v

    @field_validator("labels")
    @classmethod
    def _labels(cls, v: dict[str, str]) -> dict[str, str]:
        for key, value in v.items():
            if not _LABEL_KEY.fullmatch(key):
                raise ValueError(f"label key {key!r} is not a valid Kubernetes label key")
            if not _LABEL_VALUE.fullmatch(value) or len(value) > 63:
                raise ValueError(f"label {key}: value {value!r} is not a valid Kubernetes label value")
        return v

    @property
    def ssh_target_host(self) -> str:
        return self.ssh_host or self.address


class SshSettings(_Strict):
    known_hosts: LocalPath = Field(default="~/.ssh/known_hosts", description="known_hosts file to verify against")
    config_file: LocalPath | None = Field(default=None, description="ssh_config file; default: ~/.ssh/config")
    connect_timeout: Timeout = Field(default=10.0, description="seconds to wait for a connection")
    command_timeout: Timeout = Field(default=120.0, description="seconds a remote command may run")


class Storage(_Strict):
    node: DnsName = Field(default="node-2", description="the node whose disk holds Loki's and Tempo's data")
    root: RemotePath = Field(default="/mnt/k8s-storage", description="absolute directory on the storage node")
    class_name: DnsName = Field(default="local-storage", description="storageClassName of the PVs and PVCs")
    owner_uid: int = Field(default=10001, ge=0, description="owner of the data directories (Loki/Tempo run as 10001)")
    owner_gid: int = Field(default=10001, ge=0, description="group of the data directories")


class ChartSource(_Strict):
    """Where one Helm chart comes from; every key left out comes from the chart set (charts.set)."""

    name: str | None = Field(default=None, description="chart name in the repository; default: the set's")
    version: ChartVersion | None = Field(default=None, description="pinned chart version; default: the set's")
    repository: str | None = Field(default=None, description="chart repository URL; default: charts.repository, "
                                                             "else the set's")
    path: LocalPath | None = Field(default=None, description="a local chart directory or .tgz (air-gapped installs)")

    @field_validator("repository")
    @classmethod
    def _repo(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"^(https?|oci)://[^\s]+$", v):
            raise ValueError(f"expected a chart repository URL (https://... or oci://...), got {v!r}")
        return v


class Charts(_Strict):
    set: str = Field(default=DEFAULT_SET, description="the tested set of chart versions (see `o11yctl init`)")
    repository: str | None = Field(default=None, description="pull every chart from this repository (a mirror); "
                                                             "default: each chart's own repository in the set")
    timeout: Duration = Field(default="10m", description="helm --timeout for each release")

    @field_validator("set")
    @classmethod
    def _set(cls, v: str) -> str:
        if v not in SETS:
            raise ValueError(f"expected one of the chart sets {', '.join(SETS)}, got {v!r}")
        return v

    @field_validator("repository")
    @classmethod
    def _repo(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"^(https?|oci)://[^\s]+$", v):
            raise ValueError(f"expected a chart repository URL (https://... or oci://...), got {v!r}")
        return v


class Loki(_Strict):
    chart: ChartSource = Field(default_factory=ChartSource)
    size: Quantity = Field(default="200Gi", description="PersistentVolume size")
    retention: Duration = Field(default="7d", description="how long logs are kept")
    replicas: int = Field(default=3, ge=1, le=9, description="profile scalable: Loki pods sharing the bucket and "
                                                             "a ring (replication factor 3 from 3 replicas)")
    nodes: list[DnsName] = Field(default_factory=list, description="profile scalable: nodes Loki may run on "
                                                                   "(default: any)")

    @field_validator("retention")
    @classmethod
    def _whole_days(cls, v: str) -> str:
        if parse_duration(v) % 86400:
            raise ValueError(f"Loki's retention must be a whole number of days (its index period is 24h), got {v!r}")
        return v


class Tempo(_Strict):
    chart: ChartSource = Field(default_factory=ChartSource)
    size: Quantity = Field(default="50Gi", description="PersistentVolume size")
    retention: Duration = Field(default="168h", description="how long traces are kept")
    nodes: list[DnsName] = Field(default_factory=list, description="profile scalable: nodes Tempo may run on "
                                                                    "(default: any)")


class Alloy(_Strict):
    chart: ChartSource = Field(default_factory=ChartSource)


class Grafana(_Strict):
    chart: ChartSource = Field(default_factory=ChartSource)
    node: DnsName = Field(default="node-1", description="the node Grafana runs on")


class Components(_Strict):
    loki: Loki = Field(default_factory=Loki)
    tempo: Tempo = Field(default_factory=Tempo)
    alloy: Alloy = Field(default_factory=Alloy)
    grafana: Grafana = Field(default_factory=Grafana)


class Gateway(_Strict):
    name: DnsName = Field(default="eg", description="the Gateway the HTTPRoute attaches to")
    namespace: DnsName = Field(default="default", description="the Gateway's namespace")
    listener: str | None = Field(default="http", description="the listener (sectionName); null for all")


class Route(_Strict):
    gateway: Gateway = Field(default_factory=Gateway)
    url: str = Field(default="http://10.0.0.102/grafana", description="Grafana's public URL through the gateway")
    hostnames: list[str] = Field(default_factory=list, description="HTTPRoute hostnames; empty matches any host")

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        match = re.fullmatch(r"^(https?)://([A-Za-z0-9.-]+|\[[0-9A-Fa-f:]+\])(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]*)?$", v)
        if not match:
            raise ValueError(f"expected a URL like http://10.0.0.102/grafana, got {v!r}")
        return v.rstrip("/")

    @field_validator("hostnames")
    @classmethod
    def _hostnames(cls, v: list[str]) -> list[str]:
        for h in v:
            if _is_ip(h) or not _HOSTNAME.fullmatch(h):
                raise ValueError(f"expected DNS host names (not IP addresses), got {h!r}")
        return v

    @property
    def path(self) -> str:
        return "/" + self.url.split("://", 1)[1].partition("/")[2] if "/" in self.url.split("://", 1)[1] else "/"


class Images(_Strict):
    registry: str | None = Field(default=None, description="pull every chart image from this registry (a mirror)")
    test_image: ImageRef = Field(default="busybox:latest", description="small image for network checks")

    @field_validator("registry")
    @classmethod
    def _registry(cls, v: str | None) -> str | None:
        if v is not None and not _REGISTRY.fullmatch(v):
            raise ValueError(f"expected a registry host like registry.lan:5000, got {v!r}")
        return v


_IFACE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,14}$")


def _command_line(value: Any) -> str:
    import shlex

    if not isinstance(value, str):
        raise ValueError(f"expected a command line like \"systemctl restart k3s\", got {value!r}")
    try:
        words = shlex.split(value)
    except ValueError as exc:
        raise ValueError(f"expected a command line like \"systemctl restart k3s\": {exc}") from None
    if not words:
        raise ValueError("expected a command line like \"systemctl restart k3s\", got an empty string")
    return value


CommandLine = Annotated[str, BeforeValidator(_command_line)]


class VxlanRestart(_Strict):
    """The command that restarts K3s on a node of each role (run with sudo)."""

    server: CommandLine = Field(default="systemctl restart k3s", description="restart command on servers")
    agent: CommandLine = Field(default="systemctl restart k3s-agent", description="restart command on agents")


class Vxlan(_Strict):
    """Settings of `o11yctl fix-vxlan` (Flannel's VXLAN backend)."""

    interface: Annotated[str, _pattern(_IFACE, "an interface name like flannel.1")] = Field(
        default="flannel.1", description="the VXLAN device Flannel creates on every node"
    )
    port: int = Field(default=8472, ge=1, le=65535, description="UDP port of the VXLAN tunnel")
    ping_count: int = Field(default=2, ge=1, le=20, description="pings from each node to each peer")
    ping_wait: int = Field(default=1, ge=1, le=30, description="seconds to wait for the last ping reply")
    restart: VxlanRestart = Field(default_factory=VxlanRestart)
    restart_wait: Timeout = Field(default=60.0, description="seconds to wait for the overlay after a restart")
    persist_dir: RemotePath = Field(
        default="/etc/o11yctl", description="where the script re-adding o11yctl's rules at boot is written"
    )
    systemd_unit_dir: RemotePath = Field(
        default="/etc/systemd/system", description="where the boot unit that runs that script is written"
    )
    boot: Literal["auto", "systemd", "none"] = Field(
        default="auto",
        description="how the saved rules come back at boot: auto (a systemd unit where systemd runs), "
        "systemd, or none (only save the script)",
    )


class Cluster(_Strict):
    name: Annotated[str, _pattern(_LABEL_VALUE, "a label value like homelab")] = Field(
        default="homelab", description="value of the `cluster` label on every log line"
    )
    namespace: DnsName = Field(default="logging", description="namespace of the whole stack")


def _default_nodes() -> list[Node]:
    return [
        Node(name="node-1", address="10.0.0.102", role="server"),
        Node(
            name="node-2",
            address="10.0.0.103",
            role="agent",
            labels={"hardware": "heavy"},
            taints=[Taint(key="heavy", value="true", effect="NoSchedule")],
        ),
    ]


#: Keys that would hold a credential: refused in the file, with the way to give it instead.
_CREDENTIAL_KEYS = re.compile(r"(secret|password|access_?key|token|credential)(?!s_secret)", re.IGNORECASE)


class Buckets(_Strict):
    loki_chunks: str = Field(default="loki-chunks", description="Loki's chunks and index")
    loki_ruler: str = Field(default="loki-ruler", description="Loki's rules")
    tempo: str = Field(default="tempo-traces", description="Tempo's blocks")

    @field_validator("loki_chunks", "loki_ruler", "tempo")
    @classmethod
    def _bucket(cls, v: str) -> str:
        # S3's general purpose bucket naming rules: 3-63 characters, lowercase letters, digits, dots, hyphens,
        # beginning and ending with a letter or digit.
        if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", v) or ".." in v:
            raise ValueError(f"expected an S3 bucket name (3-63 lowercase letters, digits, dots, hyphens), got {v!r}")
        return v


class ObjectStorage(_Strict):
    """profile: scalable: where Loki's chunks and index and Tempo's blocks live."""

    store: Literal["in-cluster", "external"] = Field(
        default="in-cluster", description="in-cluster: an S3-compatible store o11yctl installs on the nodes below; "
                                          "external: an S3 endpoint you run")
    endpoint: str | None = Field(default=None, description="external: the S3 endpoint URL, e.g. https://s3.lan:9000")
    region: str = Field(default="us-east-1", description="the S3 region (SigV4 signs with it)")
    path_style: bool = Field(default=True, description="path-style bucket URLs (most self-hosted stores)")
    ca_file: LocalPath | None = Field(
        default=None, description="external, https: the CA (PEM) that signed the endpoint's certificate; Loki, "
                                  "Tempo and o11yctl's checks trust it")
    buckets: Buckets = Field(default_factory=Buckets)
    credentials_secret: DnsName = Field(
        default="o11yctl-object-storage",
        description="the Secret (in the stack's namespace) with access_key_id and secret_access_key; created by "
                    "install when missing (in-cluster: generated; external: from $O11YCTL_S3_ACCESS_KEY_ID and "
                    "$O11YCTL_S3_SECRET_ACCESS_KEY)")
    nodes: list[DnsName] = Field(default_factory=list, description="in-cluster: the nodes whose disks hold the "
                                                                   "store's data (default: every node)")
    root: RemotePath = Field(default="/mnt/k8s-storage/object-store",
                             description="in-cluster: the directory on each of those nodes")
    size: Quantity = Field(default="100Gi", description="in-cluster: the store's volume on each node")

    @model_validator(mode="before")
    @classmethod
    def _no_credentials(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            for key in data:
                if isinstance(key, str) and key != "credentials_secret" and _CREDENTIAL_KEYS.search(key):
                    raise _KeyedError(
                        ("object_storage", key),
                        "credentials are never read from the config file: put them in the Secret named by "
                        "object_storage.credentials_secret (keys access_key_id, secret_access_key), or give them "
                        "to install with $O11YCTL_S3_ACCESS_KEY_ID and $O11YCTL_S3_SECRET_ACCESS_KEY")
        return data

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"https?://([A-Za-z0-9.-]+|\[[0-9A-Fa-f:]+\])(:[0-9]{1,5})?/?", v):
            raise ValueError(f"expected an endpoint URL like https://s3.lan:9000 (scheme, host, port), got {v!r}")
        return None if v is None else v.rstrip("/")

    @property
    def in_cluster(self) -> bool:
        return self.store == "in-cluster"


class NetworkPolicy(_Strict):
    """Opt-in NetworkPolicies around Loki and Tempo."""

    enabled: bool = Field(default=False, description="only Alloy, Grafana, the API server (o11yctl's checks) and "
                                                     "allow_namespaces reach Loki's and Tempo's ports")
    allow_namespaces: list[DnsName] = Field(default_factory=list,
                                            description="namespaces whose pods may push to and query Loki and Tempo")


class Config(_Strict):
    """The validated configuration. Built-in defaults are the runbook's cluster."""

    cluster: Cluster = Field(default_factory=Cluster)
    nodes: list[Node] = Field(default_factory=_default_nodes, min_length=1)
    ssh: SshSettings = Field(default_factory=SshSettings)
    storage: Storage = Field(default_factory=Storage)
    charts: Charts = Field(default_factory=Charts)
    components: Components = Field(default_factory=Components)
    route: Route = Field(default_factory=Route)
    images: Images = Field(default_factory=Images)
    vxlan: Vxlan = Field(default_factory=Vxlan)
    network_policy: NetworkPolicy = Field(default_factory=NetworkPolicy)
    profile: Literal["single-node", "scalable"] = Field(
        default="single-node", description="single-node: the runbook's shape (data on one node's disk); scalable: "
                                           "Loki and Tempo on object storage, Loki replicated")
    object_storage: ObjectStorage = Field(default_factory=ObjectStorage)

    @model_validator(mode="after")
    def _cross_checks(self) -> Config:
        names = [n.name for n in self.nodes]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise _KeyedError(("nodes",), f"node name {dupes[0]!r} appears more than once")
        addresses = [n.address for n in self.nodes]
        dup_addr = sorted({a for a in addresses if addresses.count(a) > 1})
        if dup_addr:
            raise _KeyedError(("nodes",), f"address {dup_addr[0]} appears more than once")
        if not any(n.role == "server" for n in self.nodes):
            raise _KeyedError(("nodes",), "at least one node needs role: server (the k3s control plane)")
        if self.storage.node not in names:
            raise _KeyedError(
                ("storage", "node"), f"{self.storage.node!r} is not one of nodes[].name ({', '.join(names)})"
            )
        if self.components.grafana.node not in names:
            raise _KeyedError(
                ("components", "grafana", "node"),
                f"{self.components.grafana.node!r} is not one of nodes[].name ({', '.join(names)})",
            )
        if self.profile == "scalable":
            self._check_scalable(names)
        if self.network_policy.enabled:
            for i, n in enumerate(self.nodes):
                if n.role == "server" and n.pod_cidr is None:
                    raise _KeyedError(
                        ("nodes", i, "pod_cidr"),
                        f"required on a server node when network_policy.enabled (the API server reaches Loki "
                        f"and Tempo from it): kubectl get node {n.name} -o jsonpath='{{.spec.podCIDR}}'")
        return self

    def _check_scalable(self, names: list[str]) -> None:
        if self.charts.set != "current":
            raise _KeyedError(("profile",), f"scalable runs on the maintained charts: set charts.set: current "
                                            f"(it is {self.charts.set!r}; `o11yctl upgrade --to current` moves an "
                                            "installed stack)")
        store = self.object_storage
        if store.store == "external" and store.endpoint is None:
            raise _KeyedError(("object_storage", "endpoint"), "required with object_storage.store: external")
        if store.store == "in-cluster" and store.endpoint is not None:
            raise _KeyedError(("object_storage", "endpoint"), "only for store: external (the in-cluster store's "
                                                              "endpoint is its Service)")
        if store.ca_file is not None:
            self._check_ca_file(store)
        placements = ((("object_storage", "nodes"), store.nodes),
                      (("components", "loki", "nodes"), self.components.loki.nodes),
                      (("components", "tempo", "nodes"), self.components.tempo.nodes))
        for key, listed in placements:
            unknown = [n for n in listed if n not in names]
            if unknown:
                raise _KeyedError(key, f"{unknown[0]!r} is not one of nodes[].name ({', '.join(names)})")
        room = len(self.components.loki.nodes or names)
        if self.components.loki.replicas > room:
            raise _KeyedError(("components", "loki", "replicas"),
                              f"{self.components.loki.replicas} replicas, one per node, need as many nodes; "
                              f"{room} may take Loki (components.loki.nodes, else nodes)")

    #: Set by `o11yctl migrate` only, never read from a file: which stage of a move from single-node to
    #: profile scalable this config deploys ("bridge" or "finish"), and the first UTC day (YYYY-MM-DD) Loki
    #: writes to the bucket (:mod:`o11yctl.stack.migrate`).
    _move: tuple[str, str] | None = PrivateAttr(default=None)

    @property
    def bridge_from(self) -> str | None:
        """The move's first stage: the day Loki's bucket period starts (None: not that stage)."""
        return self._move[1] if self._move is not None and self._move[0] == "bridge" else None

    @property
    def finishing_from(self) -> str | None:
        """The move's finish stage: the day Loki's bucket period started (None: not that stage)."""
        return self._move[1] if self._move is not None and self._move[0] == "finish" else None

    def bridged(self, day: str) -> Config:
        """This (profile scalable) config as the move's first stage deploys it: the single-node
        install kept on its volumes, Loki and Tempo writing to the object store from ``day``."""
        out = self.model_copy()
        out._move = ("bridge", day)
        return out

    def finishing(self, day: str) -> Config:
        """This (profile scalable) config as the move's finish stage deploys it: profile scalable, with the
        move's record saying it is finishing before anything else changes."""
        out = self.model_copy()
        out._move = ("finish", day)
        return out

    @staticmethod
    def _check_ca_file(store: ObjectStorage) -> None:
        """An external https endpoint's CA: a readable file of certificates and nothing else."""
        key = ("object_storage", "ca_file")
        assert store.ca_file is not None
        if store.in_cluster:
            raise _KeyedError(key, "only for store: external (the in-cluster store answers plain HTTP inside the "
                                   "cluster)")
        if store.endpoint is not None and store.endpoint.startswith("http://"):
            raise _KeyedError(key, f"the endpoint {store.endpoint} is plain HTTP, where no certificate is checked: "
                                   "give an https:// endpoint, or leave ca_file out")
        try:
            ca_certificates(store.ca_file)
        except ValueError as exc:
            raise _KeyedError(key, str(exc)) from None

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    @property
    def storage_node(self) -> Node:
        return self.node(self.storage.node)


class _KeyedError(ValueError):
    """A cross-field error that belongs to a specific key path."""

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc


# --- loading --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConfigSource:
    """Where the configuration came from (for messages and `--json`)."""

    path: Path | None
    how: str  # "flag", "env", "cwd" or "default"

    def describe(self) -> str:
        return f"{self.path} (from {self.how})" if self.path else "the built-in default (the runbook's cluster)"


def find_config(explicit: str | os.PathLike[str] | None) -> ConfigSource:
    """Resolve which file to read: flag, then $O11YCTL_CONFIG, then ./o11yctl.yaml, else none."""
    if explicit:
        return ConfigSource(Path(os.path.expanduser(str(explicit))), "--config")
    env = os.environ.get(ENV_CONFIG)
    if env:
        return ConfigSource(Path(os.path.expanduser(env)), "$" + ENV_CONFIG)
    cwd = Path(DEFAULT_FILE_NAME)
    if cwd.is_file():
        return ConfigSource(cwd, "./" + DEFAULT_FILE_NAME)
    return ConfigSource(None, "default")


def _missing_hint(source: ConfigSource) -> str:
    """What to do about a config file that is not there, for where its name came from."""
    if source.how == "--config":
        return (f"check the path; `o11yctl init --out {source.path}` writes one there; without --config, "
                f"${ENV_CONFIG}, ./{DEFAULT_FILE_NAME} or the built-in default is used")
    return (f"${ENV_CONFIG} names it: point the variable at an existing file (`o11yctl init --out {source.path}` "
            f"writes one), or unset it to use ./{DEFAULT_FILE_NAME} or the built-in default")


def default_config() -> Config:
    """The built-in default: the runbook's two-node K3s cluster."""
    return Config()


def load_config(explicit: str | os.PathLike[str] | None = None) -> tuple[Config, ConfigSource]:
    """Find, read and validate the configuration.

    Raises:
        ConfigError: the file is missing, unreadable, not YAML, or fails validation.
    """
    source = find_config(explicit)
    if source.path is None:
        return default_config(), source
    try:
        text = source.path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"config file {source.path} (from {source.how}) does not exist",
            hint=_missing_hint(source),
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"cannot read config file {source.path}: {exc}", hint="check the path and its permissions"
        ) from None
    return parse_config(text, str(source.path)), source


def parse_config(text: str, filename: str = "<config>") -> Config:
    """Validate YAML text laid over the built-in default."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{filename}:{mark.line + 1}" if mark else filename
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{where}: not valid YAML: {problem}", hint="fix the YAML syntax at that line") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{filename}: expected a mapping of settings at the top level", hint="see `o11yctl init`")
    lines = _line_index(root)
    merged = _merge(Config().model_dump(), data)
    try:
        return Config.model_validate(_thaw(merged))
    except ValidationError as exc:
        problems = [_describe(err, lines, filename) for err in exc.errors()]
        head = problems[0] if len(problems) == 1 else f"{len(problems)} problems in {filename}:"
        message = head if len(problems) == 1 else head + "\n" + "\n".join(f"  - {p}" for p in problems)
        raise ConfigError(
            message,
            hint="fix the key named above; `o11yctl init --out example.yaml` writes a commented example",
            problems=problems,
        ) from None


def _thaw(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_thaw(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    return value


def _merge(base: Any, override: Any) -> Any:
    if isinstance(base, Mapping) and override is None:  # a section written with nothing under it (`alloy:`)
        return base
    if isinstance(base, Mapping) and isinstance(override, Mapping):
        out = dict(base)
        for key, value in override.items():
            out[key] = _merge(base[key], value) if key in base else value
        return out
    return override


def _line_index(node: yaml.Node | None, path: tuple[Any, ...] = ()) -> dict[tuple[Any, ...], int]:
    index: dict[tuple[Any, ...], int] = {}
    if node is None:
        return index
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            index[(*path, key)] = key_node.start_mark.line + 1
            index.update(_line_index(value_node, (*path, key)))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            index[(*path, i)] = item.start_mark.line + 1
            index.update(_line_index(item, (*path, i)))
    return index


def _dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _describe(err: Any, lines: dict[tuple[Any, ...], int], filename: str) -> str:
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p in {"function-after", "lax-or-strict"}))
    ctx_error = (err.get("ctx") or {}).get("error")
    if isinstance(ctx_error, _KeyedError):
        loc = ctx_error.loc
    msg = str(ctx_error) if ctx_error is not None else err["msg"]
    kind = err["type"]
    if kind == "extra_forbidden":
        msg = "unknown key (check its spelling; `o11yctl init` lists every key)"
    elif kind == "missing":
        msg = "required key is missing"
    elif kind in {"string_type", "int_type", "bool_type", "dict_type", "list_type"}:  # the schema's field types
        expected = kind.removesuffix("_type").replace("dict", "mapping")
        msg = f"expected {expected}, got {_short(err.get('input'))}"
    elif kind == "literal_error":
        msg = f"{err['msg'].lower()}, got {_short(err.get('input'))}"
    line = None
    probe = loc
    while probe and line is None:
        line = lines.get(probe)
        probe = probe[:-1]
    where = f" ({filename}:{line})" if line else ""
    return f"{_dotted(loc)}: {msg}{where}"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
