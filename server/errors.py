"""One exception hierarchy for everything that can go wrong talking to NemoVideo.

Every message is written for the person chatting with the host: what happened and
what to do next. No message ever contains a token, a raw envelope or a traceback;
the MCP layer shows `str(error)` as it is.
"""

from __future__ import annotations

from .logs import redact
from .settings import DEFAULT_ACCEPTED_FORMATS



class NemoError(Exception):
    """Base of every error this package raises on purpose."""

    code: int | None = None
    default_message = "NemoVideo could not complete the request. Please try again in a moment."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.default_message)

    @property
    def message(self) -> str:
        return str(self)


# How a user hands a local server their account token, in every host, without editing its config (a hosted
# server offers its link page instead: `NemoClient.account_hint`).
ACCOUNT_TOKEN_HINT = (
    "Create a token at nemovideo.com (Settings → API Tokens), then run `nemovideo-mcp login` in a terminal "
    "and paste it (or set NEMO_TOKEN in the host's settings for this server)."
)


class ConfigurationError(NemoError):
    """The skill cannot start or act because of local setup (SKILL.md, files, settings)."""


class StoreUnavailable(ConfigurationError):
    """The durable store (a local file or the deployment's database) cannot be used; the message names it and
    what to do."""


class NotSignedIn(ConfigurationError):
    """A hosted server got a call without a verified access token (its HTTP layer admits none such)."""

    default_message = "This server needs you to sign in first. Reconnect it in your app's connector settings."


class InvalidInput(NemoError):
    """A local check refused what the user asked for; nothing was sent to NemoVideo, so no backend code."""


# Backend codes (backend.md "Error codes"), one class each.


class AuthenticationError(NemoError):
    code = 1001
    default_message = "NemoVideo did not accept the access token, and a fresh one could not be obtained. Try again shortly."


class TokenRejected(AuthenticationError):
    """A token the user gave us (NEMO_TOKEN or `login`) was refused; we must not replace it silently."""

    def __init__(self, *, from_login: bool = False, linked_hint: str | None = None, team: bool = False) -> None:
        if linked_hint is not None:  # hosted: the account the user linked on our page
            message = ("NemoVideo rejected the token of the account you linked (expired or revoked). To go on, "
                       + linked_hint)
        elif team:  # hosted: the deployment's own account
            message = ("NemoVideo rejected this server's account token. Tell whoever runs this server: its "
                       "NEMO_TOKEN needs a current token.")
        elif from_login:
            message = (
                "NemoVideo rejected the account token saved by `nemovideo-mcp login` (expired or invalid). "
                "Run `nemovideo-mcp login` again with a current token, or `nemovideo-mcp logout` to use a free "
                "anonymous token."
            )
        else:
            message = (
                "NemoVideo rejected the token set in NEMO_TOKEN (expired or invalid). "
                "Update NEMO_TOKEN with a current token, or remove it to use a free anonymous token."
            )
        super().__init__(message)


class AnonymousTokenLimit(NemoError):
    """A 429 while minting: the backend issues one free token per client id per 7 days, and about 10 per address."""

    code = 429

    def __init__(self, hint: str = ACCOUNT_TOKEN_HINT) -> None:
        super().__init__(
            "NemoVideo gives each device one free anonymous token per 7 days (and about ten per network address), "
            "and that allowance is used, so no new free token can be issued now. To go on, use a NemoVideo "
            "account: " + hint)


class SessionNotFound(NemoError):
    code = 1002
    default_message = "The editing session no longer exists on NemoVideo; a new project has to be started."


class OutOfCredits(NemoError):
    code = 2001

    def __init__(self, *, anonymous: bool, registration_url: str | None = None,
                 web_url: str = "https://nemovideo.com", project_link: str | None = None,
                 hint: str = ACCOUNT_TOKEN_HINT) -> None:
        if anonymous:
            link = registration_url or f"{web_url}/register"
            message = (
                f"You are out of free credits. Register here to keep your project and get more credits: {link}. "
                "Then give this skill your account token: " + hint
            )
        else:
            message = f"Your NemoVideo account is out of credits. Top up at {web_url}, then try again."
        if project_link:
            message += f" Your project stays available in the browser: {project_link}"
        super().__init__(message)
        self._facts = {"anonymous": anonymous, "registration_url": registration_url, "web_url": web_url, "hint": hint}
        self.project_link = project_link
        # Where the user gets more credits: registering keeps an anonymous user's project, else topping up.
        self.action_url = (registration_url or f"{web_url}/register") if anonymous else web_url

    def with_project_link(self, project_link: str | None) -> OutOfCredits:
        return OutOfCredits(**self._facts, project_link=project_link) if project_link else self


