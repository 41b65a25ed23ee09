"""S3 requests signed with AWS Signature Version 4: one probe of a bucket, with the keys in memory only.

The signature follows the S3 API Reference, "Signature Calculations for the Authorization
Header: Transferring Payload in a Single Chunk": the canonical request (method, the URI-encoded
path, the sorted and encoded query, the signed headers, the payload hash), the string to sign
with the time stamp and the credential scope ``<date>/<region>/s3/aws4_request``, and the
signing key derived from the secret key. Only ``ListObjectsV2`` with ``max-keys=1`` is sent:
unlike ``HeadBucket`` its errors carry S3's error code (``NoSuchBucket``, ``InvalidAccessKeyId``,
``SignatureDoesNotMatch``, ``AccessDenied``), which says what to fix.

The keys are :class:`~o11yctl.secrets.Secret` values: never in a message, a log or ``--json``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

from o11yctl.secrets import Secret

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_UNRESERVED = "-_.~"


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


def _encode(value: str, *, slash: bool) -> str:
    return quote(value, safe=_UNRESERVED + ("/" if slash else ""))


def sign(method: str, url: str, *, query: list[tuple[str, str]], access_key: str, secret_key: str, region: str,
         now: datetime, payload_hash: str = EMPTY_SHA256) -> dict[str, str]:
    """The headers that sign one request (``Host``, ``x-amz-date``, ``x-amz-content-sha256``, ``Authorization``).

    Args:
        method: the HTTP method.
        url: scheme, host, optional port and path (path-style: ``/bucket``); the query goes in ``query``.
        query: the query parameters, unencoded.
        access_key: the access key id.
        secret_key: the secret access key.
        region: the region signed for.
        now: the time stamp (UTC).
        payload_hash: the hex SHA-256 of the body.
    """
    parts = urlsplit(url)
    host = parts.netloc
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    canonical_query = "&".join(f"{_encode(k, slash=False)}={_encode(v, slash=False)}" for k, v in sorted(query))
    headers = {"host": host, "x-amz-content-sha256": payload_hash, "x-amz-date": amz_date}
    signed = ";".join(sorted(headers))
    canonical_headers = "".join(f"{k}:{headers[k].strip()}\n" for k in sorted(headers))
    canonical = "\n".join([method, _encode(parts.path or "/", slash=True), canonical_query, canonical_headers,
                           signed, payload_hash])
    scope = f"{day}/{region}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = _hmac(_hmac(_hmac(_hmac(f"AWS4{secret_key}".encode(), day), region), "s3"), "aws4_request")
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return {"Host": host, "x-amz-date": amz_date, "x-amz-content-sha256": payload_hash,
            "Authorization": f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, SignedHeaders={signed}, "
                             f"Signature={signature}"}


@dataclass(frozen=True, slots=True)
class BucketAnswer:
    """What the store said about one bucket: reachable and readable, or its error code and message."""

    bucket: str
    status: int | None  # None: no answer (``error`` says why)
    code: str = ""
    message: str = ""
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status == 200


def _error(body: str) -> tuple[str, str]:
    code = re.search(r"<Code>([^<]*)</Code>", body)
    message = re.search(r"<Message>([^<]*)</Message>", body)
    return (code.group(1) if code else "", message.group(1) if message else "")


def probe_bucket(endpoint: str, bucket: str, *, access_key: Secret, secret_key: Secret, region: str,
                 verify_tls: bool | str = True, timeout: float = 10.0, now: datetime | None = None) -> BucketAnswer:
    """List at most one key of ``bucket`` at ``endpoint`` (path-style), signed with the keys.

    Returns:
        The answer: 200 when the bucket exists and the keys may read it; else the S3 error
        code, or ``error`` when nothing answered (refused, timeout, TLS).
    """
    from o11yctl.executors.http import DirectTransport

    query = [("list-type", "2"), ("max-keys", "1")]
    url = f"{endpoint.rstrip('/')}/{bucket}"
    headers: dict[str, Any] = sign("GET", url, query=query, access_key=access_key.reveal(),
                                   secret_key=secret_key.reveal(), region=region, now=now or datetime.now(UTC))
    headers.pop("Host")  # httpx sends the URL's host, the one signed
    transport = DirectTransport(endpoint, verify_tls=verify_tls)
    try:
        resp = transport.request("GET", f"/{bucket}", timeout=timeout, params=query,
                                 headers={k: Secret(v) if k == "Authorization" else v for k, v in headers.items()})
    finally:
        transport.close()
    if resp.status is None:
        return BucketAnswer(bucket, None, error=resp.error or "no answer")
    if resp.status == 200:
        return BucketAnswer(bucket, 200)
    code, message = _error(resp.text)
    return BucketAnswer(bucket, resp.status, code, message)
