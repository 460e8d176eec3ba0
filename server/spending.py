"""What a paid turn costs, as NemoVideo documents it, and when the user is asked before one is sent.

backend.md (the published API reference): a generated clip costs about 100 credits, an editing turn
about 50, an export nothing; a new anonymous account's 100 credits buy one generation. The server asks
first only when the turn cannot succeed (fewer credits than the cheapest paid turn) or when its estimate
is above the limit the user set (NEMO_CONFIRM_ABOVE); otherwise a first generation goes ahead unasked.
"""

from __future__ import annotations

GENERATION_ESTIMATE = 100
EDIT_ESTIMATE = 50
CHEAPEST_PAID_TURN = EDIT_ESTIMATE


def estimate(generation: bool) -> int:
    return GENERATION_ESTIMATE if generation else EDIT_ESTIMATE


def amount(value: float) -> str:
    return f"{value:g}"


def question(estimated: int, available: float | None, confirm_above: float | None, generation: bool) -> str | None:
    """The question to ask before sending, or None when the turn goes ahead unasked. A balance that could not be
    read (None) skips only the check that needs it: the user's own limit is still asked about."""
    what = "generating a video" if generation else "an editing turn"
    if available is not None and available < CHEAPEST_PAID_TURN:
        return (f"NemoVideo documents about {estimated} credits for {what}, and this account has "
                f"{amount(available)} available, less than the cheapest paid turn (about {CHEAPEST_PAID_TURN}): "
                "it will probably be refused for lack of credits. Send it anyway?")
    if confirm_above is not None and estimated > confirm_above:
        balance = (f"this account has {amount(available)} available" if available is not None
                   else "the balance could not be read just now")
        return (f"NemoVideo documents about {estimated} credits for {what}, above the {amount(confirm_above)} "
                f"credits you asked to be asked about (NEMO_CONFIRM_ABOVE); {balance}. Send it?")
    return None


def declined() -> str:
    return "Nothing was sent to NemoVideo and nothing was spent."


def cost_line(before: float, after: float) -> str:
    spent = before - after
    if spent > 0:
        return f"This turn cost {amount(spent)} credits ({amount(before)} → {amount(after)} available)."
    return f"This turn cost no credits ({amount(after)} available)."
