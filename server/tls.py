"""One TLS context per process for every HTTPS client of ours (NemoVideo, its download hosts, the OAuth issuer).

Loading the trusted certificates takes about 0.1 s of CPU, which each user's client and each download would
pay again: a hosted replica serving fifty users spent a seventh of its time so (bench/hosted.py, py-spy).
"""

from __future__ import annotations

import functools
import ssl

import httpx2


@functools.cache
def tls_context() -> ssl.SSLContext:
    return httpx2.create_ssl_context()
