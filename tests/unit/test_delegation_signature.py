"""Delegation's signature and redirect URL, against vectors computed independently (openssl)."""

import base64
from urllib.parse import parse_qsl, urlsplit

import pytest

from chalicelib.domain.delegation import SIGNED, Operation, redirect_url, signature, verify

# bytes 0..63 as the validation key; the expected values come from
# printf 'a1b2c3\n<values>' | openssl dgst -sha512 -mac HMAC -macopt hexkey:<key> -binary | base64
KEY = base64.b64encode(bytes(range(64))).decode()
RETURN_URL = "https://portal.example.com/products?x=1&y=2"
SIG_RETURN_URL = (
    "aIg8ev9eGkxisztrERuG2nmwQIjiLgp8XiZslOz3FkQEds/5UwlLonFO/+4VQPWZMcj6Zx6B9SH04ie6rlv4kQ=="
)
SIG_SUBSCRIBE = (
    "eCTV/liadokdLsXlTcMz2G+bd/Ur4W9lT0y9Z6v2/oArirL26pqcAN9OaWismmieKT5sjYZ4bflJXLfAknjxzg=="
)


def query_of(url):
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


def test_the_signature_is_hmac_sha512_of_salt_and_return_url_keyed_with_the_decoded_key():
    assert signature(KEY, "a1b2c3", RETURN_URL) == SIG_RETURN_URL


def test_a_subscribe_signature_covers_salt_product_and_user_in_that_order():
    assert signature(KEY, "a1b2c3", "starter", "ada") == SIG_SUBSCRIBE
    assert signature(KEY, "a1b2c3", "ada", "starter") != SIG_SUBSCRIBE


def test_the_sign_in_redirect_carries_operation_return_url_salt_and_sig_url_encoded():
    url = redirect_url(
        "https://publisher.example.com/delegate",
        KEY,
        Operation.SIGN_IN,
        "a1b2c3",
        {"returnUrl": RETURN_URL},
    )
    assert url.startswith("https://publisher.example.com/delegate?operation=SignIn&returnUrl=")
    assert query_of(url) == {
        "operation": "SignIn",
        "returnUrl": RETURN_URL,
        "salt": "a1b2c3",
        "sig": SIG_RETURN_URL,
    }
    assert verify(KEY, query_of(url))


def test_the_subscribe_redirect_carries_product_and_user_and_a_url_with_a_query_gets_an_ampersand():
    url = redirect_url(
        "https://publisher.example.com/delegate?tenant=7",
        KEY,
        Operation.SUBSCRIBE,
        "a1b2c3",
        {"productId": "starter", "userId": "ada"},
    )
    assert url.startswith("https://publisher.example.com/delegate?tenant=7&operation=Subscribe&")
    assert query_of(url)["sig"] == SIG_SUBSCRIBE
    assert verify(KEY, query_of(url))


@pytest.mark.parametrize("operation", list(Operation))
def test_every_operation_signs_its_own_parameters_and_the_site_can_check_them(operation):
    params = {name: f"value-of-{name}" for name in SIGNED[operation]}
    url = redirect_url("https://publisher.example.com/d", KEY, operation, "salt", params)
    query = query_of(url)
    assert set(query) == {"operation", "salt", "sig", *SIGNED[operation]}
    assert verify(KEY, query)


def test_a_changed_parameter_another_key_or_a_missing_sig_fails_verification():
    url = redirect_url(
        "https://p.example.com/d", KEY, Operation.CHANGE_PROFILE, "s", {"userId": "ada"}
    )
    query = query_of(url)
    assert not verify(KEY, {**query, "userId": "mallory"})
    assert not verify(base64.b64encode(bytes(64)).decode(), query)
    assert not verify(KEY, {k: v for k, v in query.items() if k != "sig"})
    assert not verify(KEY, {**query, "operation": "Nonsense"})


def test_a_missing_parameter_is_a_programming_error():
    with pytest.raises(ValueError, match="productId"):
        redirect_url("https://p.example.com/d", KEY, Operation.SUBSCRIBE, "s", {"userId": "ada"})
