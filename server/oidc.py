"""OpenID Connect pieces shared by dashboard sign-in and OAuth on /mcp: discovery and signed JWTs.

An issuer is found by its discovery document (``/.well-known/openid-configuration``, or the
OAuth form ``/.well-known/oauth-authorization-server``); tokens are checked with joserfc (the
JOSE library of authlib) against the issuer's JWKS: signature by a key the issuer publishes,
an asymmetric algorithm only, then issuer, audience and expiry. Keys are fetched again when a
token names a key id not seen yet (the issuer rotated its keys), at most once a minute.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

# No "none", no HMAC: a token must be signed with a key only the issuer holds.
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
DISCOVERY_SECONDS = 3600
REFETCH_SECONDS = 60
LEEWAY_SECONDS = 60
TIMEOUT = httpx.Timeout(10.0)


class TokenError(ValueError):
    """A token that is not accepted; the message says why (safe to show)."""


class IssuerError(RuntimeError):
    """The issuer could not be reached or its metadata is unusable."""


def _has(keys: KeySet, kid: str) -> bool:
    try:
        keys.get_by_kid(kid)
    except (JoseError, ValueError, KeyError):
        return False
    return True


def _same(a: str, b: str) -> bool:
    return a.rstrip("/") == b.rstrip("/")


@dataclass
class Issuer:
    """One issuer's metadata and keys, fetched when first needed and kept for a while."""

    url: str
    _metadata: dict[str, Any] = field(default_factory=dict)
    _fetched: float = 0.0
    _keys: KeySet | None = None
    _keys_fetched: float = 0.0
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def _get(self, url: str) -> dict[str, Any]:
        try:
            async with httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False) as http:
                response = await http.get(url, headers={"accept": "application/json"})
        except httpx.HTTPError as exc:
            raise IssuerError(f"{url} is unreachable: {exc!r}") from exc
        if response.status_code != 200:
            raise IssuerError(f"{url} answered {response.status_code}")
        try:
            data = response.json()
        except ValueError as exc:
            raise IssuerError(f"{url} did not answer JSON") from exc
        if not isinstance(data, dict):
            raise IssuerError(f"{url} did not answer a JSON object")
        return data

    async def metadata(self) -> dict[str, Any]:
        async with self._lock:
            if self._metadata and time.monotonic() - self._fetched < DISCOVERY_SECONDS:
                return self._metadata
            base = self.url.rstrip("/")
            try:
                data = await self._get(f"{base}/.well-known/openid-configuration")
            except IssuerError:
                data = await self._get(f"{base}/.well-known/oauth-authorization-server")
            issuer = data.get("issuer")
            # RFC 8414 / OIDC discovery: the document must name the issuer it was fetched for.
            if not isinstance(issuer, str) or not _same(issuer, self.url):
                raise IssuerError(f"the discovery document of {self.url} names another issuer: {issuer!r}")
            if not isinstance(data.get("jwks_uri"), str):
                raise IssuerError(f"the discovery document of {self.url} has no jwks_uri")
            self._metadata, self._fetched = data, time.monotonic()
            return data

    async def endpoint(self, name: str) -> str:
        value = (await self.metadata()).get(name)
        if not isinstance(value, str) or not value.startswith(("https://", "http://")):
            raise IssuerError(f"the issuer {self.url} publishes no {name}")
        return value

    async def keys(self, kid: str | None) -> KeySet:
        metadata = await self.metadata()
        async with self._lock:
            known = self._keys is not None and (kid is None or _has(self._keys, kid))
            stale = time.monotonic() - self._keys_fetched > DISCOVERY_SECONDS
            may_refetch = time.monotonic() - self._keys_fetched > REFETCH_SECONDS
            if self._keys is None or stale or (not known and may_refetch):
                data = await self._get(str(metadata["jwks_uri"]))
                try:
                    self._keys = KeySet.import_key_set(data)  # type: ignore[arg-type]
                except (JoseError, ValueError, TypeError) as exc:
                    raise IssuerError(f"the JWKS of {self.url} is not usable: {exc}") from exc
                self._keys_fetched = time.monotonic()
            return self._keys

    async def verify(self, token: str, audience: str, **expected: str) -> dict[str, Any]:
        """The claims of ``token`` if the issuer signed it for ``audience`` and it is current."""
        try:
            kid = jws.extract_compact(token.encode()).headers().get("kid")
        except (JoseError, ValueError, UnicodeError):
            raise TokenError("not a signed JWT") from None
        keys = await self.keys(kid if isinstance(kid, str) else None)
        try:
            decoded = jwt.decode(token, keys, algorithms=list(ALGORITHMS))
        except (JoseError, ValueError) as exc:
            raise TokenError(f"the signature does not verify with the issuer's keys ({type(exc).__name__})") from None
        claims = dict(decoded.claims)
        issuer = (await self.metadata())["issuer"]
        registry = jwt.JWTClaimsRegistry(
            leeway=LEEWAY_SECONDS,
            iss={"essential": True, "value": issuer},
            exp={"essential": True},
            **{name: {"essential": True, "value": value} for name, value in expected.items()},  # type: ignore[arg-type]
        )
        try:
            registry.validate(claims)
        except JoseError as exc:
            raise TokenError(f"claim check failed: {exc.error}: {exc.description or ''}".strip()) from None
        aud = claims.get("aud")
        audiences = aud if isinstance(aud, list) else [aud]
        if not any(isinstance(a, str) and _same(a, audience) for a in audiences):
            raise TokenError(f"the token is for another audience ({aud!r}), not {audience}")
        return claims
