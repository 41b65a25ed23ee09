"""How one command reaches the world: the cluster's API, helm, and the nodes over SSH.

The CLI builds one :class:`Access` from its flags and hands it to the command; each
executor is opened the first time something asks for it, and :meth:`Access.close`
closes whatever was opened. So a command that never needs SSH never opens a
connection, and nothing is declared twice: the kubeconfig, context, helm binary,
host-key policy and sudo password are read here and nowhere else.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from o11yctl.config import Config
from o11yctl.errors import PreflightError
from o11yctl.secrets import Secret

if TYPE_CHECKING:
    from o11yctl.executors.helm import Helm
    from o11yctl.executors.kube import Kube
    from o11yctl.executors.ssh import SshPool

#: The helm binary, when not given: this variable, else ``helm`` on PATH.
ENV_HELM = "O11YCTL_HELM"
ENV_KUBECONFIG = "O11YCTL_KUBECONFIG"
ENV_CONTEXT = "O11YCTL_CONTEXT"


class Unavailable(NamedTuple):
    """Why a connection is not there: the detail and hint a skipped check shows."""

    detail: str
    hint: str
    #: True when the peer was configured but did not answer (exit 3); False when no access was configured.
    unreachable: bool = False


@dataclass(frozen=True, slots=True)
class AccessOptions:
    """The flags every command shares about reaching the cluster and the nodes."""

    kubeconfig: str | None = None  # --kubeconfig (default: $KUBECONFIG, else ~/.kube/config)
    context: str | None = None  # --context
    helm_binary: str | None = None  # default: $O11YCTL_HELM, else helm on PATH
    accept_new_host_keys: bool = False
    sudo_password: Secret | None = None
    request_timeout: float = 30.0  # seconds one API request may take
    #: Where the kubeconfig's name came from, for messages: a flag, a variable, or the default.
    kubeconfig_source: str = ""

    @classmethod
    def from_flags(cls, *, kubeconfig: str | None, context: str | None, **rest: Any) -> AccessOptions:
        """The options from the command's flags, with ``$O11YCTL_KUBECONFIG``/``$O11YCTL_CONTEXT`` under them."""
        source = "--kubeconfig"
        if not kubeconfig and os.environ.get(ENV_KUBECONFIG):
            kubeconfig, source = os.environ[ENV_KUBECONFIG], "$" + ENV_KUBECONFIG
        elif not kubeconfig:
            source = "$KUBECONFIG" if os.environ.get("KUBECONFIG") else "the default ~/.kube/config"
        return cls(kubeconfig=kubeconfig, context=context or os.environ.get(ENV_CONTEXT) or None,
                   kubeconfig_source=source, **rest)

    @property
    def kube_named(self) -> bool:
        """The user named a kubeconfig or context: a missing one is an error, not a reason to skip."""
        return bool(self.kubeconfig or self.context)

    def helm_path(self) -> str:
        return self.helm_binary or os.environ.get(ENV_HELM) or "helm"


class Access:
    """The executors of one command, each opened on first use and all closed together.

    Args:
        cfg: the configuration (SSH settings, nodes).
        options: the shared flags.
    """

    def __init__(self, cfg: Config, options: AccessOptions | None = None) -> None:
        self.cfg = cfg
        self.options = options or AccessOptions()
        self._lock = threading.Lock()
        self._kube: Kube | None = None
        self._helm: Helm | None = None
        self._ssh: SshPool | None = None

    def kube(self) -> Kube:
        """The cluster's API (the kubeconfig is read now; no request is sent yet).

        Raises:
            PreflightError: no usable kubeconfig or context (exit 3).
        """
        with self._lock:
            if self._kube is None:
                from o11yctl.executors.kube import connect

                try:
                    self._kube = connect(self.options.kubeconfig, self.options.context,
                                         timeout=self.options.request_timeout)
                except PreflightError as exc:
                    source = self.options.kubeconfig_source
                    if source:
                        raise PreflightError(f"{exc.message} (from {source})", hint=exc.hint) from exc
                    raise
            return self._kube

    def kube_or_reason(self) -> tuple[Kube | None, Unavailable | None]:
        """The cluster's API, or (when no kubeconfig was named and none is usable) why not, as (detail, hint).

        Raises:
            PreflightError: the kubeconfig or context the user named cannot be used.
        """
        try:
            return self.kube(), None
        except PreflightError as exc:
            if self.options.kube_named:
                raise
            return None, Unavailable(f"no cluster access: {exc.message}", exc.hint or "pass --kubeconfig")

    def reachable_kube(self) -> tuple[Kube | None, Unavailable | None]:
        """The cluster's API when it answers, else why not: no kubeconfig, or (``unreachable``) no answer.

        Raises:
            PreflightError: the kubeconfig or context the user named cannot be used.
        """
        from o11yctl.errors import KubeError

        kube, missing = self.kube_or_reason()
        if kube is None:
            return None, missing
        try:
            kube.server_version()
        except KubeError as exc:
            return None, Unavailable(exc.message, exc.hint or "check that the cluster is up", unreachable=True)
        return kube, None

    def helm(self) -> Helm:
        """The helm binary, pointed at the same kubeconfig and context."""
        with self._lock:
            if self._helm is None:
                from o11yctl.executors.helm import Helm

                self._helm = Helm(self.options.helm_path(), kubeconfig=self.options.kubeconfig,
                                  context=self.options.context)
            return self._helm

    def ssh(self) -> SshPool:
        """The SSH connections to the nodes (each host connected on first use)."""
        with self._lock:
            if self._ssh is None:
                from o11yctl.executors.ssh import SshOptions, SshPool

                self._ssh = SshPool(SshOptions.from_config(self.cfg,
                                                           accept_new_host_keys=self.options.accept_new_host_keys,
                                                           sudo_password=self.options.sudo_password))
            return self._ssh

    @property
    def opened_ssh(self) -> bool:
        return self._ssh is not None

    def close(self) -> None:
        """Close what was opened (SSH connections, the API's connection pool). Safe to call twice."""
        with self._lock:
            ssh, kube = self._ssh, self._kube
            self._ssh = self._kube = None
        if ssh is not None:
            ssh.close()
        if kube is not None:
            kube.close()

    def __enter__(self) -> Access:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
