"""The fake S3 endpoint (tests/lab/fake_s3.py) answers as the Amazon S3 API Reference documents.

These test the lab itself. The SigV4 signer below is written here from the algorithm of the
reference page "Signature Calculations for the Authorization Header: Transferring Payload in a
Single Chunk", independently of the fake's verifier, and both are held to that page's worked
examples (tests/data/s3/sigv4-examples.json) down to the last hex digit. Requests go over real
HTTP to the fake on loopback through ``http.client``; expected error codes, statuses and
messages come from tests/data/s3/errors.json, and response shapes are compared with the
documented response syntax and examples kept beside it. Nothing of the fake is monkeypatched;
its clock is pinned where a test needs a fixed time, as its API allows.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote
from xml.etree import ElementTree as ET

import pytest
from tests.lab import fake_s3
from tests.lab.fake_s3 import ACCESS_KEY_ID, S3_NAMESPACE, SECRET_ACCESS_KEY, FakeS3

DATA = Path(__file__).resolve().parents[1] / "data" / "s3"
ERRORS: dict[str, dict[str, Any]] = json.loads((DATA / "errors.json").read_text())["errors"]
SIGV4: dict[str, Any] = json.loads((DATA / "sigv4-examples.json").read_text())
EXAMPLES: list[dict[str, Any]] = SIGV4["examples"]
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
DOC_TIME = datetime(2013, 5, 24, tzinfo=UTC)


# --- a SigV4 signer written from the documentation -----------------------------------------------


@dataclass(frozen=True)
class Signed:
    canonical_request: str
    string_to_sign: str
    signature: str
    authorization: str
    #: The request target to send: the canonical URI, and the canonical query string if any.
    target: str


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()


def sign(method: str, path: str, query: Sequence[tuple[str, str]], headers: Mapping[str, str], *,
         access_key: str, secret: str, region: str, amz_date: str) -> Signed:
    """Sign every header in ``headers`` the way the S3 SigV4 page lays out the calculation.

    CanonicalURI: UriEncode(absolute path) with "/" not encoded (path and query given unencoded);
    CanonicalQueryString: UriEncode(name) "=" UriEncode(value), sorted by name, joined by "&";
    CanonicalHeaders: Lowercase(name) ":" Trim(value) "\\n", sorted; HashedPayload: the value of
    x-amz-content-sha256; StringToSign: "AWS4-HMAC-SHA256\\n" timestamp "\\n" scope "\\n"
    Hex(SHA256Hash(CanonicalRequest)); signing key: HMAC-SHA256 of "AWS4"+secret over date,
    Region, "s3", "aws4_request".
    """
    uri = quote(path, safe="/") or "/"
    canonical_query = "&".join(f"{n}={v}" for n, v in sorted((quote(n, safe=""), quote(v, safe="")) for n, v in query))
    lowered = {name.lower(): value for name, value in headers.items()}
    names = sorted(lowered)
    canonical_headers = "".join(f"{name}:{lowered[name].strip()}\n" for name in names)
    signed_headers = ";".join(names)
    canonical = "\n".join([method, uri, canonical_query, canonical_headers, signed_headers,
                           lowered["x-amz-content-sha256"]])
    scope = f"{amz_date[:8]}/{region}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = _hmac(_hmac(_hmac(_hmac(("AWS4" + secret).encode(), amz_date[:8]), region), "s3"), "aws4_request")
    sig = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    authorization = f"AWS4-HMAC-SHA256 Credential={access_key}/{scope},SignedHeaders={signed_headers},Signature={sig}"
    return Signed(canonical, to_sign, sig, authorization, uri + (f"?{canonical_query}" if query else ""))


# --- an HTTP client ------------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def xml(self) -> ET.Element:
        return ET.fromstring(self.body)

    def error(self) -> dict[str, str]:
        root = self.xml()
        assert root.tag == "Error", self.body
        return {local(child.tag): child.text or "" for child in root}


def local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def send(fake: FakeS3, method: str, target: str, headers: Mapping[str, str], body: bytes = b"") -> Reply:
    """Send exactly these headers (no Host or Accept-Encoding added), plus Content-Length for a body."""
    conn = http.client.HTTPConnection(fake.host, fake.port, timeout=10)
    try:
        conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        for name, value in headers.items():
            conn.putheader(name, value)
        if body or method in ("PUT", "POST"):
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body or None)
        response = conn.getresponse()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        conn.close()


def call(fake: FakeS3, method: str, path: str, query: Sequence[tuple[str, str]] = (), *, body: bytes = b"",
         headers: Mapping[str, str] | None = None, access_key: str = ACCESS_KEY_ID,
         secret: str = SECRET_ACCESS_KEY, region: str = "us-east-1", when: datetime | None = None,
         payload_hash: str | None = None) -> Reply:
    """A signed request, path-style, for an unencoded ``path`` and ``query``."""
    amz_date = (when or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    all_headers = {"Host": f"{fake.host}:{fake.port}", "x-amz-date": amz_date,
                   "x-amz-content-sha256": payload_hash or hashlib.sha256(body).hexdigest(), **(headers or {})}
    signed = sign(method, path, query, all_headers, access_key=access_key, secret=secret, region=region,
                  amz_date=amz_date)
    return send(fake, method, signed.target, {**all_headers, "Authorization": signed.authorization}, body)


def expect_error(reply: Reply, code: str) -> dict[str, str]:
    """The reply is the REST error response of ``code``: its status, application/xml, and its message."""
    assert reply.status == ERRORS[code]["status"], (reply.status, reply.body)
    assert reply.headers["content-type"] == "application/xml"
    error = reply.error()
    assert error["Code"] == code
    assert error["Message"] == (ERRORS[code].get("message") or error["Message"])
    assert re.fullmatch(r"[0-9A-F]{16}", error["RequestId"])
    return error


@pytest.fixture
def s3() -> Iterator[FakeS3]:
    fake = FakeS3().start()
    try:
        yield fake
    finally:
        fake.stop()
    fake.check_clean()


# --- the documented signature examples -----------------------------------------------------------


@pytest.mark.parametrize("example", EXAMPLES, ids=[e["name"] for e in EXAMPLES])
def test_the_signer_here_reproduces_the_documented_example(example: dict[str, Any]) -> None:
    request = example["request"]
    query = [(n, v) for n, _eq, v in (p.partition("=") for p in request["query"].split("&") if p)]
    signed = sign(request["method"], request["path"], query, dict(request["headers"]),
                  access_key=SIGV4["access_key_id"], secret=SIGV4["secret_access_key"], region=SIGV4["region"],
                  amz_date=SIGV4["amz_date"])
    assert signed.canonical_request == example["canonical_request"]
    assert signed.string_to_sign == example["string_to_sign"]
    assert signed.signature == example["signature"]
    assert signed.authorization == example["authorization"]


@pytest.mark.parametrize("example", EXAMPLES, ids=[e["name"] for e in EXAMPLES])
def test_the_fakes_verifier_reproduces_the_documented_example(example: dict[str, Any]) -> None:
    request = example["request"]
    values = {name.lower(): [value] for name, value in request["headers"]}
    signed = example["signed_headers"]
    canonical = fake_s3.canonical_request(
        request["method"], fake_s3.canonical_uri(request["path"]), fake_s3.canonical_query_string(request["query"]),
        fake_s3.canonical_headers(values, signed.split(";")), signed, values["x-amz-content-sha256"][0])
    assert canonical == example["canonical_request"]
    to_sign = fake_s3.string_to_sign(SIGV4["amz_date"], fake_s3.credential_scope("20130524", "us-east-1"), canonical)
    assert to_sign == example["string_to_sign"]
    key = fake_s3.signing_key(SIGV4["secret_access_key"], "20130524", "us-east-1")
    assert fake_s3.signature(key, to_sign) == example["signature"]


def test_the_fake_accepts_the_documented_requests_as_written() -> None:
    """The four documented requests, sent with the page's own headers and Authorization values."""
    fake = FakeS3(credentials={SIGV4["access_key_id"]: SIGV4["secret_access_key"]})
    fake.virtual_host_domain = "s3.amazonaws.com"
    fake.clock = lambda: DOC_TIME
    fake.add_bucket("examplebucket")
    fake.put_object("examplebucket", "test.txt", b"0123456789 and the rest of test.txt")
    with fake:
        replies = {}
        for example in EXAMPLES:
            request = example["request"]
            target = request["path"] + (f"?{request['query']}" if request["query"] else "")
            headers = {**dict(request["headers"]), "Authorization": example["authorization"]}
            replies[example["name"]] = send(fake, request["method"], target, headers, request["payload"].encode())

        get = replies["GET Object"]
        assert (get.status, get.body, get.headers["content-range"]) == (206, b"0123456789", "bytes 0-9/35")
        assert replies["PUT Object"].status == 200
        assert fake.object_data("examplebucket", "test$file.text") == b"Welcome to Amazon S3."
        assert replies["PUT Object"].headers["etag"] == f'"{hashlib.md5(b"Welcome to Amazon S3.").hexdigest()}"'
        # Signed correctly, but operations the fake does not implement: NotImplemented, and recorded.
        for name in ("GET Bucket Lifecycle", "Get Bucket (List Objects)"):
            expect_error(replies[name], "NotImplemented")
        assert [(r.method, r.raw_query) for r in fake.unexpected] == [
            ("GET", "lifecycle"), ("GET", "max-keys=2&prefix=J")]
        with pytest.raises(AssertionError, match=r"GET /\?lifecycle"):
            fake.check_clean()
        fake.unexpected.clear()

        fake.clock = lambda: DOC_TIME + timedelta(minutes=16)
        documented = EXAMPLES[0]
        late = send(fake, "GET", "/test.txt",
                    {**dict(documented["request"]["headers"]), "Authorization": documented["authorization"]})
        error = expect_error(late, "RequestTimeTooSkewed")
        assert error["MaxAllowedSkewMilliseconds"] == "900000"
        fake.check_clean()


