"""The engine's SigV4 is botocore's ``SigV4Auth``, part by part, byte for byte."""

from __future__ import annotations

import datetime as dt
from typing import Any

import botocore.auth
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials, ReadOnlyCredentials
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.engine import requests, signing
from tests.unit.test_engine_requests import ACCESS_KEY, OPERATIONS, PARAMS, SECRET_KEY

_UNSIGNED_BY_US = ("Authorization",)
times = st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2099, 12, 31))
tokens = st.none() | st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=40)
endpoints = st.sampled_from([None, "http://127.0.0.1:8000", "https://localhost:443", "http://[::1]:8000",
                             "https://dynamodb.example:8443/prefix/"])
regions = st.sampled_from(["us-east-1", "eu-west-3", "ap-southeast-2"])


def botocore_signs(request: requests.Request, *, token: str | None, when: dt.datetime, region: str,
                   monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """botocore's canonical request, string to sign, signed headers and Authorization for the same
    request (its headers without the signature), at ``when``."""
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: when)
    headers = {k: v for k, v in request.headers.items() if k not in _UNSIGNED_BY_US}
    auth = SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY, token), "dynamodb", region)
    signed = AWSRequest(method=request.method, url=request.url, data=request.body, headers=dict(headers))
    auth.add_auth(signed)
    # The parts, from a request in the state add_auth signs it in (date and token set, no signature).
    parts = AWSRequest(method=request.method, url=request.url, data=request.body, headers=dict(headers))
    parts.context["timestamp"] = signed.context["timestamp"]
    canonical = auth.canonical_request(parts)
    return {
        "canonical_request": canonical,
        "string_to_sign": auth.string_to_sign(parts, canonical),
        "signed_headers": auth.signed_headers(auth.headers_to_sign(parts)),
        "authorization": signed.headers["Authorization"],
    }


@pytest.mark.parametrize("operation", OPERATIONS)
def test_signatures_equal_botocores_for_every_operation(operation: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    @settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                     HealthCheck.too_slow])
    @given(params=PARAMS[operation], token=tokens, when=times, endpoint_url=endpoints, region=regions)
    def check(params: dict[str, Any], token: str | None, when: dt.datetime, endpoint_url: str | None,
              region: str) -> None:
        endpoint = requests.endpoint_for(endpoint_url, region)
        amz_date = when.strftime(signing.TIMESTAMP_FORMAT)
        request, ours = requests.signed(
            operation, requests.serialize(operation, params), endpoint=endpoint,
            credentials=ReadOnlyCredentials(ACCESS_KEY, SECRET_KEY, token), amz_date=amz_date,
        )
        theirs = botocore_signs(request, token=token, when=when, region=region, monkeypatch=monkeypatch)
        assert ours.canonical_request == theirs["canonical_request"]
        assert ours.string_to_sign == theirs["string_to_sign"]
        assert ours.signed_headers == theirs["signed_headers"]
        assert ours.authorization == theirs["authorization"] == request.headers["Authorization"]
        token_header = ";x-amz-security-token" if token else ""
        expected = f"content-type;host;x-amz-date{token_header};x-amz-target"
        assert ours.signed_headers == expected

    check()


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=300), headers=st.dictionaries(
    st.text(st.characters(min_codepoint=97, max_codepoint=122), min_size=1, max_size=8),
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=20), max_size=4),
    when=times)
def test_any_body_and_headers_sign_as_botocore_signs_them(body: bytes, headers: dict[str, str],
                                                         when: dt.datetime) -> None:
    amz_date = when.strftime(signing.TIMESTAMP_FORMAT)
    all_headers = {**headers, "X-Amz-Date": amz_date}
    ours = signing.sign("POST", "https://dynamodb.us-east-1.amazonaws.com/", all_headers, body,
                        access_key=ACCESS_KEY, secret_key=SECRET_KEY, amz_date=amz_date, region="us-east-1")
    auth = SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "dynamodb", "us-east-1")
    request = AWSRequest(method="POST", url="https://dynamodb.us-east-1.amazonaws.com/", data=body,
                         headers=all_headers)
    request.context["timestamp"] = amz_date
    canonical = auth.canonical_request(request)
    assert ours.canonical_request == canonical
    assert ours.string_to_sign == auth.string_to_sign(request, canonical)
    assert ours.authorization.endswith(f"Signature={auth.signature(ours.string_to_sign, request)}")


values = st.text(st.characters(min_codepoint=32, max_codepoint=126) | st.sampled_from(" \t"), min_size=1,
                 max_size=20)


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=300), content_type=values, target=values, host=values,
       token=st.none() | st.just("") | values, when=times, endpoint_url=endpoints, region=regions)
def test_the_json_post_signer_signs_as_the_general_one(body: bytes, content_type: str, target: str, host: str,
                                                       token: str | None, when: dt.datetime,
                                                       endpoint_url: str | None, region: str) -> None:
    """The engine's one request shape, signed from a template kept per endpoint, operation and token,
    is signed exactly as ``sign`` (proven equal to botocore's above) signs its headers."""
    url = requests.endpoint_for(endpoint_url, region).url
    amz_date = when.strftime(signing.TIMESTAMP_FORMAT)
    headers = {"Content-Type": content_type, "X-Amz-Target": target, "Host": host, "X-Amz-Date": amz_date}
    if token:
        headers["X-Amz-Security-Token"] = token
    general = signing.sign("POST", url, headers, body, access_key=ACCESS_KEY, secret_key=SECRET_KEY,
                           amz_date=amz_date, region=region)
    templated = signing.sign_json_post(url, host=host, content_type=content_type, target=target, body=body,
                                       access_key=ACCESS_KEY, secret_key=SECRET_KEY, token=token,
                                       amz_date=amz_date, region=region)
    assert templated == general


def test_the_signing_key_is_derived_once_a_day_per_secret() -> None:
    signing.signing_key.cache_clear()
    for _ in range(3):
        signing.sign("POST", "http://127.0.0.1:8000/", {"X-Amz-Date": "20250301T000000Z"}, b"{}",
                     access_key="a", secret_key="s", amz_date="20250301T000000Z", region="us-east-1")
    assert signing.signing_key.cache_info().misses == 1
    signing.sign("POST", "http://127.0.0.1:8000/", {"X-Amz-Date": "20250302T000000Z"}, b"{}",
                 access_key="a", secret_key="s", amz_date="20250302T000000Z", region="us-east-1")
    assert signing.signing_key.cache_info().misses == 2


def test_the_unsigned_headers_are_botocores() -> None:
    assert set(botocore.auth.SIGNED_HEADERS_BLACKLIST) == signing.UNSIGNED_HEADERS
