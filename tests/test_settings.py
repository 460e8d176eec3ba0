"""Settings from the environment as hosts hand it over, blanks included."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from nemovideo_mcp.settings import DEFAULT_API_URL, Settings

# Every variable Settings.from_env reads besides HOME.
READ = ("NEMO_TOKEN", "NEMO_API_URL", "NEMO_WEB_URL", "NEMO_CLIENT_ID", "SKILL_SOURCE", "NEMO_SKILL_DIR",
        "NEMO_OUTPUT_DIR", "NEMO_ACCEPTED_FORMATS", "NEMO_MAX_UPLOAD_MB", "NEMO_STREAMING", "XDG_CONFIG_HOME",
        "XDG_STATE_HOME")


def test_a_setting_the_host_left_as_its_placeholder_is_unset(home: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Claude Desktop passes `${user_config.nemo_token}` for a token left blank (mcpb issue 250), and a
    manifest default such as `${HOME}/Downloads` unexpanded: as a token every call would fail, as a
    folder the videos would land in one named `${HOME}`."""
    caplog.set_level(logging.INFO, logger="nemovideo.settings")
    settings = Settings.from_env({"HOME": str(home), "NEMO_TOKEN": "${user_config.nemo_token}",
                                  "NEMO_OUTPUT_DIR": "${HOME}/Downloads", "NEMO_API_URL": " ${user_config.api_url} "})
    assert settings.token is None and settings.api_url == DEFAULT_API_URL
    assert settings.output_dir == home / "Downloads"
    assert "NEMO_TOKEN still holds ${user_config.nemo_token}" in caplog.text
    assert "NEMO_OUTPUT_DIR still holds ${HOME}" in caplog.text

    every_one_unfilled = Settings.from_env({"HOME": str(home), **{name: f"${{user_config.{name.lower()}}}"
                                                                  for name in READ}})
    assert every_one_unfilled == Settings.from_env({"HOME": str(home)})
    # A dollar sign alone is no placeholder.
    kept = Settings.from_env({"HOME": str(home), "NEMO_TOKEN": "abc$def", "NEMO_OUTPUT_DIR": str(home / "$videos")})
    assert kept.token is not None and kept.token.get_secret_value() == "abc$def"
    assert kept.output_dir == home / "$videos"

