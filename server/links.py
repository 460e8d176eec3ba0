"""Signed links of a hosted deployment: a browser opens them without an access token, so the link itself
says whose it is, what for, and until when.

Signed as JWTs (PyJWT, already here for the users' access tokens) with a key HKDF derives from
NEMO_SECRET_KEY for links alone, so any replica checks what any other issued, and a link for one purpose
is never accepted for another.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import jwt
from pydantic import BaseModel, ValidationError

from .sealing import derive_key

# A download link streams the render from NemoVideo; asking for the video again (export) gives a new one.
DOWNLOAD_LINK_SECONDS = 24 * 3600
# An upload page or the account page is opened at once, while the user is in the conversation.
UPLOAD_LINK_SECONDS = 3600
ACCOUNT_LINK_SECONDS = 3600


class LinkExpired(Exception):
    pass


class LinkClaims(BaseModel):
    sub: str  # the user
    purpose: str
    subject: str  # what it opens: a render id
    exp: int


class Links:
    def __init__(self, secret_key: str, public_url: str, clock: Callable[[], float] = time.time) -> None:
        self._key = derive_key(secret_key, b"nemovideo links")
        self._public_url = public_url.rstrip("/")
        self._clock = clock

    def make(self, user_id: str, purpose: str, subject: str, lifetime: float) -> str:
        claims = LinkClaims(sub=user_id, purpose=purpose, subject=subject, exp=int(self._clock() + lifetime))
        return f"{self._public_url}/{purpose}/{jwt.encode(claims.model_dump(), self._key, algorithm='HS256')}"

    def read(self, token: str, purpose: str) -> LinkClaims | None:
        """The link's claims; None when it was not signed here for `purpose`. Raises LinkExpired."""
        try:
            claims = LinkClaims.model_validate(jwt.decode(token, self._key, algorithms=["HS256"],
                                                          options={"verify_exp": False}))
        except (jwt.InvalidTokenError, ValidationError):
            return None
        if claims.purpose != purpose:
            return None
        if claims.exp < self._clock():
            raise LinkExpired()
        return claims
