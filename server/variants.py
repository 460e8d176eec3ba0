"""The five published skills this codebase ships, as data, and the SKILL.md each one gets.

Every variant is the same server under another name: the name and version in its
SKILL.md frontmatter become `X-Skill-Source` and `X-Skill-Version`, so each published
skill is credited for its own traffic. The wording of each variant comes from its seed
(its greeting, examples, tips, formats and size limit); the body around it is shared,
so the guidance on tools and waiting never diverges between the five.
"""

from __future__ import annotations

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from .media import ACCEPTED_FORMATS
from .texts import RULES, TOOLS

DISTRIBUTION = "nemovideo-mcp"
REQUIRES = "Requires Python 3.11+ and uv (uvx); the MCP server runs on this computer and talks to NemoVideo's cloud."

# Agent Skills: at most 64 lowercase letters, digits and single hyphens, no hyphen at either end.
SKILL_NAME_PATTERN = r"^[a-z0-9]+(-[a-z0-9]+)*$"
MAX_NAME_CHARS = 64
MAX_DESCRIPTION_CHARS = 1024

HOW_IT_RUNS = (
    "Runs on NemoVideo's cloud through the bundled MCP server, which connects, waits and saves the MP4 for you; "
    "no account needed (free starter credits), or set NEMO_TOKEN."
)


class Variant(BaseModel):
    model_config = ConfigDict(frozen=True)

    seed: str = Field(description="the number of the seed skill doc this variant publishes")
    name: str = Field(pattern=SKILL_NAME_PATTERN, max_length=MAX_NAME_CHARS)
    version: str = "1.0.0"
    title: str = Field(description="'<display name> — <what it does>', the SKILL.md heading")
    pitch: str = Field(description="the seed's own sales line; the skill description is this plus HOW_IT_RUNS")
    emoji: str
    greeting: str
    walkthrough: str = Field(description="the seed's worked example, input to MP4")
    example_request: str = Field(description="the concrete request the seed recommends over vague ones")
    try_saying: tuple[str, ...] = Field(min_length=1)
    tips: tuple[str, ...]
    accepted_formats: tuple[str, ...] = ACCEPTED_FORMATS
    recommended_formats: tuple[str, ...]
    max_upload_mb: int = Field(gt=0)

    @property
    def display_name(self) -> str:
        return self.title.split(" — ")[0]

    @property
    def description(self) -> str:
        return f"{self.pitch} {HOW_IT_RUNS}"

    @model_validator(mode="after")
    def description_fits_agent_skills(self) -> Variant:
        if len(self.description) > MAX_DESCRIPTION_CHARS:
            raise ValueError(f"{self.name}: the description is {len(self.description)} chars, "
                             f"Agent Skills allow {MAX_DESCRIPTION_CHARS}")
        return self


# Every variable is optional: a required one would make ClawHub's scanner demand a token
# that the server obtains by itself (a free anonymous token).
ENV_VARS: tuple[tuple[str, str], ...] = (
    ("NEMO_TOKEN", "NemoVideo token; without it the skill obtains a free anonymous token itself."),
    ("NEMO_OUTPUT_DIR", "Where exported videos are saved (default ~/Downloads)."),
    ("NEMO_API_URL", "API base URL (default https://mega-api-prod.nemovideo.ai)."),
    ("NEMO_WEB_URL", "Web app base URL for links shown to the user (default https://nemovideo.com)."),
    ("NEMO_CLIENT_ID", "Client id for anonymous tokens (default a UUID kept in ~/.config/nemovideo/client_id)."),
    ("SKILL_SOURCE", "Overrides the detected install platform sent as X-Skill-Platform."),
    ("NEMO_MAX_UPLOAD_MB", "Largest file the upload tool accepts, in MB (default this skill's {max_upload_mb})."),
    ("NEMO_SKILL_DIR", "The skill folder whose SKILL.md the server speaks for; the manifests set it."),
)