def test_uri_encoding_follows_the_documented_rules() -> None:
    assert fake_s3.uri_encode("a b+c/d~e_f.g-h*é") == "a%20b%2Bc%2Fd~e_f.g-h%2A%C3%A9"
    assert fake_s3.uri_encode("photos/2006/a b.jpg", encode_slash=False) == "photos/2006/a%20b.jpg"
    # The path is decoded once from the wire and encoded once; S3 does not normalise it.
    assert fake_s3.canonical_uri("/bucket/my%20file$.txt") == "/bucket/my%20file%24.txt"
    assert fake_s3.canonical_uri("/bucket/a//../b") == "/bucket/a//../b"
    assert fake_s3.canonical_uri("") == "/"
    assert fake_s3.canonical_query_string("prefix=a%20b&list-type=2&acl") == "acl=&list-type=2&prefix=a%20b"


# --- authentication ------------------------------------------------------------------------------


def test_a_good_signature_heads_the_bucket(s3: FakeS3) -> None:
    s3.add_bucket("logs")
    reply = call(s3, "HEAD", "/logs")
    assert (reply.status, reply.body) == (200, b"")
    assert reply.headers["x-amz-bucket-region"] == "us-east-1"
    request = s3.requests[-1]
    assert (request.method, request.path, request.query, request.operation) == ("HEAD", "/logs", {}, "HeadBucket")
    assert request.headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/")


