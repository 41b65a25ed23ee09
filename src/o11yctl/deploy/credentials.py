"""The object store's credentials (profile scalable): which keys the Secret holds, and where new ones come from.

For the in-cluster store o11yctl makes the keys up (the store takes its identities from the same
Secret); for an external store they come from ``$O11YCTL_S3_ACCESS_KEY_ID`` and
``$O11YCTL_S3_SECRET_ACCESS_KEY``, or from standard input (``--s3-keys-stdin``: :func:`with_keys`).
Either way they go straight into the Secret through the API: never into a rendered file, the plan,
``--json``, a log or a command line.
"""

from __future__ import annotations

import base64
import secrets
import string
from collections.abc import Mapping
from typing import Any

from o11yctl.config import Config
from o11yctl.errors import UsageError
from o11yctl.secrets import Secret
from o11yctl.stack.context import CREDENTIAL_KEYS, read_keys

__all__ = ["credentials_secret", "missing_source", "read_keys", "required_keys", "stdin_keys", "with_keys"]

ENV_ACCESS_KEY = "O11YCTL_S3_ACCESS_KEY_ID"
ENV_SECRET_KEY = "O11YCTL_S3_SECRET_ACCESS_KEY"


def required_keys(cfg: Config) -> tuple[str, ...]:
    """The keys the Secret must hold: both identities for the in-cluster store, one for an external one."""
    return CREDENTIAL_KEYS if cfg.object_storage.in_cluster else CREDENTIAL_KEYS[:2]


def missing_source(cfg: Config, env: Mapping[str, str]) -> str | None:
    """Why install could not make the Secret (an external store without the keys in the environment)."""
    if cfg.object_storage.in_cluster or (env.get(ENV_ACCESS_KEY) and env.get(ENV_SECRET_KEY)):
        return None
    return (f"Secret {cfg.cluster.namespace}/{cfg.object_storage.credentials_secret} does not exist and "
            f"${ENV_ACCESS_KEY} / ${ENV_SECRET_KEY} are not set")


#: Where keys given with --s3-keys-stdin are said to come from.
FROM_STDIN = "standard input"


def stdin_keys(text: str) -> tuple[Secret, Secret]:
    """The access key id and secret key from ``--s3-keys-stdin``: the first two lines.

    Raises:
        UsageError: fewer than two non-empty lines.
    """
    lines = [line.strip() for line in text.splitlines()[:2]]
    if len(lines) < 2 or not all(lines):
        raise UsageError("--s3-keys-stdin: expected two lines on standard input, the access key id and then the "
                         "secret key", hint="e.g. `printf '%s\\n%s\\n' \"$ID\" \"$KEY\" | o11yctl install "
                                            "--s3-keys-stdin`, or a vault's output")
    return Secret(lines[0]), Secret(lines[1])


def with_keys(env: Mapping[str, str], keys: tuple[Secret, Secret] | None) -> dict[str, str]:
    """The environment install reads the external store's keys from, with keys given on standard input in
    place of ``$O11YCTL_S3_*`` (kept in this process's memory only)."""
    out = dict(env)
    if keys is not None:
        out[ENV_ACCESS_KEY], out[ENV_SECRET_KEY] = keys[0].reveal(), keys[1].reveal()
    return out


def _generated(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def credentials_secret(cfg: Config, env: Mapping[str, str], origin: str | None = None) -> tuple[dict[str, Any], str]:
    """The Secret to create, and where its values came from (for the report).

    Raises:
        UsageError: an external store and the keys are not in the environment.
    """
    store = cfg.object_storage
    if store.in_cluster:
        upper = string.ascii_uppercase + string.digits
        values = {CREDENTIAL_KEYS[0]: _generated(upper, 20), CREDENTIAL_KEYS[1]: secrets.token_urlsafe(30),
                  CREDENTIAL_KEYS[2]: _generated(upper, 20), CREDENTIAL_KEYS[3]: secrets.token_urlsafe(30)}
        origin = "generated keys"
    else:
        problem = missing_source(cfg, env)
        if problem is not None:
            raise UsageError(problem, hint=f"export {ENV_ACCESS_KEY} and {ENV_SECRET_KEY} for this run (they go "
                                           "into the Secret and nowhere else), give them with --s3-keys-stdin, "
                                           "or create the Secret yourself")
        values = {CREDENTIAL_KEYS[0]: env[ENV_ACCESS_KEY], CREDENTIAL_KEYS[1]: env[ENV_SECRET_KEY]}
        origin = origin or f"${ENV_ACCESS_KEY} and ${ENV_SECRET_KEY}"
    manifest = {
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": store.credentials_secret, "namespace": cfg.cluster.namespace,
                     "labels": {"app.kubernetes.io/managed-by": "o11yctl"}},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in values.items()},
    }
    return manifest, origin
