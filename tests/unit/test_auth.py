"""The JWT table: every way a token can be wrong gets 401, a missing permission 403."""

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from functions.runtime import bearer
from functions.runtime.errors import Unauthorized
from functions.runtime.settings import settings
from functions.runtime.testing import Client, running
from tests.support.sample import function

SECRET = "a-test-secret-that-is-long-enough-for-hs256"
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RSA_PUBLIC = (
    RSA_KEY.public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    .decode()
)
EC_KEY = ec.generate_private_key(ec.SECP256R1())


def claims(**overrides: Any) -> dict[str, Any]:
    return {"sub": "u-1", "permissions": ["sample:read"], "exp": int(time.time()) + 60} | overrides


@pytest.fixture
async def client(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Client]:
    monkeypatch.setenv("JWT_SECRET", SECRET)
    monkeypatch.setenv("JWT_ALGORITHMS", "HS256")
    settings.cache_clear()
    async with running(function) as client:
        yield client


async def whoami(client: Client, token: str | None, scheme: str = "Bearer") -> Any:
    headers = {"authorization": f"{scheme} {token}"} if token is not None else {}
    return await client.http.get("/whoami", headers=headers)


async def test_a_valid_token_reaches_the_handler_with_its_claims(client: Client) -> None:
    response = await whoami(client, jwt.encode(claims(), SECRET, algorithm="HS256"))
    assert response.status_code == 200
    assert response.json() == {"sub": "u-1"}


async def test_no_token_is_401_with_a_challenge(client: Client) -> None:
    response = await whoami(client, None)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert set(response.json()) == {"error", "details", "requestId"}


@pytest.mark.parametrize(
    ("name", "make_token"),
    [
        ("malformed", lambda: "not.a.jwt"),
        ("garbage", lambda: "abc"),
        ("bad signature", lambda: jwt.encode(claims(), SECRET + "x", algorithm="HS256")),
        ("alg none", lambda: jwt.encode(claims(), "", algorithm="none")),
        (
            "expired",
            lambda: jwt.encode(claims(exp=int(time.time()) - 5), SECRET, algorithm="HS256"),
        ),
        ("no exp", lambda: jwt.encode({"sub": "u-1", "permissions": ["sample:read"]}, SECRET)),
        ("RS256 not allowed", lambda: jwt.encode(claims(), RSA_KEY, algorithm="RS256")),
        ("HS512 not allowed", lambda: jwt.encode(claims(), SECRET * 2, algorithm="HS512")),
        # Signed, but with permissions in a shape no one mints: refused, not read loosely.
        ("permissions a number", lambda: jwt.encode(claims(permissions=5), SECRET)),
        (
            "permissions a mapping",
            lambda: jwt.encode(claims(permissions={"sample:read": False}), SECRET),
        ),
        ("permissions not strings", lambda: jwt.encode(claims(permissions=[1, 2]), SECRET)),
    ],
)
async def test_bad_tokens_are_401(client: Client, name: str, make_token: Callable[[], str]) -> None:
    response = await whoami(client, make_token())
    assert response.status_code == 401, name
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_a_basic_scheme_is_not_a_bearer_token(client: Client) -> None:
    token = jwt.encode(claims(), SECRET, algorithm="HS256")
    assert (await whoami(client, token, scheme="Basic")).status_code == 401


async def test_permissions_may_be_one_space_separated_string(client: Client) -> None:
    token = jwt.encode(claims(permissions="sample:write sample:read"), SECRET)
    assert (await whoami(client, token)).status_code == 200


async def test_a_missing_permission_is_403(client: Client) -> None:
    token = jwt.encode(claims(permissions=["sample:write"]), SECRET, algorithm="HS256")
    response = await whoami(client, token)
    assert response.status_code == 403
    assert response.json()["details"] == ["sample:read"]


@pytest.fixture
def rsa_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JWT_ALGORITHMS", "RS256,HS256")
    monkeypatch.setenv("JWT_PUBLIC_KEY", RSA_PUBLIC)
    monkeypatch.setenv("JWT_SECRET", SECRET)
    settings.cache_clear()


@pytest.mark.usefixtures("rsa_settings")
def test_rs256_tokens_are_checked_with_the_public_key() -> None:
    assert bearer.verify(jwt.encode(claims(), RSA_KEY, algorithm="RS256")).sub == "u-1"


@pytest.mark.usefixtures("rsa_settings")
def test_hs256_signed_with_the_public_key_is_refused() -> None:
    # The classic confusion: an attacker signs HS256 with the (public) RSA key as secret.
    # PyJWT refuses to sign with a PEM as HMAC key, so the token is made by hand.
    with pytest.raises(Unauthorized):
        bearer.verify(_hmac_token(RSA_PUBLIC.encode()))


def _hmac_token(key: bytes) -> str:
    import base64
    import hashlib
    import hmac
    import json

    def b64(raw: bytes) -> bytes:
        return base64.urlsafe_b64encode(raw).rstrip(b"=")

    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = b64(json.dumps(claims(sub="admin")).encode())
    signature = b64(hmac.new(key, header + b"." + payload, hashlib.sha256).digest())
    return (header + b"." + payload + b"." + signature).decode()


def test_es256_with_the_wrong_key_family_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JWT_ALGORITHMS", "ES256")
    monkeypatch.setenv("JWT_PUBLIC_KEY", RSA_PUBLIC)
    settings.cache_clear()
    with pytest.raises(Unauthorized):
        bearer.verify(jwt.encode(claims(), EC_KEY, algorithm="ES256"))


@pytest.mark.parametrize(
    ("configured", "token_claims", "accepted"),
    [
        ({"JWT_AUDIENCE": "kshop"}, {"aud": "kshop"}, True),
        ({"JWT_AUDIENCE": "kshop"}, {"aud": "other"}, False),
        ({"JWT_AUDIENCE": "kshop"}, {}, False),
        ({"JWT_ISSUER": "https://id.kshop"}, {"iss": "https://id.kshop"}, True),
        ({"JWT_ISSUER": "https://id.kshop"}, {"iss": "https://evil"}, False),
    ],
)
def test_audience_and_issuer_are_checked_when_configured(
    monkeypatch: pytest.MonkeyPatch,
    configured: dict[str, str],
    token_claims: dict[str, str],
    accepted: bool,
) -> None:
    monkeypatch.setenv("JWT_SECRET", SECRET)
    for name, value in configured.items():
        monkeypatch.setenv(name, value)
    settings.cache_clear()
    token = jwt.encode(claims(**token_claims), SECRET, algorithm="HS256")
    if accepted:
        assert bearer.verify(token).sub == "u-1"
    else:
        with pytest.raises(Unauthorized):
            bearer.verify(token)


def test_minted_tokens_verify_and_carry_permissions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JWT_SECRET", SECRET)
    settings.cache_clear()
    verified = bearer.verify(bearer.mint("u-9", ["a", "b"], ttl=60))
    assert (verified.sub, verified.permissions) == ("u-9", frozenset({"a", "b"}))


def test_minting_without_a_key_says_which_variable_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JWT_SECRET", raising=False)
    settings.cache_clear()
    with pytest.raises(ValueError, match="JWT_SECRET"):
        bearer.mint("u-1", [])