def test_a_wrong_secret_is_signature_does_not_match(s3: FakeS3) -> None:
    s3.add_bucket("logs")
    reply = call(s3, "GET", "/logs", [("list-type", "2")], secret="not-the-secret")
    error = expect_error(reply, "SignatureDoesNotMatch")
    assert error["Message"].startswith("The request signature that the server calculated does not match")
    # The server's canonical request and string to sign are the ones this signer computed.
    sent = s3.requests[-1].headers
    amz_date = sent["x-amz-date"]
    mine = sign("GET", "/logs", [("list-type", "2")],
                {k: v for k, v in sent.items() if k in ("host", "x-amz-date", "x-amz-content-sha256")},
                access_key=ACCESS_KEY_ID, secret="not-the-secret", region="us-east-1", amz_date=amz_date)
    assert error["CanonicalRequest"] == mine.canonical_request
    assert error["StringToSign"] == mine.string_to_sign
    assert error["SignatureProvided"] == mine.signature
    assert error["AWSAccessKeyId"] == ACCESS_KEY_ID

    head = call(s3, "HEAD", "/logs", secret="not-the-secret")
    assert (head.status, head.body) == (403, b"")


def test_an_unknown_access_key_is_invalid_access_key_id(s3: FakeS3) -> None:
    s3.add_bucket("logs")
    error = expect_error(call(s3, "GET", "/logs", [("list-type", "2")], access_key="AKIANOTKNOWNEXAMPLE"),
                         "InvalidAccessKeyId")
    assert error["AWSAccessKeyId"] == "AKIANOTKNOWNEXAMPLE"


