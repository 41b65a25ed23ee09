"""A fake Amazon S3 server on loopback that speaks the S3 REST API closely enough for bucket checks.

Real S3 cannot be reached here, so this fake stands in for it: a real HTTP server
(``ThreadingHTTPServer`` on 127.0.0.1, or :attr:`FakeS3.host`, port 0) that the code under
test reaches through its normal HTTP client, with path-style addressing
(``http://host:port/bucket/key``) and, when :attr:`FakeS3.virtual_host_domain` is set,
virtual-hosted style (``Host: bucket.<domain>``). With :attr:`FakeS3.tls` set it answers
https only, with that certificate (a store whose certificate a private CA signed).

What it implements, and where each behaviour comes from (the Amazon S3 API Reference;
tests/data/s3/README.md names every page and section, and keeps the shapes as test data):

- AWS Signature Version 4 in the ``Authorization`` header, checked for real ("Signature
  Calculations for the Authorization Header: Transferring Payload in a Single Chunk"): the
  canonical request (method; canonical URI decoded from the wire once and URI-encoded once
  with ``/`` kept, as S3 does, without double encoding or path normalisation; canonical query
  string with names and values URI-encoded, then sorted; canonical headers of the signed
  headers, lowercase and trimmed; the signed header list; the hashed payload from
  ``x-amz-content-sha256``, including ``UNSIGNED-PAYLOAD``), the string to sign with the
  ``x-amz-date`` (or ``Date``) time stamp and the credential scope, the derived signing key,
  and a constant-time comparison. A time stamp more than 15 minutes away from :attr:`clock`
  is refused ("Time stamp requirement"), and a signed payload hash must match the body.
- Operations: ListBuckets (``GET /``), CreateBucket (``PUT /bucket``, with an optional
  ``CreateBucketConfiguration``), HeadBucket (``HEAD /bucket``), ListObjectsV2
  (``GET /bucket?list-type=2`` with ``prefix``, ``delimiter``, ``max-keys``,
  ``continuation-token``, ``start-after``, ``encoding-type=url`` and ``fetch-owner``),
  PutObject, GetObject (with a single byte ``Range``), HeadObject and DeleteObject. Response
  shapes follow each operation's "Response Syntax" and "Examples".
- Errors as the REST error response of the "Error responses" page: ``application/xml``
  ``<Error><Code/><Message/>...<RequestId/><HostId/></Error>``, with the code, status and
  message loaded from tests/data/s3/errors.json (copied from the page's "List of error
  codes"); a ``HEAD`` request gets the status code alone, no body (HeadBucket's reference).

It fails closed: a request for anything it does not implement (another operation or
subresource, presigned URLs, chunked ``STREAMING-*`` payloads, ``x-amz-copy-source``, an
unknown query parameter) is answered with the real ``NotImplemented`` error shape and is
recorded in :attr:`FakeS3.unexpected`, as is any request the fake itself failed on
(``InternalError``); :meth:`FakeS3.check_clean` raises ``AssertionError`` at teardown if
anything was. Every request is recorded in :attr:`FakeS3.requests`.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import hashlib
import hmac
import json
import re
import secrets
import socket
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote, unquote, unquote_to_bytes, urlsplit
from xml.etree import ElementTree as ET

DATA_DIR = Path(__file__).resolve().parents[1] / "data" / "s3"
ERRORS_FILE = DATA_DIR / "errors.json"

#: The namespace of every S3 response document.
S3_NAMESPACE = "http://s3.amazonaws.com/doc/2006-03-01/"
XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'
XML_TYPE = "application/xml"

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "s3"
TERMINATOR = "aws4_request"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
#: "the client timestamp included with an authenticated request must be within 15 minutes of the Amazon S3
#: system time when the request is received" (S3 User Guide, "Time stamp requirement").
MAX_SKEW = timedelta(minutes=15)

#: The example credentials of the AWS documentation; the fake accepts them unless told otherwise.
ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#: The owner ID of ListBuckets' documented example.
OWNER_ID = "AIDACKCEVSQ6C2EXAMPLE"
DEFAULT_CONTENT_TYPE = "binary/octet-stream"

_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_HEX_SHA256 = re.compile(r"[0-9a-f]{64}")
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_IP_ADDRESS = re.compile(r"\d+\.\d+\.\d+\.\d+")
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
_TOKEN_PREFIX = "fake-s3:"
#: Query parameters every operation tolerates: the AWS SDK for JavaScript v3 adds ``x-id=<Operation>``.
_ALWAYS_ALLOWED = frozenset({"x-id"})
_LIST_V2_PARAMS = frozenset({"list-type", "prefix", "delimiter", "max-keys", "continuation-token", "start-after",
                             "encoding-type", "fetch-owner"})


# --- Signature Version 4 -------------------------------------------------------------------------


def uri_encode(value: str | bytes, *, encode_slash: bool = True) -> str:
    """UriEncode() of the S3 SigV4 reference: every byte but ``A-Z a-z 0-9 - . _ ~`` as ``%XY`` (upper hex).

    ``/`` is kept only when ``encode_slash`` is false (the object key name in the canonical URI).
    """
    data = value.encode("utf-8") if isinstance(value, str) else value
    return "".join(chr(b) if b in _UNRESERVED or (b == 0x2F and not encode_slash) else f"%{b:02X}" for b in data)


def canonical_uri(raw_path: str) -> str:
    """The CanonicalURI of a request path as it came on the wire.

    S3 decodes the path once and encodes it once with ``/`` kept; unlike other services it does
    not encode twice and does not normalise ``.``, ``..`` or repeated slashes. An empty path is ``/``.
    """
    return uri_encode(unquote_to_bytes(raw_path) or b"/", encode_slash=False)


def canonical_query_string(raw_query: str) -> str:
    """The CanonicalQueryString: each name and value URI-encoded, sorted (after encoding), ``name=value``
    joined by ``&``; a parameter without a value (``?lifecycle``) gets an empty one (``lifecycle=``)."""
    pairs = []
    for part in raw_query.split("&"):
        if not part:
            continue
        name, _eq, value = part.partition("=")
        pairs.append((uri_encode(unquote_to_bytes(name)), uri_encode(unquote_to_bytes(value))))
    return "&".join(f"{name}={value}" for name, value in sorted(pairs))


def trimall(value: str) -> str:
    """Trim() of a header value: no leading or trailing whitespace, inner runs of whitespace as one space."""
    return " ".join(value.split())


def canonical_headers(values: Mapping[str, Sequence[str]], signed_headers: Sequence[str]) -> str:
    """The CanonicalHeaders: ``name:value\\n`` for each signed header, in the signed order.

    ``values`` maps lowercase header names to every value the request carried for that name; several
    values are joined with ``,``. A signed header the request lacks contributes an empty value (and so a
    signature that cannot match).
    """
    return "".join(f"{name}:{','.join(trimall(v) for v in values.get(name, ()))}\n" for name in signed_headers)


def canonical_request(method: str, uri: str, query: str, headers: str, signed_headers: str,
                      payload_hash: str) -> str:
    """``HTTPMethod\\nCanonicalURI\\nCanonicalQueryString\\nCanonicalHeaders\\nSignedHeaders\\nHashedPayload``."""
    return "\n".join([method, uri, query, headers, signed_headers, payload_hash])


def credential_scope(date: str, region: str, service: str = SERVICE) -> str:
    return f"{date}/{region}/{service}/{TERMINATOR}"


def string_to_sign(amz_date: str, scope: str, canonical: str) -> str:
    """``AWS4-HMAC-SHA256\\n<timestamp>\\n<scope>\\nHex(SHA256Hash(<CanonicalRequest>))``."""
    return "\n".join([ALGORITHM, amz_date, scope, hashlib.sha256(canonical.encode("utf-8")).hexdigest()])


def signing_key(secret_access_key: str, date: str, region: str, service: str = SERVICE) -> bytes:
    """HMAC-SHA256 chained over ``"AWS4" + secret``, the date, the Region, the service and ``aws4_request``."""
    key = ("AWS4" + secret_access_key).encode("utf-8")
    for part in (date, region, service, TERMINATOR):
        key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
    return key


def signature(key: bytes, to_sign: str) -> str:
    return hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


# --- errors -----------------------------------------------------------------------------------------


class ErrorCatalog:
    """The error codes, HTTP statuses and messages of tests/data/s3/errors.json."""

    def __init__(self, path: Path = ERRORS_FILE) -> None:
        self.entries: dict[str, dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))["errors"]

    def status(self, code: str) -> int:
        return int(self.entries[code]["status"])

    def message(self, code: str, reason: str | None = None) -> str:
        """The documented message of ``code``; for a code listed with several reasons, the one containing ``reason``."""
        entry = self.entries[code]
        if reason is None:
            return str(entry["message"])
        candidates = [*entry.get("reasons", ()), *(m["message"] for m in entry.get("observed_messages", ()))]
        matches = [c for c in candidates if reason in c]
        if len(matches) != 1:
            raise KeyError(f"{code}: {len(matches)} documented messages contain {reason!r}")
        return str(matches[0])


class S3Error(Exception):
    """An S3 error response: a code of errors.json, optionally one of its reasons, and extra elements."""

    def __init__(self, code: str, reason: str | None = None, **extra: str) -> None:
        super().__init__(code)
        self.code = code
        self.reason = reason
        self.extra = extra


# --- state --------------------------------------------------------------------------------------


@dataclass
class Request:
    """A request as the fake received it."""

    method: str
    #: The path as sent on the wire (percent-encoding kept), without the query.
    path: str
    #: Query parameters, percent-decoded (the last value of a repeated name).
    query: dict[str, str]
    #: Header names in lowercase; repeated headers joined with ``,``.
    headers: dict[str, str]
    body: bytes = b""
    raw_query: str = ""
    #: The S3 operation the fake took the request for ("" when it has none).
    operation: str = ""
    status: int = 0
    #: Why the request is in :attr:`FakeS3.unexpected`.
    problem: str = ""


@dataclass
class StoredObject:
    data: bytes
    last_modified: datetime
    content_type: str = DEFAULT_CONTENT_TYPE
    storage_class: str = "STANDARD"

    @property
    def etag(self) -> str:
        return f'"{hashlib.md5(self.data).hexdigest()}"'


@dataclass
class Bucket:
    name: str
    region: str
    created: datetime
    objects: dict[str, StoredObject] = field(default_factory=dict)


@dataclass
class _Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def iso_timestamp(value: datetime) -> str:
    """The XML timestamp form of S3 responses: ``2009-10-12T17:50:30.000Z``."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def valid_bucket_name(name: str) -> bool:
    """General purpose bucket naming rules: 3-63 of ``a-z 0-9 . -``, a letter or digit at both ends,
    no ``..`` and not an IP address."""
    return bool(_BUCKET_NAME.fullmatch(name)) and ".." not in name and not _IP_ADDRESS.fullmatch(name)


