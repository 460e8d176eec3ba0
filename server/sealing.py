"""Secrets a hosted deployment keeps in its database (users' NemoVideo tokens), sealed with a key of its own.

The operator gives every replica the same NEMO_SECRET_KEY; from it HKDF derives one key per purpose, so
the key that seals tokens is never the key that signs links. Sealing is AES-GCM (authenticated: a value
changed in the database, or sealed under another key, opens to nothing), from `cryptography`, the
library PyJWT already brings for the issuer's signatures.
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MIN_SECRET_KEY_CHARS = 32
_SEALED = "sealed1."


def derive_key(secret_key: str, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(secret_key.encode())


class Sealer:
    def __init__(self, secret_key: str) -> None:
        self._aead = AESGCM(derive_key(secret_key, b"nemovideo token"))

    def seal(self, text: str) -> str:
        nonce = os.urandom(12)
        sealed = nonce + self._aead.encrypt(nonce, text.encode(), None)
        return _SEALED + base64.urlsafe_b64encode(sealed).decode()

    def open(self, sealed: str) -> str | None:
        """The text, or None for a value this key did not seal (another key, or changed since)."""
        if not sealed.startswith(_SEALED):
            return None
        try:
            raw = base64.urlsafe_b64decode(sealed[len(_SEALED):])
            return self._aead.decrypt(raw[:12], raw[12:], None).decode()
        except (ValueError, InvalidTag):
            return None
