"""Configuration from the environment, with the names of the official NemoVideo skill.

One config serves both our server and the official skill, so a user who already
set `NEMO_TOKEN` or `NEMO_API_URL` for one gets the same behaviour from the other.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from .logs import get_logger
from .media import ACCEPTED_FORMATS, normalise_formats

log = get_logger("settings")

DEFAULT_API_URL = "https://mega-api-prod.nemovideo.ai"
DEFAULT_WEB_URL = "https://nemovideo.com"
# backend.md's list (media.py); configurable (NEMO_ACCEPTED_FORMATS) should the backend take more.
DEFAULT_ACCEPTED_FORMATS = ACCEPTED_FORMATS
DEFAULT_MAX_UPLOAD_MB = 500
# A host may hand a setting over with its placeholder unfilled: MCPB and Claude Desktop pass
# `${user_config.nemo_token}` literally for an optional field left blank (mcpb issue 250), and
# a default such as `${HOME}/Downloads` arrives as written. No such value is meant literally
# (as a token every request fails, as a folder it names one called `${HOME}`), and which
# expansion was meant is the host's to know, so any value still holding one counts as unset.
UNFILLED = re.compile(r"\$\{[^}]*\}")


def env_number(env: Mapping[str, str], name: str, usable: Callable[[float], bool]) -> float | None:
    """`name`'s value as a number when it is set, a number, and `usable`; else None (not set). NaN is never usable."""
    try:
        value = float(env_value(env, name) or "nan")
    except ValueError:
        return None
    return value if not math.isnan(value) and usable(value) else None


