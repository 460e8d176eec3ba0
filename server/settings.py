"""Configuration from the environment, with the names of the official NemoVideo skill.

One config serves both our server and the official skill, so a user who already
set `NEMO_TOKEN` or `NEMO_API_URL` for one gets the same behaviour from the other.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr

DEFAULT_API_URL = "https://mega-api-prod.nemovideo.ai"
DEFAULT_WEB_URL = "https://nemovideo.com"


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)

    token: SecretStr | None = Field(default=None, description="NEMO_TOKEN: a user-set bearer token")
    api_url: str = DEFAULT_API_URL
    web_url: str = DEFAULT_WEB_URL
    client_id: str | None = Field(default=None, description="NEMO_CLIENT_ID; else persisted in config_dir")
    skill_source: str | None = Field(default=None, description="SKILL_SOURCE: overrides the detected platform")
    output_dir: Path
    config_dir: Path
    state_dir: Path
    request_timeout_seconds: float = 30.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        home = Path(env.get("HOME") or Path.home())

        def env_path(name: str, default: Path) -> Path:
            value = env.get(name, "").strip()
            return Path(value).expanduser() if value else default

        config_home = env_path("XDG_CONFIG_HOME", home / ".config")
        state_home = env_path("XDG_STATE_HOME", home / ".local" / "state")
        token = env.get("NEMO_TOKEN", "").strip()
        return cls(
            token=SecretStr(token) if token else None,
            api_url=(env.get("NEMO_API_URL", "").strip() or DEFAULT_API_URL).rstrip("/"),
            web_url=(env.get("NEMO_WEB_URL", "").strip() or DEFAULT_WEB_URL).rstrip("/"),
            client_id=env.get("NEMO_CLIENT_ID", "").strip() or None,
            skill_source=env.get("SKILL_SOURCE", "").strip() or None,
            output_dir=env_path("NEMO_OUTPUT_DIR", home / "Downloads"),
            config_dir=config_home / "nemovideo",
            state_dir=state_home / "nemovideo",
        )

    def with_api_url(self, api_url: str) -> Settings:
        return self.model_copy(update={"api_url": api_url.rstrip("/")})
