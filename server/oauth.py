"""The OAuth 2.1 resource-server side of a hosted deployment (issue 16).

A hosted server trusts one authorization server (`NEMO_AUTH_ISSUER`, any OAuth 2.1 / OpenID Connect server that
issues JWT access tokens) and accepts a bearer token only when it was issued by that server for this server's MCP
endpoint, `<NEMO_PUBLIC_URL>/mcp` (RFC 8707: the token's `aud`). The mcp SDK does the HTTP side once it is given
`auth_settings(...)` and a `JwtTokenVerifier`: 401 with a `WWW-Authenticate` naming the RFC 9728 metadata, 403
`insufficient_scope`, and the metadata document itself.

Tokens are secrets: no log line, exception or result carries one. A refused token is logged by the name of the
check it failed.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx2
import jwt
from mcp.server.auth.provider import AccessToken, principal_components
from mcp.server.auth.settings import AuthSettings
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .logs import get_logger
from .tls import tls_context

log = get_logger("oauth")

# Signatures only by a key the issuer publishes: never "none", and never an HMAC, whose key would be shared.
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
# Clocks of the issuer and of this server differ a little.
LEEWAY_SECONDS = 30.0
# A key the issuer withdrew stops being trusted within this time.
JWKS_MAX_AGE_SECONDS = 300.0
# A token naming an unknown key makes the JWKS be fetched again, at most once in this time: otherwise anyone
# could make this server hammer the issuer with made-up key ids.
REFETCH_INTERVAL_SECONDS = 10.0
# Tokens already verified, each checked again only for its times until it expires: a client sends the same token
# with every call, and its signature cannot have changed. Bounded: a token not seen for a while is verified anew.
VERIFIED_KEPT = 4096
FETCH_TIMEOUT_SECONDS = 5.0


def mcp_url(public_url: str) -> str:
    """The MCP endpoint of a server reached at `public_url`: the resource its tokens must be issued for."""
    return public_url.rstrip("/") + "/mcp"


def auth_settings(public_url: str, issuer: str, scopes: str = "") -> AuthSettings:
    """What `MCPServer(auth=...)` needs for a server reached at `public_url` (`NEMO_PUBLIC_URL`) that trusts
    `issuer` (`NEMO_AUTH_ISSUER`) and requires `scopes` (`NEMO_AUTH_SCOPES`, space or comma separated)."""
    return AuthSettings(
        issuer_url=issuer,
        resource_server_url=mcp_url(public_url),
        required_scopes=re.split(r"[\s,]+", scopes.strip()) if scopes.strip() else None,
        # JwtTokenVerifier already refuses another audience; the SDK's own check of `AccessToken.resource` is
        # kept as a second lock (and it is the SDK's future default).
        validate_token_resource=True,
    )


def user_id_of(access_token: AccessToken) -> str:
    """The user a verified token speaks for, `"<iss>|<sub>"`: a `sub` is unique only within its issuer."""
    _, issuer, subject = principal_components(access_token)
    if issuer is None or subject is None:
        raise ValueError("the access token names no issuer and subject: it was not verified by JwtTokenVerifier")
    return f"{issuer}|{subject}"


class VerifiedToken(AccessToken):
    """The SDK's `AccessToken`, whose token text stays out of reprs and dumps."""

    token: str = Field(repr=False, exclude=True)


class _Claims(BaseModel):
    """The claims of a JWT access token (RFC 9068) that this server reads."""

    model_config = ConfigDict(extra="allow", strict=True)

    iss: str
    sub: str
    exp: float
    nbf: float | None = None
    scope: str = ""
    # Okta and Entra ID name the scopes in `scp`, a list or a space-separated string, instead of `scope`.
    scp: list[str] | str | None = None
    client_id: str | None = None
    # Servers that leave out RFC 9068's `client_id` (Auth0, Keycloak, Entra ID) name the client here.
    azp: str | None = None

    @property
    def scopes(self) -> list[str]:
        listed = self.scp.split() if isinstance(self.scp, str) else (self.scp or [])
        return list(dict.fromkeys([*self.scope.split(), *listed]))


class _ServerMetadata(BaseModel):
    """RFC 8414 / OpenID Connect Discovery metadata: the fields this server reads."""

    issuer: str
    jwks_uri: str


class _Jwks(BaseModel):
    """A JWK Set (RFC 7517 §5); PyJWT reads each key."""

    keys: list[dict[str, Any]]


class _Refused(Exception):
    """A token failed a check; the message names the check, never the token."""


def _metadata_urls(issuer: str) -> list[str]:
    parts = urlsplit(issuer)
    return [
        # OpenID Connect Discovery 1.0 §4: appended to the issuer.
        issuer.rstrip("/") + "/.well-known/openid-configuration",
        # RFC 8414 §3.1: inserted between the host and the issuer's path.
        f"{parts.scheme}://{parts.netloc}/.well-known/oauth-authorization-server{parts.path.rstrip('/')}",
    ]


