"""Every table's retention rule, run by each server process at its first tool call and then hourly.

The rules hold for all users' rows at once, so one run per process (per replica when hosted) does for every
user, however many come and go; a run per user's service would repeat the same deletes with each of them.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import anyio

from .errors import NemoError
from .logs import get_logger

if TYPE_CHECKING:
    from .store import Store

log = get_logger("housekeeping")

HOUSEKEEPING_SECONDS = 3600.0


async def keep_tidy(store: Store, api_url: str) -> None:
    while True:
        await tidy(store, api_url, time.time())
        await anyio.sleep(HOUSEKEEPING_SECONDS)


async def tidy(store: Store, api_url: str, now: float) -> None:
    from .auth import MINT_ALLOWANCE_SECONDS
    from .export import FINISHED_RENDERS_KEPT_SECONDS, UNFINISHED_RENDERS_KEPT_SECONDS
    from .jobs import FINISHED_JOB_LIFETIME_SECONDS
    from .sessions import PROJECT_KEPT_SECONDS

    rules = {
        # A job's record goes a day after it finished, or after its process was last heard of.
        "jobs": lambda: store.prune_jobs(now - FINISHED_JOB_LIFETIME_SECONDS),
        # A finished render's record after 30 days; one still "rendering" (its process and render long gone)
        # after a day.
        "renders": lambda: store.prune_renders(now - UNFINISHED_RENDERS_KEPT_SECONDS,
                                               now - FINISHED_RENDERS_KEPT_SECONDS),
        # Projects unused for PROJECT_KEPT_SECONDS (never a current one), and pointers to projects that are gone.
        "projects": lambda: store.prune_projects(now - PROJECT_KEPT_SECONDS),
        # Tokens of other API hosts (old sandbox ports, a changed NEMO_API_URL) a week past their expiry; this
        # host's token stays until the backend rejects it.
        "tokens": lambda: store.prune_tokens(api_url, now - MINT_ALLOWANCE_SECONDS),
    }
    for table, prune in rules.items():
        try:
            await prune()
        except NemoError as error:  # a store that cannot be used: its sentence says why, a traceback no more
            log.warning("Tidying the %s failed; it runs again later: %s", table, error.message)
        except Exception:
            log.warning("Tidying the %s failed; it runs again later", table, exc_info=True)