VARIANTS: tuple[Variant, ...] = (
    Variant(
        seed="000",
        name="generator-from-music",
        title="Generator From Music — Create Videos From Music Tracks",
        pitch="Create videos from music tracks. Got audio files to work with? Send an MP3, WAV, AAC or M4A "
        "(up to 200 MB), say something like \"create a video with visuals synced to this music track\", and get "
        "a 1080p MP4 back in about 1-2 minutes. For musicians, content creators and marketers.",
        emoji="🎵",
        greeting="Got audio files to work with? Send them over and tell me what you need — I'll take care of "
        "the AI video creation.",
        walkthrough="Say you have a 3-minute MP3 track and want to create a video with visuals synced to this "
        "music track — the backend processes it in about 1-2 minutes and hands you a 1080p MP4.",
        example_request="create a video with visuals synced to this music track",
        try_saying=(
            "generate a 3-minute MP3 track into a 1080p MP4",
            "create a video with visuals synced to this music track",
            "generating videos from music tracks for musicians, content creators, marketers",
        ),
        tips=(
            "Shorter tracks under 2 minutes produce faster and more visually consistent results.",
            "MP3 at 320kbps gives the best balance of audio quality and file size.",
        ),
        recommended_formats=("MP3", "WAV", "AAC"),
        max_upload_mb=200,
    ),
    Variant(
        seed="001",
        name="ai-music-generator-free-ab-old",
        title="AI Music Generator Free — Music for Your Video Clips",
        pitch="AI music generation for video clips. Send your video clips (MP4, MOV, AVI, WebM, up to 500 MB) "
        "and ask for something like \"generate a free background music track that matches the mood of my "
        "video\"; matched music comes back in roughly 20-40 seconds, ready to export at 1080p. No file? Just "
        "describe what you need.",
        emoji="🎼",
        greeting="Send me your video clips and I'll generate the music for them. No file? Just describe what "
        "you need.",
        walkthrough="A quick walkthrough: upload a 60-second travel montage video → ask to generate a free "
        "background music track that matches the mood of my video → wait roughly 20-40 seconds → download your "
        "MP4 at 1080p. The backend handles rendering, encoding, all of it.",
        example_request="generate a free background music track that matches the mood of my video",
        try_saying=(
            "generate a free background music track that matches the mood of my video",
            "swap the music and adjust the colors",
            "export at 1080p in MP4",
        ),
        tips=(
            "Shorter videos get matched music faster and more accurately.",
            "Export as MP4 for widest compatibility.",
        ),
        recommended_formats=("MP4", "MOV", "AVI", "WebM"),
        max_upload_mb=500,
    ),
    Variant(
        seed="002",
        name="video-to-generator",
        title="Video to Generator — Generate New Videos From Footage",
        pitch="Generate new videos from footage. Share your existing video clips (MP4, MOV, AVI, WebM, up to "
        "500 MB), say something like \"turn this video into a new short promotional clip with music and "
        "transitions\", and get a 1080p MP4 back in about 1-2 minutes. Or just tell me what you're thinking.",
        emoji="🎬",
        greeting="Share your existing video clips and I'll get started on AI video generation. Or just tell me "
        "what you're thinking.",
        walkthrough="Say you have a 2-minute product demo video and want to turn this video into a new short "
        "promotional clip with music and transitions — the backend processes it in about 1-2 minutes and hands "
        "you a 1080p MP4.",
        example_request="turn this video into a new short promotional clip with music and transitions",
        try_saying=(
            "generate a new video from my existing video clips",
            "export 1080p MP4",
            "turn this video into a new short promotional clip with music and transitions",
        ),
        tips=(
            "Shorter source clips under 60 seconds produce faster and more focused output.",
            "Export as MP4 for widest compatibility.",
        ),
        recommended_formats=("MP4", "MOV", "AVI", "WebM"),
        max_upload_mb=500,
    ),
    Variant(
        seed="003",
        name="ai-with-music",
        title="AI With Music — Add Music to Videos Automatically",
        pitch="Get music-enhanced videos ready to post, without touching a single slider. Upload your video "
        "clips (MP4, MOV, AVI, WebM, up to 500MB), say something like \"add background music that matches the "
        "mood of my video\", and get a 1080p MP4 back in roughly 30-60 seconds.",
        emoji="🎶",
        greeting="Share your video clips and I'll get started on AI music addition. Or just tell me what "
        "you're thinking.",
        walkthrough="A quick example: upload a 60-second travel montage clip, type \"add background music that "
        "matches the mood of my video\", and you'll get a 1080p MP4 back in roughly 30-60 seconds. All rendering "
        "happens server-side.",
        example_request="add background music that matches the mood of my video",
        try_saying=(
            "add music to my video clips",
            "export 1080p MP4",
            "add background music that matches the mood of my video",
        ),
        tips=(
            "Shorter clips allow the AI to match music tempo more accurately.",
            "Export as MP4 for widest compatibility.",
        ),
        recommended_formats=("MP4", "MOV", "AVI", "WebM"),
        max_upload_mb=500,
    ),
    Variant(
        seed="004",
        name="music-ab2n-0330",
        title="Music AB2N 0330 — Turn Audio Tracks Into Videos",
        pitch="Get synced music videos ready to post, without touching a single slider. Upload your audio files "
        "(MP3, WAV, MP4, MOV, up to 500MB), say something like \"sync visuals to the beat and generate a music "
        "video for track ab2n 0330\", and get a 1080p MP4 back in roughly 1-2 minutes.",
        emoji="🎧",
        greeting="Got audio files to work with? Send them over and tell me what you need — I'll take care of "
        "the AI music video creation.",
        walkthrough="A quick example: upload a 3-minute MP3 track recorded March 30th, type \"sync visuals to "
        "the beat and generate a music video for track ab2n 0330\", and you'll get a 1080p MP4 back in roughly "
        "1-2 minutes. All rendering happens server-side.",
        example_request="sync visuals to the beat and generate a music video for track ab2n 0330",
        try_saying=(
            "create a 3-minute MP3 track recorded March 30th into a 1080p MP4",
            "sync visuals to the beat and generate a music video for track ab2n 0330",
            "generating music videos from audio tracks for musicians and content creators",
        ),
        tips=(
            "Shorter audio segments under 3 minutes render noticeably faster.",
            "Export as MP4 for widest compatibility across streaming and social platforms.",
        ),
        recommended_formats=("MP3", "WAV", "MP4", "MOV"),
        max_upload_mb=500,
    ),
)