def test_an_unsigned_request_is_access_denied(s3: FakeS3) -> None:
    s3.add_bucket("logs")
    reply = send(s3, "GET", "/logs?list-type=2", {"Host": f"127.0.0.1:{s3.port}"})
    assert expect_error(reply, "AccessDenied")["Message"] == "Access Denied"
    head = send(s3, "HEAD", "/logs", {"Host": f"127.0.0.1:{s3.port}"})
    assert (head.status, head.body) == (403, b"")


@pytest.mark.parametrize("offset, status", [
    (timedelta(minutes=-16), 403), (timedelta(minutes=16), 403), (timedelta(minutes=-14), 200),
    (timedelta(minutes=14), 200),
])
def test_a_clock_more_than_15_minutes_off_is_request_time_too_skewed(s3: FakeS3, offset: timedelta,
                                                                      status: int) -> None:
    now = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    s3.clock = lambda: now
    s3.add_bucket("logs")
    reply = call(s3, "HEAD", "/logs", when=now + offset)
    assert reply.status == status
    if status == 403:
        error = expect_error(call(s3, "GET", "/logs", [("list-type", "2")], when=now + offset),
                             "RequestTimeTooSkewed")
        assert error["RequestTime"] == (now + offset).strftime("%Y%m%dT%H%M%SZ")
        assert error["ServerTime"] == "2025-01-02T03:04:05Z"


def test_a_scope_for_another_region_is_authorization_header_malformed(s3: FakeS3) -> None:
    s3.add_bucket("logs")
    error = expect_error(call(s3, "GET", "/logs", [("list-type", "2")], region="eu-west-1"),
                         "AuthorizationHeaderMalformed")
    assert error["Region"] == "us-east-1"


