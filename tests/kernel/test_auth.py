"""tsunagu/auth.py: the gateway's signing keys and the services' verification (audience, expiry, the pinned
Ed25519 algorithm, key rotation through the published key set, shared-secret and unsigned tokens refused), and
the role vocabulary."""

from __future__ import annotations

import base64
import json
import time

import pytest
from joserfc import jwt
from joserfc.jwk import OctKey

from tsunagu.auth import ISSUER, Principal, PublicKeys, Role, SigningKeys, issue_token, verify_token
from tsunagu.errors import ApiError

BROKER = Principal(sub="u1", role=Role.BROKER, prefectures=["13"])


class Gateway:
    """The gateway's side: its keys, and the published key set a service fetches (counted)."""

    def __init__(self) -> None:
        self.keys = SigningKeys.generate()
        self.fetches = 0

    def jwks(self) -> dict:
        self.fetches += 1
        return self.keys.public_jwks()


def refused(token: str, keys: PublicKeys, audience: str = "a") -> ApiError:
    with pytest.raises(ApiError) as error:
        verify_token(token, keys=keys, audience=audience)
    assert error.value.status_code == 401 and error.value.message_ja
    return error.value


def test_a_token_verifies_for_its_audience_only_and_with_the_public_key() -> None:
    gateway = Gateway()
    keys = PublicKeys(gateway.jwks)
    token = issue_token(BROKER, keys=gateway.keys, audience="matching")
    assert verify_token(token, keys=keys, audience="matching") == BROKER
    refused(token, keys, audience="profiles")
    published = gateway.keys.public_jwks()["keys"][0]
    assert published["kty"] == "OKP" and published["crv"] == "Ed25519" and "d" not in published  # no private part


def test_foreign_keys_expiry_shared_secrets_and_unsigned_tokens_are_refused() -> None:
    gateway = Gateway()
    keys = PublicKeys(gateway.jwks, min_refetch_seconds=0)
    refused(issue_token(BROKER, keys=SigningKeys.generate(), audience="a"), keys)  # a key the gateway never had
    refused(issue_token(BROKER, keys=gateway.keys, audience="a", ttl_seconds=-10), keys)
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": "a", "exp": now + 60, "sub": "u1", "role": "admin"}
    # A shared-secret token (what every service could mint before): refused, whatever the secret.
    secret = OctKey.import_key(b"a-shared-secret-that-services-used-to-hold-0123")
    refused(jwt.encode({"alg": "HS256"}, claims, secret, algorithms=["HS256"]), keys)
    kid = gateway.keys.keys[0].kid
    refused(jwt.encode({"alg": "HS256", "kid": kid}, claims, secret, algorithms=["HS256"]), keys)

    def b64(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    refused(f"{b64({'alg': 'none', 'kid': kid})}.{b64(claims)}.", keys)
    refused("not-a-token", keys)


def test_a_rotation_is_followed_without_a_restart_and_fetches_are_throttled() -> None:
    gateway = Gateway()
    keys = PublicKeys(gateway.jwks, min_refetch_seconds=0.2)
    old_token = issue_token(BROKER, keys=gateway.keys, audience="a")
    assert verify_token(old_token, keys=keys, audience="a") == BROKER and gateway.fetches == 1

    gateway.keys = gateway.keys.rotated(keep=1)  # a new key signs; the old one stays published
    new_token = issue_token(BROKER, keys=gateway.keys, audience="a")
    assert json.loads(base64.urlsafe_b64decode(new_token.split(".")[0] + "=="))["kid"] == gateway.keys.keys[0].kid
    time.sleep(0.25)  # the throttle: an unknown key id may trigger a fetch at most every 0.2 s here
    assert verify_token(new_token, keys=keys, audience="a") == BROKER and gateway.fetches == 2

    # A flood of tokens naming unknown keys costs at most one fetch per throttle interval.
    fetches, started = gateway.fetches, time.monotonic()
    for _ in range(5):
        refused(issue_token(BROKER, keys=SigningKeys.generate(), audience="a"), keys)
    assert gateway.fetches - fetches <= (time.monotonic() - started) / 0.2 + 1
    assert verify_token(old_token, keys=keys, audience="a") == BROKER  # still published: still valid


def test_a_key_published_a_moment_after_the_last_fetch_is_still_accepted() -> None:
    gateway = Gateway()
    keys = PublicKeys(gateway.jwks, min_refetch_seconds=0.3)
    assert verify_token(issue_token(BROKER, keys=gateway.keys, audience="a"), keys=keys, audience="a") == BROKER
    gateway.keys = gateway.keys.rotated()  # right after the fetch: the throttle is still closed
    assert verify_token(issue_token(BROKER, keys=gateway.keys, audience="a"), keys=keys, audience="a") == BROKER
    assert gateway.fetches == 2


def test_verified_tokens_are_remembered_until_they_expire() -> None:
    gateway = Gateway()
    keys = PublicKeys(gateway.jwks)
    token = issue_token(BROKER, keys=gateway.keys, audience="a", ttl_seconds=60)
    assert verify_token(token, keys=keys, audience="a") == BROKER
    assert keys.remembered(token, "a") == BROKER and keys.remembered(token, "b") is None
    short = issue_token(BROKER, keys=gateway.keys, audience="a", ttl_seconds=1)
    verify_token(short, keys=keys, audience="a")
    time.sleep(1.1)
    assert keys.remembered(short, "a") is None
    refused(short, keys)


def test_an_unreachable_key_set_is_a_503_not_a_500() -> None:
    def down() -> dict:
        raise ValueError("connection refused")

    with pytest.raises(ApiError) as error:
        verify_token(
            issue_token(BROKER, keys=SigningKeys.generate(), audience="a"), keys=PublicKeys(down), audience="a"
        )
    assert error.value.status_code == 503


def test_signing_keys_round_trip_as_a_private_jwk_set() -> None:
    keys = SigningKeys.generate().rotated(keep=1)
    again = SigningKeys.from_jwks(json.dumps(keys.private_jwks()))
    assert [k.kid for k in again.keys] == [k.kid for k in keys.keys] and len(again.keys) == 2
    with pytest.raises(ValueError):
        SigningKeys.from_jwks(keys.public_jwks())  # public keys cannot sign


def test_regional_staff_cover_their_prefectures_and_admins_cover_all() -> None:
    broker = Principal(sub="b", role=Role.BROKER, prefectures=["13"])
    hub = Principal(sub="h", role=Role.HUB, prefectures=["47"])
    admin = Principal(sub="a", role=Role.ADMIN)
    sme = Principal(sub="s", role=Role.SME, prefectures=["13"])
    assert broker.is_regional_staff and hub.is_regional_staff and not admin.is_regional_staff
    assert broker.covers("13") and not broker.covers("47") and not broker.covers(None)
    assert hub.covers("47") and admin.covers("01") and admin.is_privileged
    assert not sme.covers("13")  # only regional staff work prefectures
    assert not Principal(sub="anonymous", role=Role.ANONYMOUS).is_authenticated and sme.is_authenticated