def env_value(env: Mapping[str, str], name: str) -> str:
    """`name`'s value, stripped: "" when it is unset, blank or still holds a host's unfilled placeholder."""
    value = env.get(name, "").strip()
    unfilled = UNFILLED.search(value)
    if unfilled:
        # Info, not a warning: a setting left blank in the host arrives so. Only the placeholder
        # is shown: the rest of the value may be part of a token.
        log.info("%s still holds %s, which its host did not fill in: treated as unset.",
                 name, unfilled.group())
        return ""
    return value


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)

    token: SecretStr | None = Field(default=None, description="NEMO_TOKEN: a user-set bearer token")
    api_url: str = DEFAULT_API_URL
    web_url: str = DEFAULT_WEB_URL
    client_id: str | None = Field(default=None, description="NEMO_CLIENT_ID; else persisted in config_dir")
    skill_source: str | None = Field(default=None, description="SKILL_SOURCE: overrides the detected platform")
    skill_dir: Path | None = Field(default=None, description="NEMO_SKILL_DIR: the skill folder whose SKILL.md we speak for")
    output_dir: Path
    config_dir: Path
    state_dir: Path
    # None: the skill's own limit (its SKILL.md), else DEFAULT_MAX_UPLOAD_MB; see `with_skill_limits`.
    max_upload_bytes: int | None = None
    accepted_formats: tuple[str, ...] = DEFAULT_ACCEPTED_FORMATS
    request_timeout_seconds: float = 30.0
    # NEMO_CONFIRM_ABOVE: a paid turn whose documented estimate is above this many credits is asked about first.
    confirm_above: float | None = Field(default=None, ge=0)
    # Chat turns (backend.md): at most 15 minutes; 10 minutes without a real event means the turn died.
    turn_max_seconds: float = 15 * 60
    turn_quiet_seconds: float = 10 * 60
    # After a dropped stream, state is polled on this schedule (the last delay repeats) until
    # it changes, or until recovery_give_up_seconds pass unchanged.
    recovery_delays_seconds: tuple[float, ...] = (2.0, 5.0, 10.0, 20.0, 30.0)
    recovery_give_up_seconds: float = 5 * 60
    # Render polling follows the render's progress (export.next_poll_delay); tests shrink its clock.
    render_poll_scale: float = Field(default=1.0, gt=0)
    # Ask ADK for partial text (`"streaming": true`); NEMO_STREAMING=0 turns it off for a proxy that chokes on it.
    stream_text: bool = True
    # Generation is two-stage: music and titles land after the stream ended. The project is
    # watched this long after a turn, on this schedule (the last delay repeats).
    late_write_watch_seconds: float = 3 * 60
    late_write_delays_seconds: tuple[float, ...] = (2.0, 5.0, 10.0, 15.0, 30.0)
    # Any other turn that called a tool or changed the project is watched this long (its write may be in flight).
    late_write_brief_watch_seconds: float = 60.0
    # A hosted deployment (README, "Hosting it for others"): where users reach it, its database, the OAuth
    # issuer whose access tokens it accepts and the scopes they must carry. None of them: the local server.
    public_url: str | None = None
    database_url: SecretStr | None = Field(default=None, description="NEMO_DATABASE_URL: postgresql://…")
    auth_issuer: str | None = None
    auth_scopes: tuple[str, ...] = ()
    secret_key: SecretStr | None = Field(default=None, description="NEMO_SECRET_KEY: seals stored tokens")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        home = Path(env_value(env, "HOME") or Path.home())

        def env_path(name: str, default: Path | None) -> Path | None:
            value = env_value(env, name)
            return Path(value).expanduser() if value else default

        config_home = env_path("XDG_CONFIG_HOME", home / ".config")
        state_home = env_path("XDG_STATE_HOME", home / ".local" / "state")
        token = env_value(env, "NEMO_TOKEN")
        formats = normalise_formats(tuple(
            part.strip() for part in env_value(env, "NEMO_ACCEPTED_FORMATS").split(",") if part.strip()
        ))
        max_upload_mb = env_number(env, "NEMO_MAX_UPLOAD_MB", lambda value: value > 0)
        confirm_above = env_number(env, "NEMO_CONFIRM_ABOVE", lambda value: value >= 0)
        return cls(
            token=SecretStr(token) if token else None,
            api_url=(env_value(env, "NEMO_API_URL") or DEFAULT_API_URL).rstrip("/"),
            web_url=(env_value(env, "NEMO_WEB_URL") or DEFAULT_WEB_URL).rstrip("/"),
            client_id=env_value(env, "NEMO_CLIENT_ID") or None,
            skill_source=env_value(env, "SKILL_SOURCE") or None,
            skill_dir=env_path("NEMO_SKILL_DIR", None),
            output_dir=env_path("NEMO_OUTPUT_DIR", home / "Downloads"),
            config_dir=config_home / "nemovideo",
            state_dir=state_home / "nemovideo",
            max_upload_bytes=int(max_upload_mb * 1024 * 1024) if max_upload_mb else None,
            confirm_above=confirm_above,
            accepted_formats=formats or DEFAULT_ACCEPTED_FORMATS,
            stream_text=env_value(env, "NEMO_STREAMING").lower() not in ("0", "false", "no", "off"),
            public_url=env_value(env, "NEMO_PUBLIC_URL").rstrip("/") or None,
            database_url=SecretStr(database_url) if (database_url := env_value(env, "NEMO_DATABASE_URL")) else None,
            auth_issuer=env_value(env, "NEMO_AUTH_ISSUER") or None,  # as written: issuers are compared exactly
            secret_key=SecretStr(secret_key) if (secret_key := env_value(env, "NEMO_SECRET_KEY")) else None,
            auth_scopes=tuple(scope for scope in re.split(r"[\s,]+", env_value(env, "NEMO_AUTH_SCOPES")) if scope),
        )

    @property
    def hosted(self) -> bool:
        """Serving users who reach it by URL, each with their own verified access token."""
        return self.auth_issuer is not None

    def with_skill_limits(self, skill_max_upload_mb: float | None) -> Settings:
        """NEMO_MAX_UPLOAD_MB when set, else the limit the skill's SKILL.md states, else the default."""
        if self.max_upload_bytes is not None:
            return self
        megabytes = skill_max_upload_mb or DEFAULT_MAX_UPLOAD_MB
        return self.model_copy(update={"max_upload_bytes": int(megabytes * 1024 * 1024)})

    def with_api_url(self, api_url: str) -> Settings:
        return self.model_copy(update={"api_url": api_url.rstrip("/")})