def _sub(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
    element = ET.SubElement(parent, tag)
    if text is not None:
        element.text = text
    return element


def _document(root: ET.Element) -> bytes:
    return (XML_DECLARATION + ET.tostring(root, encoding="unicode")).encode("utf-8")


def _root(tag: str) -> ET.Element:
    root = ET.Element(tag)
    root.set("xmlns", S3_NAMESPACE)
    return root


class _Unimplemented(Exception):
    """A request for something the fake does not do."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True


class _Server6(_Server):
    address_family = socket.AF_INET6


# --- the server -----------------------------------------------------------------------------------


class FakeS3:
    """A fake S3 endpoint: buckets and objects in memory, real SigV4 checks, real error shapes.

    Attributes:
        host: the address to listen on; set it before :meth:`start` to bind another address.
        region: the Region of the endpoint; credential scopes must name it and new buckets are in it.
        credentials: access key ID -> secret access key, the keys the endpoint knows.
        latency: seconds to wait before every answer.
        virtual_host_domain: when set (``s3.amazonaws.com``), a ``Host: <bucket>.<domain>`` names the bucket.
        tls: the certificate (chain) and key, PEM, to answer https with; set it before :meth:`start`.
        clock: the endpoint's time, for the 15-minute skew check (a test can pin it).
        requests: every request received; unexpected: the ones the fake does not implement or failed on.
    """

    def __init__(self, *, region: str = "us-east-1", credentials: Mapping[str, str] | None = None) -> None:
        self.host = "127.0.0.1"
        self.region = region
        self.credentials: dict[str, str] = (dict(credentials) if credentials is not None
                                            else {ACCESS_KEY_ID: SECRET_ACCESS_KEY})
        self.latency = 0.0
        self.virtual_host_domain: str | None = None
        self.tls: tuple[bytes, bytes] | None = None
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        self.requests: list[Request] = []
        self.unexpected: list[Request] = []
        self.buckets: dict[str, Bucket] = {}
        self.errors = ErrorCatalog()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- seeding and inspection --------------------------------------------------------------------

    def add_bucket(self, name: str, *, region: str | None = None) -> Bucket:
        """Create a bucket (in :attr:`region` unless told otherwise), as if it already existed."""
        if not valid_bucket_name(name):
            raise ValueError(f"not a valid bucket name: {name!r}")
        with self._lock:
            return self.buckets.setdefault(name, Bucket(name, region or self.region, self.clock()))

    def put_object(self, bucket: str, key: str, data: bytes | str, *,
                   content_type: str = DEFAULT_CONTENT_TYPE) -> StoredObject:
        """Store an object in an existing bucket, as if it had been uploaded."""
        payload = data.encode("utf-8") if isinstance(data, str) else data
        with self._lock:
            if bucket not in self.buckets:
                raise KeyError(f"no bucket {bucket!r}: add_bucket() first")
            stored = StoredObject(payload, self.clock(), content_type)
            self.buckets[bucket].objects[key] = stored
            return stored

    def object_data(self, bucket: str, key: str) -> bytes:
        with self._lock:
            return self.buckets[bucket].objects[key].data

    def check_clean(self) -> None:
        """Raise ``AssertionError`` if any request went to something the fake does not implement or failed on."""
        with self._lock:
            problems = list(self.unexpected)
        if problems:
            raise AssertionError("fake S3: unexpected requests:\n" + "\n".join(
                f"  {r.method} {r.path}{'?' + r.raw_query if r.raw_query else ''}: {r.problem}" for r in problems))

    assert_clean = check_clean

    # --- lifecycle ---------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        assert self._server is not None, "FakeS3 is not started"
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"

    def start(self) -> FakeS3:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def version_string(self) -> str:
                return "AmazonS3"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                fake._serve(self)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _handle

        server_class = _Server6 if ":" in self.host else _Server
        self._server = server_class((self.host, 0), Handler)
        if self.tls is not None:
            import ssl
            import tempfile

            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            with tempfile.TemporaryDirectory() as tmp:
                cert_file, key_file = Path(tmp, "tls.crt"), Path(tmp, "tls.key")
                cert_file.write_bytes(self.tls[0])
                key_file.write_bytes(self.tls[1])
                context.load_cert_chain(cert_file, key_file)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake S3 server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeS3:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # --- one request -------------------------------------------------------------------------------

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        split = urlsplit(handler.path)
        raw_path = split.path or "/"
        values: dict[str, list[str]] = {}
        for name, value in handler.headers.items():
            values.setdefault(name.lower(), []).append(value)
        request = Request(
            method=handler.command,
            path=raw_path,
            query={unquote(n): unquote(v) for n, _eq, v in (p.partition("=") for p in split.query.split("&") if p)},
            headers={name: ",".join(vs) for name, vs in values.items()},
            raw_query=split.query,
        )
        try:
            request.body = self._read_body(handler, request)
            response = self._dispatch(request, values)
        except S3Error as err:
            response = self._error(err, request)
        except Exception:
            self._record_unexpected(request, "the fake failed:\n" + traceback.format_exc())
            response = self._error(S3Error("InternalError"), request)
        request.status = response.status
        with self._lock:
            self.requests.append(request)
        if self.latency:
            time.sleep(self.latency)
        self._send(handler, request, response)

    def _read_body(self, handler: BaseHTTPRequestHandler, request: Request) -> bytes:
        length = handler.headers.get("Content-Length")
        if length is None:
            if "chunked" in (handler.headers.get("Transfer-Encoding") or "").lower():
                handler.close_connection = True
                raise S3Error("MissingContentLength")
            return b""
        try:
            size = int(length)
        except ValueError:
            handler.close_connection = True
            raise S3Error("InvalidArgument", "argument was not valid", ArgumentName="Content-Length",
                          ArgumentValue=length) from None
        return handler.rfile.read(size)

    def _send(self, handler: BaseHTTPRequestHandler, request: Request, response: _Response) -> None:
        handler.send_response(response.status)
        headers = {"x-amz-request-id": secrets.token_hex(8).upper(),
                   "x-amz-id-2": base64.b64encode(secrets.token_bytes(48)).decode("ascii"), **response.headers}
        if "Content-Length" not in headers:
            headers["Content-Length"] = str(len(response.body))
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        if request.method != "HEAD" and response.body:
            handler.wfile.write(response.body)

    def _error(self, err: S3Error, request: Request) -> _Response:
        status = self.errors.status(err.code)
        if request.method == "HEAD":
            return _Response(status)
        root = ET.Element("Error")
        _sub(root, "Code", err.code)
        _sub(root, "Message", self.errors.message(err.code, err.reason))
        for tag, text in err.extra.items():
            _sub(root, tag, text)
        _sub(root, "RequestId", secrets.token_hex(8).upper())
        _sub(root, "HostId", base64.b64encode(secrets.token_bytes(48)).decode("ascii"))
        return _Response(status, _document(root), {"Content-Type": XML_TYPE})

    def _record_unexpected(self, request: Request, problem: str) -> None:
        request.problem = problem
        with self._lock:
            if not any(r is request for r in self.unexpected):
                self.unexpected.append(request)

    def _unimplemented(self, request: Request, problem: str) -> S3Error:
        self._record_unexpected(request, problem)
        return S3Error("NotImplemented")

    # --- routing -----------------------------------------------------------------------------------

    def _address(self, request: Request) -> tuple[str | None, str]:
        """The bucket and key a request names (virtual-hosted style when the Host header says so)."""
        host = request.headers.get("host", "").lower()
        if not host.startswith("["):
            host = host.rsplit(":", 1)[0]
        domain = (self.virtual_host_domain or "").lower()
        if domain and host.endswith("." + domain):
            return host[: -len(domain) - 1], unquote(request.path[1:])
        bucket, _slash, key = request.path[1:].partition("/")
        return (unquote(bucket) or None), unquote(key)

    def _operation(self, request: Request, bucket: str | None, key: str) -> str | None:
        method, params = request.method, set(request.query) - _ALWAYS_ALLOWED
        if "x-amz-copy-source" in request.headers:
            return None
        if bucket is None:
            return "ListBuckets" if method == "GET" and not params else None
        if not key:
            if method == "GET" and request.query.get("list-type") == "2" and params <= _LIST_V2_PARAMS:
                return "ListObjectsV2"
            if not params:
                return {"HEAD": "HeadBucket", "PUT": "CreateBucket"}.get(method)
            return None
        if params:
            return None
        return {"GET": "GetObject", "HEAD": "HeadObject", "PUT": "PutObject", "DELETE": "DeleteObject"}.get(method)

    def _dispatch(self, request: Request, values: Mapping[str, Sequence[str]]) -> _Response:
        bucket, key = self._address(request)
        operation = self._operation(request, bucket, key)
        request.operation = operation or ""
        if operation is None:
            self._record_unexpected(request, "not an operation the fake implements")
        self._authenticate(request, values)
        if operation is None:
            raise S3Error("NotImplemented")
        handler: Callable[[Request, str | None, str], _Response] = getattr(self, "_op_" + operation)
        return handler(request, bucket, key)

    # --- authentication ----------------------------------------------------------------------------

    def _authenticate(self, request: Request, values: Mapping[str, Sequence[str]]) -> None:
        authorization = request.headers.get("authorization")
        if authorization is None:
            if {"x-amz-algorithm", "x-amz-signature", "x-amz-credential"} & {n.lower() for n in request.query}:
                raise self._unimplemented(request, "presigned URL (query string authentication)")
            raise S3Error("AccessDenied")
        if not authorization.startswith(ALGORITHM + " "):
            if authorization.startswith("AWS "):
                raise S3Error("InvalidRequest", "wrong signature version")
            raise S3Error("InvalidArgument", "incomplete or in the wrong format", ArgumentName="Authorization",
                          ArgumentValue=authorization)
        fields: dict[str, str] = {}
        for part in authorization[len(ALGORITHM) + 1:].split(","):
            name, eq, value = part.strip().partition("=")
            if eq:
                fields[name] = value
        if not {"Credential", "SignedHeaders", "Signature"} <= set(fields):
            raise S3Error("AuthorizationHeaderMalformed")
        scope = fields["Credential"].split("/")
        if len(scope) != 5 or scope[3] != SERVICE or scope[4] != TERMINATOR:
            raise S3Error("AuthorizationHeaderMalformed")
        access_key, date, region = scope[0], scope[1], scope[2]
        secret = self.credentials.get(access_key)
        if secret is None:
            raise S3Error("InvalidAccessKeyId", AWSAccessKeyId=access_key)

        amz_date, stamp = self._timestamp(request)
        now = self.clock()
        if abs(now - stamp) > MAX_SKEW:
            raise S3Error("RequestTimeTooSkewed", RequestTime=request.headers.get("x-amz-date")
                          or request.headers.get("date", ""), ServerTime=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                          MaxAllowedSkewMilliseconds=str(int(MAX_SKEW.total_seconds() * 1000)))
        if date != amz_date[:8]:
            raise S3Error("AuthorizationHeaderMalformed")
        if region != self.region:
            raise S3Error("AuthorizationHeaderMalformed", Region=self.region)

        payload_hash = request.headers.get("x-amz-content-sha256")
        if payload_hash is None:
            raise S3Error("InvalidRequest", "x-amz-content-sha256")
        if payload_hash.startswith("STREAMING-"):
            raise self._unimplemented(request, f"chunked upload ({payload_hash})")
        if payload_hash != UNSIGNED_PAYLOAD and not _HEX_SHA256.fullmatch(payload_hash):
            raise S3Error("InvalidArgument", "argument was not valid", ArgumentName="x-amz-content-sha256",
                          ArgumentValue=payload_hash)

        signed = fields["SignedHeaders"]
        canonical = canonical_request(request.method, canonical_uri(request.path),
                                      canonical_query_string(request.raw_query),
                                      canonical_headers(values, signed.split(";")), signed, payload_hash)
        to_sign = string_to_sign(amz_date, credential_scope(date, region), canonical)
        expected = signature(signing_key(secret, date, region), to_sign)
        if not hmac.compare_digest(expected, fields["Signature"]):
            raise S3Error("SignatureDoesNotMatch", AWSAccessKeyId=access_key, StringToSign=to_sign,
                          SignatureProvided=fields["Signature"],
                          StringToSignBytes=" ".join(f"{b:02x}" for b in to_sign.encode("utf-8")),
                          CanonicalRequest=canonical,
                          CanonicalRequestBytes=" ".join(f"{b:02x}" for b in canonical.encode("utf-8")))
        computed = hashlib.sha256(request.body).hexdigest()
        if payload_hash != UNSIGNED_PAYLOAD and payload_hash != computed:
            raise S3Error("XAmzContentSHA256Mismatch", ClientComputedContentSHA256=payload_hash,
                          S3ComputedContentSHA256=computed)

    def _timestamp(self, request: Request) -> tuple[str, datetime]:
        """The request time stamp: ``x-amz-date`` (ISO 8601 basic), else the HTTP ``Date`` header."""
        amz_date = request.headers.get("x-amz-date")
        try:
            if amz_date is not None:
                return amz_date, datetime.strptime(amz_date, AMZ_DATE_FORMAT).replace(tzinfo=UTC)
            date = request.headers.get("date")
            if date is not None:
                stamp = email.utils.parsedate_to_datetime(date).astimezone(UTC)
                return stamp.strftime(AMZ_DATE_FORMAT), stamp
        except (ValueError, TypeError):
            pass
        raise S3Error("AccessDenied")

    # --- operations --------------------------------------------------------------------------------

    def _bucket(self, name: str | None) -> Bucket:
        with self._lock:
            bucket = self.buckets.get(name or "")
        if bucket is None:
            raise S3Error("NoSuchBucket", BucketName=name or "")
        return bucket

    def _op_ListBuckets(self, request: Request, _bucket: str | None, _key: str) -> _Response:
        root = _root("ListAllMyBucketsResult")
        buckets = _sub(root, "Buckets")
        with self._lock:
            listed = sorted(self.buckets.values(), key=lambda b: b.name)
        for bucket in listed:
            entry = _sub(buckets, "Bucket")
            _sub(entry, "BucketRegion", bucket.region)
            _sub(entry, "CreationDate", iso_timestamp(bucket.created))
            _sub(entry, "Name", bucket.name)
        _sub(_sub(root, "Owner"), "ID", OWNER_ID)
        return _Response(200, _document(root), {"Content-Type": XML_TYPE})

    def _op_HeadBucket(self, request: Request, name: str | None, _key: str) -> _Response:
        bucket = self._bucket(name)
        return _Response(200, headers={"x-amz-bucket-region": bucket.region, "x-amz-access-point-alias": "false"})

    def _op_CreateBucket(self, request: Request, name: str | None, _key: str) -> _Response:
        name = name or ""
        if not valid_bucket_name(name):
            raise S3Error("InvalidBucketName", BucketName=name)
        location = "us-east-1"
        if request.body.strip():
            try:
                config = ET.fromstring(request.body)
            except ET.ParseError:
                raise S3Error("MalformedXML") from None
            constraint = next((e.text for e in config.iter() if e.tag.rsplit("}", 1)[-1] == "LocationConstraint"),
                              None)
            location = {"EU": "eu-west-1"}.get(constraint or "", constraint or "us-east-1")
        if location != self.region:
            raise S3Error("IllegalLocationConstraintException", "location constraint that corresponds")
        with self._lock:
            exists = name in self.buckets
            if not exists:
                self.buckets[name] = Bucket(name, location, self.clock())
        if exists and self.region != "us-east-1":
            raise S3Error("BucketAlreadyOwnedByYou", BucketName=name)
        return _Response(200, headers={"Location": f"/{name}"})

    def _op_ListObjectsV2(self, request: Request, name: str | None, _key: str) -> _Response:
        bucket = self._bucket(name)
        query = request.query
        prefix, delimiter = query.get("prefix", ""), query.get("delimiter", "")
        max_keys = self._max_keys(query.get("max-keys"))
        encoding = query.get("encoding-type")
        if encoding not in (None, "url"):
            raise S3Error("InvalidArgument", "argument was not valid", ArgumentName="encoding-type",
                          ArgumentValue=encoding or "")
        token = query.get("continuation-token")
        after, after_prefix = (self._decode_token(token) if token is not None
                               else (query.get("start-after", ""), False))

        def enc(value: str) -> str:
            return quote(value, safe="/") if encoding == "url" else value

        with self._lock:
            objects = dict(bucket.objects)
        entries: list[tuple[str, str]] = []
        seen: set[str] = set()
        truncated = False
        for key in sorted(k for k in objects if k.startswith(prefix)):
            if key <= after or (after_prefix and key.startswith(after)):
                continue
            item = ("Contents", key)
            cut = key.find(delimiter, len(prefix)) if delimiter else -1
            if cut >= 0:
                item = ("CommonPrefixes", key[: cut + len(delimiter)])
                if item[1] in seen:
                    continue
            if len(entries) >= max_keys:
                truncated = max_keys > 0
                break
            seen.add(item[1])
            entries.append(item)

        root = _root("ListBucketResult")
        _sub(root, "Name", bucket.name)
        _sub(root, "Prefix", enc(prefix))
        if token is None and "start-after" in query:
            _sub(root, "StartAfter", enc(query["start-after"]))
        if token is not None:
            _sub(root, "ContinuationToken", token)
        if truncated:
            kind, last = entries[-1]
            _sub(root, "NextContinuationToken", self._encode_token(last, kind == "CommonPrefixes"))
        _sub(root, "KeyCount", str(len(entries)))
        _sub(root, "MaxKeys", str(max_keys))
        if delimiter:
            _sub(root, "Delimiter", enc(delimiter))
        if encoding:
            _sub(root, "EncodingType", encoding)
        _sub(root, "IsTruncated", "true" if truncated else "false")
        for kind, value in entries:
            if kind != "Contents":
                continue
            stored = objects[value]
            contents = _sub(root, "Contents")
            _sub(contents, "Key", enc(value))
            _sub(contents, "LastModified", iso_timestamp(stored.last_modified))
            _sub(contents, "ETag", stored.etag)
            _sub(contents, "Size", str(len(stored.data)))
            _sub(contents, "StorageClass", stored.storage_class)
            if query.get("fetch-owner") == "true":
                _sub(_sub(contents, "Owner"), "ID", OWNER_ID)
        for kind, value in entries:
            if kind == "CommonPrefixes":
                _sub(_sub(root, "CommonPrefixes"), "Prefix", enc(value))
        return _Response(200, _document(root), {"Content-Type": XML_TYPE})

    @staticmethod
    def _max_keys(raw: str | None) -> int:
        if raw is None:
            return 1000
        if not raw.isdigit():
            raise S3Error("InvalidArgument", "argument was not valid", ArgumentName="max-keys", ArgumentValue=raw)
        return min(int(raw), 1000)

    @staticmethod
    def _encode_token(last: str, is_prefix: bool) -> str:
        return base64.b64encode(f"{_TOKEN_PREFIX}{'P' if is_prefix else 'K'}{last}".encode()).decode("ascii")

    @staticmethod
    def _decode_token(token: str) -> tuple[str, bool]:
        try:
            text = base64.b64decode(token, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            text = ""
        if not text.startswith(_TOKEN_PREFIX) or text[len(_TOKEN_PREFIX):][:1] not in ("K", "P"):
            raise S3Error("InvalidArgument", "argument was not valid", ArgumentName="continuation-token",
                          ArgumentValue=token)
        rest = text[len(_TOKEN_PREFIX):]
        return rest[1:], rest[0] == "P"

    def _stored(self, name: str | None, key: str) -> StoredObject:
        bucket = self._bucket(name)
        with self._lock:
            stored = bucket.objects.get(key)
        if stored is None:
            raise S3Error("NoSuchKey", Key=key)
        return stored

    def _object_headers(self, stored: StoredObject) -> dict[str, str]:
        return {"Content-Type": stored.content_type, "ETag": stored.etag, "Accept-Ranges": "bytes",
                "Last-Modified": email.utils.format_datetime(stored.last_modified.astimezone(UTC), usegmt=True)}

    def _op_GetObject(self, request: Request, name: str | None, key: str) -> _Response:
        stored = self._stored(name, key)
        headers = self._object_headers(stored)
        size = len(stored.data)
        match = _RANGE.fullmatch(request.headers.get("range", "").strip())
        if match is None or match.groups() == ("", ""):
            return _Response(200, stored.data, headers)
        first, last = match.groups()
        if first:
            start, end = int(first), min(int(last), size - 1) if last else size - 1
        else:
            start, end = max(size - int(last), 0), size - 1
        if start >= size or start > end:
            raise S3Error("InvalidRange", RangeRequested=request.headers["range"], ActualObjectSize=str(size))
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        return _Response(206, stored.data[start: end + 1], headers)

    def _op_HeadObject(self, request: Request, name: str | None, key: str) -> _Response:
        stored = self._stored(name, key)
        return _Response(200, headers={**self._object_headers(stored), "Content-Length": str(len(stored.data))})

    def _op_PutObject(self, request: Request, name: str | None, key: str) -> _Response:
        bucket = self._bucket(name)
        md5 = request.headers.get("content-md5")
        if md5 is not None:
            try:
                digest = base64.b64decode(md5, validate=True)
            except binascii.Error:
                raise S3Error("InvalidDigest", **{"Content-MD5": md5}) from None
            if len(digest) != 16:
                raise S3Error("InvalidDigest", **{"Content-MD5": md5})
            if digest != hashlib.md5(request.body).digest():
                raise S3Error("BadDigest", ExpectedDigest=digest.hex(),
                              CalculatedDigest=hashlib.md5(request.body).hexdigest())
        stored = StoredObject(request.body, self.clock(), request.headers.get("content-type", DEFAULT_CONTENT_TYPE),
                              request.headers.get("x-amz-storage-class", "STANDARD"))
        with self._lock:
            bucket.objects[key] = stored
        return _Response(200, headers={"ETag": stored.etag})

    def _op_DeleteObject(self, request: Request, name: str | None, key: str) -> _Response:
        bucket = self._bucket(name)
        with self._lock:
            bucket.objects.pop(key, None)
        return _Response(204)
