"""What a host is told, in one wording: the tools' descriptions and the rules for using them.

The MCP server sends these as its `instructions` and tool descriptions (hosts such as Claude
Desktop and Claude Code read nothing else), and SKILL.md's Tools and Rules sections are
generated from the same strings, so the two never drift apart.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ToolGuide(BaseModel):
    """A tool as the host should understand it: its MCP description, manifest entry and SKILL.md row."""

    model_config = ConfigDict(frozen=True)

    name: str
    title: str
    description: str = Field(min_length=1)


TOOLS: tuple[ToolGuide, ...] = (
    ToolGuide(name="chat", title="Make or edit the video",
              description="Send the user's request, in their words, to NemoVideo's video agent: generate a video, "
              "edit it, add or change music, titles, captions, timing. Balance and timeline questions are answered "
              "directly. Returns the reply to show, what changed, and next_actions. Long work returns status "
              "'working' with a job_id: call `wait`, never `chat` again with the same request."),
    ToolGuide(name="upload", title="Upload media",
              description="Upload local files (absolute paths) and/or http(s) links to the current project: video, "
              "audio or images. Checks each file first (exists, accepted type, size limit) and sends nothing if one "
              "is wrong. A file attached to the conversation is not a file on this computer: ask for its path or "
              "a link."),
    ToolGuide(name="export", title="Export the video",
              description="Render the current project as an MP4 and save it on this computer (default ~/Downloads "
              "or NEMO_OUTPUT_DIR). Costs no credits. Returns the file path. Renders take 30-90 s: a 'working' "
              "result carries a job_id for `wait`; calling export again re-attaches instead of rendering twice."),
    ToolGuide(name="wait", title="Continue waiting",
              description="Continue waiting for a job that a previous call returned as status 'working' (or a "
              "follow_up_job_id). Returns the same result shape; call again while it is still working, telling the "
              "user it is still working. Job ids stay valid for 24 hours, across server restarts and in every "
              "server process on this computer."),
    ToolGuide(name="credits", title="Credit balance",
              description="Show the NemoVideo credit balance: available, frozen (reserved by running work) and "
              "total. Use it when the user asks about credits or balance. Exporting costs no credits."),
    ToolGuide(name="state", title="Timeline",
              description="Show what is on the current project's timeline, one line per track (video clips, "
              "background music with volume, titles and text with their times). Use it when the user asks for the "
              "status, the tracks, or what the video contains."),
    ToolGuide(name="projects", title="Projects",
              description="The user's video projects: 'list' them ten at a time, most recent first (name, when, "
              "what is on them, link; `page` for older ones, or `project` with words to search for), start a 'new' "
              "empty project (for a second video; give its name), or 'switch' back to one (by its number from the "
              "list, or a word of its name). chat, upload, export and state work on the current project."),
    ToolGuide(name="cancel", title="Cancel a job",
              description="Cancel a job that a previous call returned with a job_id. A render is stopped at "
              "NemoVideo. For a chat request the skill stops following it, but work NemoVideo already started may "
              "still finish and be charged: tell the user so. Use only when the user asks to stop."),
)

# Tools only the MCP Apps views call (`_meta.ui.visibility: ["app"]`): hosts that render Apps keep them from the
# model; manifests and SKILL.md do not list them.
APP_TOOLS: tuple[ToolGuide, ...] = (
    ToolGuide(name="add_dropped_file", title="Receive a file dropped in the timeline view",
              description="Only for NemoVideo's timeline view, which sends a file the user dropped there in parts. "
              "Never call it yourself: to upload a file, use `upload`."),
)

TOOL_TEXT = {tool.name: tool for tool in (*TOOLS, *APP_TOOLS)}

ABOUT = (
    "NemoVideo makes and edits videos in the cloud. Send what the user wants (generate, edit, add music or "
    "titles) to `chat`; `upload` sends the user's files or links, `export` renders and saves the MP4, "
    "`credits` shows the balance, `state` the timeline and `projects` the user's projects."
)

RULES: tuple[str, ...] = (
    "Never send the same request twice: not to `chat` because it is taking long or a call failed, not to "
    "`export` while a render runs. It would duplicate the work and spend credits twice. Continue with `wait`, "
    "or look with `state`.",
    "The first call may take a few seconds while the server connects: say \"Setting up…\". Generation takes "
    "1–5 minutes and an export 30–90 seconds. A result with status \"working\" carries a `job_id`: tell the "
    "user \"⏳ Still working…\" and call `wait` with that `job_id` until the status is \"done\".",
    "Status \"needs_input\" means NemoVideo asked the user a question (the `reply`): ask the user and send "
    "their answer with `chat`; do not call `wait`.",
    "A generation's result (`generated`: true) may say that NemoVideo will still add music or titles: show the "
    "result, then `wait` with its `follow_up_job_id` to report what was added. After an edit, anything that lands "
    "late comes with the next result: no need to wait. `cancel` stops a job only when the user asks to stop.",
    "Files attached to the conversation are not files on this computer: `upload` takes a local path or an "
    "http(s) link, so ask the user for one of those.",
    "Show a result's `reply` or `summary` as it is; it is written for people. If a result has a `notice`, tell "
    "the user (for example that a new project was started). Never show tokens, session or job ids, raw JSON "
    "or HTTP details.",
    "Tool errors are written for the user: pass them on and follow their advice. An \"export needs a registered "
    "account\" error is about the plan, not about credits: give the user the project link it contains, and once "
    "they have an account token they run `nemovideo-mcp login`; then export again.",
    "After an export, tell the user where the MP4 was saved. Exporting costs no credits.",
)

INSTRUCTIONS = ABOUT + "\n\nRules:\n" + "\n".join(f"- {rule}" for rule in RULES)

# A hosted server (README, "Hosting it for others") reads no file of the user's and writes none: these rules
# replace the local ones that say otherwise.
HOSTED_RULES = {
    RULES.index(next(rule for rule in RULES if rule.startswith("Files attached"))):
        "Files on the user's computer reach this server through a page of its own: `upload` with their paths "
        "answers with that page's link; give it to the user, and once the files have arrived, go on.",
    RULES.index(next(rule for rule in RULES if rule.startswith("Tool errors are written"))):
        "Tool errors are written for the user: pass them on and follow their advice. When an error offers a page "
        "to link the user's NemoVideo account, give them its link; once they have linked it, try again.",
    RULES.index(next(rule for rule in RULES if rule.startswith("After an export"))):
        "After an export, give the user the download link from the result. Exporting costs no credits.",
}
HOSTED_INSTRUCTIONS = ABOUT + "\n\nRules:\n" + "\n".join(
    f"- {HOSTED_RULES.get(number, rule)}" for number, rule in enumerate(RULES))