def test_other_authorization_faults(s3: FakeS3) -> None:
    s3.add_bucket("logs")
    host = {"Host": f"127.0.0.1:{s3.port}"}
    v2 = send(s3, "GET", "/logs?list-type=2", {**host, "Authorization": "AWS AKIAIOSFODNN7EXAMPLE:c2lnbmF0dXJl"})
    error = expect_error(v2, "InvalidRequest")
    assert error["Message"] == ("The request is using the wrong signature version. "
                                "Use AWS4-HMAC-SHA256 (Signature Version 4).")

    amz_date = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    headers = {**host, "x-amz-date": amz_date}
    scope = f"{amz_date[:8]}/us-east-1/s3/aws4_request"
    no_hash = send(s3, "GET", "/logs?list-type=2", {**headers, "Authorization": (
        f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY_ID}/{scope},SignedHeaders=host;x-amz-date,Signature={'0' * 64}")})
    error = expect_error(no_hash, "InvalidRequest")
    assert error["Message"] == "Missing required header for this request: x-amz-content-sha256"

    malformed = send(s3, "GET", "/logs?list-type=2", {**headers, "Authorization": "AWS4-HMAC-SHA256 Credential=x"})
    expect_error(malformed, "AuthorizationHeaderMalformed")


# --- operations ----------------------------------------------------------------------------------


def test_a_missing_bucket_is_no_such_bucket(s3: FakeS3) -> None:
    error = expect_error(call(s3, "GET", "/absent", [("list-type", "2")]), "NoSuchBucket")
    assert error["BucketName"] == "absent"
    head = call(s3, "HEAD", "/absent")
    assert (head.status, head.body) == (404, b"")
    assert head.headers["content-length"] == "0"


def test_error_responses_have_the_documented_shape(s3: FakeS3) -> None:
    documented = [local(child.tag) for child in ET.parse(DATA / "error-response.xml").getroot()]
    reply = call(s3, "GET", "/absent/key")
    assert reply.body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<Error>')
    ours = [local(child.tag) for child in reply.xml()]
    assert ours[:2] == documented[:2] == ["Code", "Message"]
    assert "RequestId" in ours and "RequestId" in documented
    assert reply.headers["x-amz-request-id"] and reply.headers["x-amz-id-2"]


def _shape(element: ET.Element) -> dict[str, Any]:
    """Element names as a tree: {child name: its own tree}, merged over repeated children."""
    tree: dict[str, Any] = {}
    for child in element:
        tree.setdefault(local(child.tag), {}).update(_shape(child))
    return tree


def _within(ours: dict[str, Any], documented: dict[str, Any], where: str = "") -> None:
    for name, children in ours.items():
        assert name in documented, f"{where}/{name} is not in the documented response syntax"
        _within(children, documented[name], f"{where}/{name}")


def test_list_objects_v2_has_the_documented_fields(s3: FakeS3) -> None:
    s3.add_bucket("logs")
    s3.put_object("logs", "app/2025/a.log", b"alpha")
    s3.put_object("logs", "app/2025/b.log", b"bravo!")
    s3.put_object("logs", "other.txt", b"x")
    reply = call(s3, "GET", "/logs", [("list-type", "2"), ("prefix", "app/")])
    assert (reply.status, reply.headers["content-type"]) == (200, "application/xml")
    root = reply.xml()
    assert root.tag == f"{{{S3_NAMESPACE}}}ListBucketResult"
    syntax = ET.parse(DATA / "list-objects-v2-response-syntax.xml").getroot()
    _within(_shape(root), _shape(syntax), "ListBucketResult")

    ns = {"s3": S3_NAMESPACE}
    assert root.findtext("s3:Name", namespaces=ns) == "logs"
    assert root.findtext("s3:Prefix", namespaces=ns) == "app/"
    assert root.findtext("s3:KeyCount", namespaces=ns) == "2"
    assert root.findtext("s3:MaxKeys", namespaces=ns) == "1000"
    assert root.findtext("s3:IsTruncated", namespaces=ns) == "false"
    contents = root.findall("s3:Contents", ns)
    assert [c.findtext("s3:Key", namespaces=ns) for c in contents] == ["app/2025/a.log", "app/2025/b.log"]
    first = contents[0]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", first.findtext("s3:LastModified", "", ns))
    assert first.findtext("s3:ETag", namespaces=ns) == f'"{hashlib.md5(b"alpha").hexdigest()}"'
    assert first.findtext("s3:Size", namespaces=ns) == "5"
    assert first.findtext("s3:StorageClass", namespaces=ns) == "STANDARD"
    # The same elements, in the same order, as the documented "Listing keys" example.
    documented = ET.parse(DATA / "list-objects-v2-example-listing-keys.xml").getroot()
    assert [local(e.tag) for e in root][:5] == [local(e.tag) for e in documented][:5]
    assert [local(e.tag) for e in first] == [local(e.tag) for e in documented.find("s3:Contents", ns) or []]


def test_list_objects_v2_pages_with_continuation_tokens(s3: FakeS3) -> None:
    s3.add_bucket("logs")
    keys = [f"k{i}" for i in range(5)]
    for key in keys:
        s3.put_object("logs", key, key)
    ns = {"s3": S3_NAMESPACE}
    seen: list[str] = []
    token: str | None = None
    pages = 0
    while True:
        query = [("list-type", "2"), ("max-keys", "2")] + ([("continuation-token", token)] if token else [])
        root = call(s3, "GET", "/logs", query).xml()
        pages += 1
        seen += [c.findtext("s3:Key", "", ns) for c in root.findall("s3:Contents", ns)]
        assert root.findtext("s3:ContinuationToken", namespaces=ns) == token
        assert root.findtext("s3:MaxKeys", namespaces=ns) == "2"
        token = root.findtext("s3:NextContinuationToken", namespaces=ns)
        truncated = root.findtext("s3:IsTruncated", namespaces=ns)
        assert truncated == ("true" if token else "false")
        if token is None:
            break
    assert (seen, pages) == (keys, 3)
    error = expect_error(call(s3, "GET", "/logs", [("list-type", "2"), ("continuation-token", "bogus")]),
                         "InvalidArgument")
    assert error["ArgumentName"] == "continuation-token"


@pytest.mark.parametrize("example, bucket, keys, query", [
    ("list-objects-v2-example-delimiter.xml", "example-bucket",
     ["sample.jpg", "photos/2006/January/sample.jpg", "photos/2006/February/sample2.jpg",
      "photos/2006/February/sample3.jpg", "photos/2006/February/sample4.jpg"], [("delimiter", "/")]),
    ("list-objects-v2-example-prefix-delimiter.xml", "example-bucket",
     ["sample.jpg", "photos/2006/January/sample.jpg", "photos/2006/February/sample2.jpg",
      "photos/2006/February/sample3.jpg", "photos/2006/February/sample4.jpg"],
     [("prefix", "photos/2006/"), ("delimiter", "/")]),
    ("list-objects-v2-example-start-after.xml", "quotes",
     ["Anthology.txt", "ExampleGuide.pdf", "ExampleObject.txt", "Zebra.txt"],
     [("max-keys", "3"), ("prefix", "E"), ("start-after", "ExampleGuide.pdf")]),
])
def test_list_objects_v2_reproduces_the_documented_examples(s3: FakeS3, example: str, bucket: str,
                                                            keys: list[str], query: list[tuple[str, str]]) -> None:
    s3.add_bucket(bucket)
    for key in keys:
        s3.put_object(bucket, key, b"data")
    ours = call(s3, "GET", f"/{bucket}", [("list-type", "2"), *query]).xml()
    documented = ET.parse(DATA / example).getroot()

    def summary(root: ET.Element) -> list[tuple[str, str]]:
        """Element order and values, without the per-object details (dates, sizes, ETags)."""
        out = []
        for child in root:
            if local(child.tag) == "Contents":
                out.append(("Contents", child.findtext(f"{{{S3_NAMESPACE}}}Key") or ""))
            elif local(child.tag) == "CommonPrefixes":
                out.append(("CommonPrefixes", child.findtext(f"{{{S3_NAMESPACE}}}Prefix") or ""))
            else:
                out.append((local(child.tag), (child.text or "").strip()))
        return out

    assert summary(ours) == summary(documented)


def test_list_objects_v2_url_encoding_and_bad_arguments(s3: FakeS3) -> None:
    s3.add_bucket("logs")
    s3.put_object("logs", "dir/a b+c.txt", b"x")
    ns = {"s3": S3_NAMESPACE}
    root = call(s3, "GET", "/logs", [("list-type", "2"), ("encoding-type", "url"), ("prefix", "dir/a b")]).xml()
    assert root.findtext("s3:EncodingType", namespaces=ns) == "url"
    assert root.findtext("s3:Prefix", namespaces=ns) == "dir/a%20b"
    assert root.findtext("s3:Contents/s3:Key", namespaces=ns) == "dir/a%20b%2Bc.txt"
    error = expect_error(call(s3, "GET", "/logs", [("list-type", "2"), ("max-keys", "many")]), "InvalidArgument")
    assert (error["ArgumentName"], error["ArgumentValue"]) == ("max-keys", "many")
    assert error["Message"] == "The specified argument was not valid."


def test_objects_round_trip(s3: FakeS3) -> None:
    s3.add_bucket("data")
    put = call(s3, "PUT", "/data/dir/my file+1~é.txt", body=b"hello", headers={"Content-Type": "text/plain"})
    assert (put.status, put.headers["etag"]) == (200, f'"{hashlib.md5(b"hello").hexdigest()}"')
    assert s3.object_data("data", "dir/my file+1~é.txt") == b"hello"
    get = call(s3, "GET", "/data/dir/my file+1~é.txt")
    assert (get.status, get.body, get.headers["content-type"]) == (200, b"hello", "text/plain")
    head = call(s3, "HEAD", "/data/dir/my file+1~é.txt")
    assert (head.status, head.body, head.headers["content-length"]) == (200, b"", "5")

    unsigned = call(s3, "PUT", "/data/unsigned", body=b"abc", payload_hash="UNSIGNED-PAYLOAD")
    assert unsigned.status == 200
    assert s3.object_data("data", "unsigned") == b"abc"
    lying = call(s3, "PUT", "/data/lying", body=b"abc", payload_hash=EMPTY_SHA256)
    error = expect_error(lying, "XAmzContentSHA256Mismatch")
    assert error["S3ComputedContentSHA256"] == hashlib.sha256(b"abc").hexdigest()
    bad_md5 = call(s3, "PUT", "/data/md5", body=b"abc",
                   headers={"Content-MD5": base64.b64encode(hashlib.md5(b"abd").digest()).decode()})
    expect_error(bad_md5, "BadDigest")

    delete = call(s3, "DELETE", "/data/dir/my file+1~é.txt")
    assert (delete.status, delete.body) == (204, b"")
    error = expect_error(call(s3, "GET", "/data/dir/my file+1~é.txt"), "NoSuchKey")
    assert error["Key"] == "dir/my file+1~é.txt"
    missing = call(s3, "HEAD", "/data/nothing")
    assert (missing.status, missing.body) == (404, b"")
    expect_error(call(s3, "GET", "/data/unsigned", headers={"Range": "bytes=10-20"}), "InvalidRange")


def test_list_buckets_and_create_bucket(s3: FakeS3) -> None:
    created = call(s3, "PUT", "/new-bucket")
    assert (created.status, created.headers["location"]) == (200, "/new-bucket")
    s3.add_bucket("old-bucket")
    reply = call(s3, "GET", "/")
    root = reply.xml()
    assert root.tag == f"{{{S3_NAMESPACE}}}ListAllMyBucketsResult"
    syntax = ET.parse(DATA / "list-buckets-response-syntax.xml").getroot()
    _within(_shape(root), _shape(syntax), "ListAllMyBucketsResult")
    ns = {"s3": S3_NAMESPACE}
    assert [b.findtext("s3:Name", namespaces=ns) for b in root.iterfind("s3:Buckets/s3:Bucket", ns)] == [
        "new-bucket", "old-bucket"]
    # us-east-1 answers 200 to re-creating a bucket you own (legacy); a bad name is InvalidBucketName.
    assert call(s3, "PUT", "/new-bucket").status == 200
    expect_error(call(s3, "PUT", "/Not_A_Bucket"), "InvalidBucketName")
    config = (DATA / "create-bucket-configuration-example.xml").read_bytes()
    error = expect_error(call(s3, "PUT", "/eu-bucket", body=config), "IllegalLocationConstraintException")
    assert error["Message"].startswith("You attempt to create a bucket with a location constraint")


def test_other_regions_refuse_to_recreate_a_bucket() -> None:
    with FakeS3(region="eu-west-1") as fake:
        config = (DATA / "create-bucket-configuration-example.xml").read_bytes()  # LocationConstraint EU
        assert call(fake, "PUT", "/eu-bucket", body=config, region="eu-west-1").status == 200
        assert fake.buckets["eu-bucket"].region == "eu-west-1"
        error = expect_error(call(fake, "PUT", "/eu-bucket", body=config, region="eu-west-1"),
                             "BucketAlreadyOwnedByYou")
        assert error["Message"] == "The bucket that you tried to create already exists, and you own it."
        head = call(fake, "HEAD", "/eu-bucket", region="eu-west-1")
        assert head.headers["x-amz-bucket-region"] == "eu-west-1"
        fake.check_clean()


# --- failing closed, and the lab's own knobs --------------------------------------------------------


def test_an_unimplemented_operation_is_recorded_and_fails_check_clean(s3: FakeS3) -> None:
    s3.add_bucket("logs")
    reply = call(s3, "GET", "/logs", [("acl", "")])
    error = expect_error(reply, "NotImplemented")
    assert error["Message"] == "A header that you provided implies functionality that is not implemented."
    presigned = send(s3, "GET", "/logs/key?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=00",
                     {"Host": f"127.0.0.1:{s3.port}"})
    expect_error(presigned, "NotImplemented")
    unsigned_unknown = send(s3, "POST", "/logs?delete", {"Host": f"127.0.0.1:{s3.port}"})
    expect_error(unsigned_unknown, "AccessDenied")
    assert [(r.method, r.raw_query) for r in s3.unexpected] == [
        ("GET", "acl="), ("GET", "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=00"), ("POST", "delete")]
    with pytest.raises(AssertionError, match=r"GET /logs\?acl=: not an operation the fake implements"):
        s3.check_clean()
    s3.unexpected.clear()


def test_requests_are_recorded_and_latency_delays_answers(s3: FakeS3) -> None:
    s3.add_bucket("logs")
    s3.latency = 0.2
    started = time.monotonic()
    call(s3, "GET", "/logs", [("list-type", "2"), ("prefix", "a b")])
    assert time.monotonic() - started >= 0.2
    request = s3.requests[-1]
    assert (request.method, request.path, request.query) == ("GET", "/logs", {"list-type": "2", "prefix": "a b"})
    assert request.raw_query == "list-type=2&prefix=a%20b"
    assert {"host", "x-amz-date", "x-amz-content-sha256", "authorization"} <= set(request.headers)
    assert (request.operation, request.status) == ("ListObjectsV2", 200)


def test_the_fake_can_bind_another_loopback_address() -> None:
    fake = FakeS3()
    fake.host = "127.0.0.2"
    with fake:
        assert fake.url == f"http://127.0.0.2:{fake.port}"
        fake.add_bucket("logs")
        assert call(fake, "HEAD", "/logs").status == 200
        fake.check_clean()


def test_errors_json_keeps_the_documented_wording() -> None:
    """A guard against edits: the codes the checks rely on, as the List of error codes words them."""
    expected = {
        "AccessDenied": (403, "Access Denied"),
        "InvalidAccessKeyId": (403, "The AWS access key ID that you provided does not exist in our records."),
        "NoSuchBucket": (404, "The specified bucket does not exist."),
        "NoSuchKey": (404, "The specified key does not exist."),
        "RequestTimeTooSkewed": (403, "The difference between the request time and the server's time is too large."),
        "SignatureDoesNotMatch": (403, "The request signature that the server calculated does not match the "
                                       "signature that you provided. Check your AWS secret access key and signing "
                                       "method. For more information, see REST Authentication and SOAP "
                                       "Authentication."),
    }
    for code, (status, message) in expected.items():
        assert (ERRORS[code]["status"], ERRORS[code]["message"], ERRORS[code]["source"]) == (
            status, message, "ErrorCodeList")