class UnsupportedFileType(NemoError):
    code = 4001

    def __init__(self, formats: tuple[str, ...] = DEFAULT_ACCEPTED_FORMATS, *, what: str = "this file type",
                 name: str | None = None) -> None:
        lead = f"{name}: " if name else ""
        super().__init__(f"{lead}NemoVideo does not accept {what}. Accepted formats: {', '.join(formats)}.")


class FileTooLarge(NemoError):
    code = 4002
    default_message = "The file is too large for NemoVideo. Compress it or trim it to a shorter clip, then upload again."


class MissingClientId(NemoError):
    code = 400
    default_message = "NemoVideo needs a client id to issue a free token, and none could be set up. Try again."


class ExportBlocked(NemoError):
    """402: anonymous tokens lack the `render` scope; a registered account can export the same project."""

    code = 402

    def __init__(self, project_link: str | None = None, hint: str = ACCOUNT_TOKEN_HINT) -> None:
        keep = f" Your project is safe; open it in the browser: {project_link}" if project_link else ""
        super().__init__(
            "Exporting needs a registered NemoVideo account (the free anonymous plan cannot export; this is not "
            f"about credits).{keep} Register at nemovideo.com, then give this skill your account token: "
            + hint + " After that, ask to export again: the same project is exported."
        )
        self.project_link = project_link
        self.action_url = project_link  # the claim page: registering from the project keeps it


class RateLimited(NemoError):
    code = 429

    def __init__(self, retry_after: float | None = None) -> None:
        wait = f" about {int(retry_after)} seconds" if retry_after else " a minute"
        super().__init__(f"NemoVideo is rate limiting requests. Wait{wait} and try again.")
        self.retry_after = retry_after


class BackendError(NemoError):
    """A backend answer with a code we have no specific meaning for."""

    def __init__(self, code: int | None, detail: str | None = None) -> None:
        self.code = code
        what = f" (code {code})" if code is not None else ""
        # Backend text is short and user-facing in practice; keep it but never an envelope.
        # Redacted before it is cut: a token cut in two would no longer be recognised.
        extra = f": {redact(detail.strip())[:200]}" if detail and detail.strip() else ""
        super().__init__(f"NemoVideo reported an error{what}{extra}. Please try again in a moment.")


# Transport-level failures: the backend did not give an answer we can read.


class BackendUnavailable(NemoError):
    default_message = (
        "Cannot reach NemoVideo right now (network error or timeout). "
        "Check the internet connection and try again in a minute."
    )


class UnexpectedResponse(NemoError):
    """A reply in no documented style, such as a proxy's HTML 502 page.

    `call`, `status_code` and the redacted `excerpt` are for the log; the user gets a sentence, never the body.
    """

    def __init__(self, status_code: int, *, call: str | None = None, excerpt: str | None = None) -> None:
        self.status_code = status_code
        self.call = call
        self.excerpt = excerpt
        if status_code >= 500:
            message = f"NemoVideo is temporarily unavailable (HTTP {status_code}). Try again in a minute."
        else:
            message = (
                f"NemoVideo sent a reply this skill cannot read (HTTP {status_code}). "
                "Try again; if it persists, update the skill."
            )
        super().__init__(message)


class TurnFailed(NemoError):
    """A chat turn ended without doing what was asked; the message says what happened and what to do."""


class StreamInterrupted(NemoError):
    """The chat stream broke mid-turn; the work may still be going on at NemoVideo."""

    default_message = "The connection to NemoVideo dropped while it was working on your request."


ERRORS_BY_CODE: dict[int, type[NemoError]] = {
    cls.code: cls
    for cls in (AuthenticationError, SessionNotFound, OutOfCredits, UnsupportedFileType, FileTooLarge,
                MissingClientId, ExportBlocked, RateLimited)
}