# The repository's own SKILL.md and manifest.yaml are this variant's.
TOP_LEVEL_VARIANT = "generator-from-music"


def variant_named(name: str) -> Variant:
    for variant in VARIANTS:
        if variant.name == name:
            return variant
    raise KeyError(f"no variant named {name!r}; the variants are: {', '.join(v.name for v in VARIANTS)}")


BODY = """\
# {title}

{greeting}

This skill comes with an MCP server, `nemovideo-mcp` (Python 3.11+, started with `uvx` as this
folder's `manifest.json` and `.claude-plugin/plugin.json` say), that talks to NemoVideo's cloud
video backend. The server connects, authenticates and identifies itself on its own: do not call
the NemoVideo HTTP API yourself, use the tools.

{walkthrough}

## Try saying

{try_saying}

## Tools

| tool | what it does |
|---|---|
{tool_rows}

## Rules

{rules}

## Files

Accepted: {accepted_formats}; up to {max_upload_mb} MB each.
Stick to {recommended_formats} for the smoothest experience. Too large? Suggest compressing or trimming.

## Tips

- The backend works faster when you're specific: "{example_request}" beats "make it look better".
{tips}
"""


def frontmatter(variant: Variant) -> dict:
    return {
        "name": variant.name,
        "description": variant.description,
        "license": "MIT",
        "compatibility": REQUIRES,
        # Agent Skills allow no top-level `version`; the server reads it here (identity.py).
        "metadata": {
            "version": variant.version,
            "openclaw": {
                "emoji": variant.emoji,
                "primaryEnv": "NEMO_TOKEN",
                # No `requires.env`: a required token would block installs, and the server gets one itself.
                "requires": {"bins": ["nemovideo-mcp"]},
                "install": [{"id": "uv", "kind": "uv", "package": DISTRIBUTION, "bins": ["nemovideo-mcp"]}],
                "envVars": [
                    {"name": name, "required": False,
                     "description": description.format(max_upload_mb=variant.max_upload_mb)}
                    for name, description in ENV_VARS
                ],
            },
            # Read by the server (identity.py): the upload limit this skill states.
            "nemovideo": {"max_upload_mb": variant.max_upload_mb},
        },
    }


def render_skill_md(variant: Variant) -> str:
    header = yaml.safe_dump(frontmatter(variant), sort_keys=False, allow_unicode=True, width=100)
    body = BODY.format(
        title=variant.title,
        greeting=variant.greeting,
        walkthrough=variant.walkthrough,
        try_saying="\n".join(f'- "{example}"' for example in variant.try_saying),
        tool_rows="\n".join(f"| `{tool.name}` | {tool.description} |" for tool in TOOLS),
        rules="\n".join(f"- {rule}" for rule in RULES),
        accepted_formats=", ".join(variant.accepted_formats),
        max_upload_mb=variant.max_upload_mb,
        recommended_formats=", ".join(variant.recommended_formats),
        example_request=variant.example_request,
        tips="\n".join(f"- {tip}" for tip in variant.tips),
    )
    return f"---\n{header}---\n\n{body}"