class JwtTokenVerifier:
    """The mcp SDK's `TokenVerifier` for JWT access tokens of one issuer, for one resource.

    The issuer's keys come from its JWKS, found through its metadata (OpenID Connect Discovery, then RFC 8414) and
    fetched with httpx2 on the event loop: PyJWKClient would block it with urllib, or need a worker thread per
    fetch. The keys are cached for JWKS_MAX_AGE_SECONDS; a token signed by a key not in the cache (the issuer
    rotated its keys) makes them be fetched again, at most once every REFETCH_INTERVAL_SECONDS. An issuer that
    cannot be reached is logged and its tokens refused until it can. `clock` is read for every time check, so
    tests move it instead of waiting.
    """

    def __init__(self, issuer: str, resource: str, *, clock: Callable[[], float] = time.time) -> None:
        self.issuer = issuer
        self.resource = resource
        self._clock = clock
        self._keys: dict[str | None, jwt.PyJWK] = {}
        self._loaded_at: float | None = None
        self._tried_at: float | None = None
        self._jwks_uri: str | None = None
        self._lock = anyio.Lock()
        self._verified: OrderedDict[str, VerifiedToken] = OrderedDict()

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            known = self._verified.get(token)
            if known is not None:
                self._check_times(known.claims)
                self._verified.move_to_end(token)
                return known
            verified = await self._verify(token)
        except _Refused as refusal:
            self._verified.pop(token, None)
            log.info("bearer token refused: %s", refusal)
            return None
        self._verified[token] = verified
        if len(self._verified) > VERIFIED_KEPT:
            self._verified.popitem(last=False)
        return verified

    async def _verify(self, token: str) -> VerifiedToken:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError as error:
            raise _Refused(type(error).__name__) from None
        if kid is not None and not isinstance(kid, str):
            raise _Refused("malformed key id")
        key = await self._signing_key(kid)
        if key is None:
            raise _Refused("signed by no key the issuer publishes")
        try:
            payload = jwt.decode(
                token, key, algorithms=ALGORITHMS, audience=self.resource, issuer=self.issuer,
                # PyJWT reads the wall clock; the times are checked below against the injected one.
                options={"verify_exp": False, "verify_nbf": False, "verify_iat": False,
                         "require": ["iss", "sub", "aud", "exp"]},
            )
        except jwt.PyJWTError as error:
            # The exception's name says which check failed; its text is not logged, so no part of a token can be.
            raise _Refused(type(error).__name__) from None
        try:
            claims = _Claims.model_validate(payload)
        except ValidationError:
            raise _Refused("malformed claims") from None
        self._check_times(payload)
        return VerifiedToken(
            token=token,
            # The SDK requires a client id; a server that names none leaves the principal to iss and sub.
            client_id=claims.client_id or claims.azp or "",
            scopes=claims.scopes,
            expires_at=int(claims.exp),
            resource=self.resource,
            subject=claims.sub,
            claims=payload,
        )

    def _check_times(self, claims: dict[str, Any]) -> None:
        now = self._clock()
        if now > claims["exp"] + LEEWAY_SECONDS:
            raise _Refused("expired")
        if claims.get("nbf") is not None and now < claims["nbf"] - LEEWAY_SECONDS:
            raise _Refused("not yet valid")

    async def _signing_key(self, kid: str | None) -> jwt.PyJWK | None:
        key = self._cached(kid)
        if key is not None:
            return key
        async with self._lock:
            # A request that held the lock may have fetched the keys meanwhile.
            key = self._cached(kid)
            if key is None and (self._tried_at is None or self._clock() - self._tried_at >= REFETCH_INTERVAL_SECONDS):
                await self._fetch_keys()
                key = self._cached(kid)
        return key

    def _cached(self, kid: str | None) -> jwt.PyJWK | None:
        if self._loaded_at is None or self._clock() - self._loaded_at >= JWKS_MAX_AGE_SECONDS:
            return None
        return self._keys.get(kid)

    async def _fetch_keys(self) -> None:
        self._tried_at = self._clock()
        try:
            async with httpx2.AsyncClient(verify=tls_context(), timeout=FETCH_TIMEOUT_SECONDS) as http:
                if self._jwks_uri is None:
                    self._jwks_uri = await self._discover(http)
                response = await http.get(self._jwks_uri)
                response.raise_for_status()
                keys = jwt.PyJWKSet(_Jwks.model_validate_json(response.content).keys).keys
        except (httpx2.HTTPError, ValueError, jwt.PyJWTError) as error:
            log.warning("the keys of %s could not be fetched (its tokens are refused until they can): %s",
                        self.issuer, error)
            return
        self._keys = {key.key_id: key for key in keys
                      if key.algorithm_name in ALGORITHMS and key.public_key_use in (None, "sig")}
        self._loaded_at = self._tried_at

    async def _discover(self, http: httpx2.AsyncClient) -> str:
        for url in _metadata_urls(self.issuer):
            response = await http.get(url)
            if response.status_code == 404:
                continue
            response.raise_for_status()
            metadata = _ServerMetadata.model_validate_json(response.content)
            # RFC 8414 §3.3: metadata that names another issuer must not be used (a mix-up or an impersonation).
            # Only a trailing "/" may differ from what the operator wrote (Auth0's identifiers end with one, and
            # its console shows them both ways); from then on the issuer's own spelling is what tokens must carry.
            if metadata.issuer.rstrip("/") != self.issuer.rstrip("/"):
                raise ValueError(f"{url} names the issuer {metadata.issuer!r}")
            self.issuer = metadata.issuer
            return metadata.jwks_uri
        raise ValueError(f"{self.issuer} publishes no authorization server metadata")
