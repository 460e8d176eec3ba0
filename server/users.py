"""Who a tool call is for: one small frozen value that the transport builds and every layer reads.

Locally the user is the one person whose host started the server (`UserContext.local()`); a hosted
deployment makes one from each request's verified access token. Everything below (the store's rows,
the NemoVideo credentials, where videos go) is chosen by it, so the local mode is simply the one-user
case of the same code.
"""

from __future__ import annotations

from dataclasses import dataclass

# The one user of a local server: stable when a home folder moves to another machine or account.
LOCAL_USER = "local"


@dataclass(frozen=True)
class UserContext:
    # "local", or "<issuer>|<subject>" of a verified token: an OAuth subject is unique only within its issuer.
    user_id: str

    @classmethod
    def local(cls) -> UserContext:
        return cls(LOCAL_USER)
