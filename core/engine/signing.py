"""AWS Signature Version 4 for DynamoDB's JSON requests, equal to botocore's ``SigV4Auth``.

The steps are botocore's (``botocore.auth.SigV4Auth``): the canonical request (method, normalized
path, sorted query, the lower-cased headers that are signed with their values' whitespace folded,
the signed header names, the hex SHA-256 of the body), the string to sign (algorithm, timestamp,
credential scope, hash of the canonical request) and the ``Authorization`` header. What differs is
cost: the signing key, four HMACs, depends only on the secret, the date, the region and the
service, so it is derived once a day per secret and kept (``signing_key``), where botocore derives
it for every request.

``tests/unit/test_engine_signing.py`` proves the canonical request, the string to sign, the signed
headers and the ``Authorization`` header equal to ``SigV4Auth``'s, byte for byte, at a fixed time.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from botocore.utils import normalize_url_path

ALGORITHM = "AWS4-HMAC-SHA256"
TIMESTAMP_FORMAT = "%Y%m%dT%H%M%SZ"  # X-Amz-Date
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
# Never signed (botocore.auth.SIGNED_HEADERS_BLACKLIST): a proxy or the HTTP library may change them.
UNSIGNED_HEADERS = frozenset({
    "baggage", "connection", "expect", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
    "traceparent", "tracestate", "trailer", "transfer-encoding", "upgrade", "user-agent", "x-amzn-trace-id",
})
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class Signature:
    """Everything a signature is made of (tests compare each part with botocore's)."""

    canonical_request: str
    string_to_sign: str
    signed_headers: str
    authorization: str


@functools.lru_cache(maxsize=16)
def signing_key(secret_key: str, date: str, region: str, service: str) -> bytes:
    """The SigV4 signing key for ``date`` (``YYYYMMDD``): derived once, then served from the cache."""
    key = _hmac(f"AWS4{secret_key}".encode(), date)
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    return key


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()


def host_header(url: str) -> str:
    """The ``Host`` botocore signs for ``url``: lower-cased, no default port, no user info."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 address
        host = f"[{host}]"
    if parts.port is not None and parts.port != _DEFAULT_PORTS.get(parts.scheme):
        host = f"{host}:{parts.port}"
    return host


def canonical_path(path: str) -> str:
    """The path as SigV4 signs it (DynamoDB's is ``/``)."""
    if path == "/":
        return path
    return quote(normalize_url_path(path), safe="/~")


def canonical_query(query: str) -> str:
    """The query string as botocore signs one that came with the URL: pairs sorted, kept as written."""
    if not query:
        return ""
    pairs = sorted(pair.partition("=")[::2] for pair in query.split("&"))
    return "&".join(f"{key}={value}" for key, value in pairs)


def _fold(value: str) -> str:
    """A header value as SigV4 signs it: runs of whitespace folded to one space, ends stripped."""
    return " ".join(value.split())


@functools.lru_cache(maxsize=256)
def _json_post(url: str, host: str, content_type: str, target: str,
               token: str | None) -> tuple[str, str, str]:
    """The canonical request of a JSON POST with exactly these headers, around its ``X-Amz-Date``
    and its payload hash: the text before the date, the text from the date to the hash, and the
    signed header names (sorted, as ``sign`` sorts them)."""
    parts = urlsplit(url)
    security_token = ["x-amz-security-token"] if token else []
    names = ["content-type", "host", "x-amz-date", *security_token, "x-amz-target"]
    signed_headers = ";".join(names)
    before = (f"POST\n{canonical_path(parts.path)}\n{canonical_query(parts.query)}\n"
              f"content-type:{_fold(content_type)}\nhost:{_fold(host)}\nx-amz-date:")
    security = f"\nx-amz-security-token:{_fold(token)}" if token else ""
    after = f"{security}\nx-amz-target:{_fold(target)}\n\n{signed_headers}\n"
    return before, after, signed_headers


def sign_json_post(url: str, *, host: str, content_type: str, target: str, body: bytes, access_key: str,
                   secret_key: str, token: str | None, amz_date: str, region: str,
                   service: str = "dynamodb") -> Signature:
    """``sign`` for the one request shape the engine sends: a POST whose signed headers are
    ``Content-Type``, ``Host``, ``X-Amz-Date``, ``X-Amz-Target`` and, with a session ``token``,
    ``X-Amz-Security-Token``. The same signature; the constant part of the canonical request is
    built once per endpoint, operation and token instead of for every request."""
    before, after, signed_headers = _json_post(url, host, content_type, target, token or None)
    payload_hash = hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256
    canonical_request = f"{before}{amz_date}{after}{payload_hash}"
    date = amz_date[:8]
    scope = f"{date}/{region}/{service}/aws4_request"
    string_to_sign = (f"{ALGORITHM}\n{amz_date}\n{scope}\n"
                      f"{hashlib.sha256(canonical_request.encode('utf-8')).hexdigest()}")
    signature = hmac.digest(signing_key(secret_key, date, region, service), string_to_sign.encode("utf-8"),
                            "sha256").hex()
    authorization = (
        f"{ALGORITHM} Credential={access_key}/{scope}, SignedHeaders={signed_headers}, Signature={signature}"
    )
    return Signature(canonical_request, string_to_sign, signed_headers, authorization)


def sign(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    access_key: str,
    secret_key: str,
    amz_date: str,
    region: str,
    service: str = "dynamodb",
) -> Signature:
    """Sign a request whose ``headers`` already hold everything to sign (``X-Amz-Date`` and, with
    a session token, ``X-Amz-Security-Token`` included). ``Host`` is taken from ``url`` unless given.

    ``amz_date`` is the request's time, ``YYYYMMDDTHHMMSSZ``. The body is always hashed: botocore
    turns payload signing off for no DynamoDB operation.
    """
    to_sign: dict[str, list[str]] = {}
    for name, value in headers.items():
        lowered = name.lower()
        if lowered not in UNSIGNED_HEADERS:
            to_sign.setdefault(lowered, []).append(value)
    if "host" not in to_sign:
        to_sign["host"] = [host_header(url)]
    names = sorted(to_sign)
    signed_headers = ";".join(names)
    canonical_headers = "".join(
        f"{name}:{','.join(' '.join(value.split()) for value in to_sign[name])}\n" for name in names
    )
    parts = urlsplit(url)
    payload_hash = hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256
    canonical_request = "\n".join((
        method.upper(), canonical_path(parts.path), canonical_query(parts.query), canonical_headers,
        signed_headers, payload_hash,
    ))
    date = amz_date[:8]
    scope = f"{date}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join((
        ALGORITHM, amz_date, scope, hashlib.sha256(canonical_request.encode("utf-8")).hexdigest(),
    ))
    signature = hmac.new(
        signing_key(secret_key, date, region, service), string_to_sign.encode("utf-8"), hashlib.sha256
    ).hexdigest()
    authorization = (
        f"{ALGORITHM} Credential={access_key}/{scope}, SignedHeaders={signed_headers}, Signature={signature}"
    )
    return Signature(canonical_request, string_to_sign, signed_headers, authorization)
