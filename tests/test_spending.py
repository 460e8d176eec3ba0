"""When a paid turn is asked about first (issue 18): NemoVideo's documented estimates against the balance and the
user's own limit, NEMO_CONFIRM_ABOVE."""

from __future__ import annotations

import pytest
from mcp import Client

from nemovideo_mcp.settings import Settings
from nemovideo_mcp.spending import CHEAPEST_PAID_TURN, question
from nemovideo_mcp.tools import build_server

pytestmark = pytest.mark.anyio


def test_a_new_anonymous_accounts_first_generation_is_not_asked_about() -> None:
    assert question(100, 100, None, generation=True) is None


def test_a_balance_below_the_cheapest_paid_turn_is_asked_about() -> None:
    asked = question(50, CHEAPEST_PAID_TURN - 1, None, generation=False)
    assert asked and "about 50 credits for an editing turn" in asked and "49 available" in asked


def test_the_users_limit_is_asked_about_only_above_it() -> None:
    assert "NEMO_CONFIRM_ABOVE" in question(100, 500, 80, generation=True)
    assert question(50, 500, 80, generation=False) is None


def test_a_balance_that_cannot_be_read_still_honours_the_users_limit() -> None:
    assert question(100, None, None, generation=True) is None
    assert "could not be read" in question(100, None, 80, generation=True)


def test_nemo_confirm_above_is_read_from_the_environment() -> None:
    assert Settings.from_env({"HOME": "/tmp", "NEMO_CONFIRM_ABOVE": "80"}).confirm_above == 80
    for unusable in ("", "lots", "-5", "nan"):
        assert Settings.from_env({"HOME": "/tmp", "NEMO_CONFIRM_ABOVE": unusable}).confirm_above is None


async def test_above_the_users_limit_nothing_is_sent_until_they_agree(sandbox, settings, identity) -> None:
    limited = settings.model_copy(update={"confirm_above": 80})
    async with Client(build_server(limited, identity)) as client:
        asked = await client.call_tool("chat", {"message": "create a video with visuals synced to this music track"})
        assert asked.structured_content["status"] == "needs_input" and sandbox.count("/run_sse") == 0
        assert asked.structured_content["cost_estimate"] == 100
        sent = await client.call_tool("chat", {"message": "create a video with visuals synced to this music track",
                                               "confirm_cost": True})
    assert sent.structured_content["status"] == "done" and sandbox.count("/run_sse") == 1
