"""The backend's replies, written for an editor the user does not have, made fit for chat.

NemoVideo's agent believes the user sits in its web editor and ends replies with "Click
the Export button in the top right corner" or "在时间线中预览". Here there is no editor:
each such instruction becomes an action the caller runs through the API (backend.md, "GUI
translation"), and only the instruction leaves the reply; what the agent made or says
stays. A word alone is no instruction: "The export will take about a minute", "I opened
with a wide shot" and "a click track at 120 BPM" are content.

How: the reply is cut into sentences (. ! ? and 。！？) and each sentence into clauses (at
commas, semicolons, colons, dashes). An English instruction starts its clause ("Click",
"You can also preview"); a Chinese one may sit anywhere in its clause ("您可以在右上角点击导出").
An instruction clause goes together with the clauses that only lead into it ("To download
your video," "如需下载，") and the ones that continue it up to the next semicolon ("..., and
the file downloads"); the other clauses of the sentence stay.

Deterministic, and linear in the reply: no pattern reads a run of marks, stops or spaces once
per character in it, and lines are translated until MAX_TRANSLATED_CHARS have been; a line
that does not fit in what is left passes through as written.
"""

from __future__ import annotations

import re
from typing import Literal, cast

from pydantic import BaseModel, ConfigDict

GuiAction = Literal["export", "state", "credits", "chat"]

# What one reply may cost. About 8 pages: the agent's replies are a few paragraphs, so only a
# runaway or hostile one gets near it, and its lines past the budget reach the user as the
# agent wrote them, which is better than holding up the event loop over them.
MAX_TRANSLATED_CHARS = 20_000


# What the skill says where the agent pointed at a button; the timeline and the balance are
# shown by the caller, which fetches them.
EXPORT_OFFER = "Your video is ready to export — say the word and I'll save it."
DESCRIBE_IN_WORDS = "To move or change something, tell me in words: what, where and for how long."


class Translation(BaseModel):
    model_config = ConfigDict(frozen=True)

    text: str
    actions: list[GuiAction] = []


# Words that may come before an English instruction at the start of its clause.
_PREFIX = (
    r"^\s*(?:(?:then|now|next|first|finally|simply|just|please|also|and|so|or|you can|you could|you may"
    r"|you'll need to|you will need to|you need to|you should|feel free to|go ahead and|be sure to|make sure to"
    r"|don't forget to|remember to)\b[\s,]*)*"
)
_PANEL = (
    r"(?:panel|tab|menu|window|editor|timeline|settings|library|inspector|sidebar|dialog|view|page|section"
    r"|properties|media|project|account|billing|dashboard|preview)"
)


# "The balance between voice and music", "the balance of the audio": the mix, not the account.
_MIX_BALANCE = (
    r"(?!\s+(?:between|of\s+(?:the\s+|your\s+)?(?:audio|voice|vocals|music|sound|colou?rs?|levels?|mix|tracks?|volume)"
    r"|for\s+the\s+(?:audio|mix|music)))"
)


def _kind(english: str, chinese: str) -> re.Pattern[str]:
    return re.compile(rf"{_PREFIX}(?:{english})|{chinese}", re.IGNORECASE)


# (pattern, action, whether the action depends on what the instruction is about). Chinese
# verbs followed by 了 report something the agent already did, so they are no instruction.
_KINDS: tuple[tuple[re.Pattern[str], GuiAction | None, bool], ...] = (
    # Dragging is how the editor edits: the edit goes through chat instead.
    (_kind(r"drag\b(?!\s+of\b)|drop\b(?=.{0,60}\b(?:onto|into|on|in|to)\b)", r"拖(?:拽|动|到|入|放|至)(?!了)"), "chat", False),
    (
        _kind(
            r"preview\b(?=.{0,40}\b(?:in|on)\s+(?:the\s+)?timeline\b)|preview\s+(?:it|the|your|this)\b",
            r"(?:在|到)?时间线(?:中|上|里)?(?:预览|查看)(?!了)|预览(?:一下)?(?:时间线|效果|视频|结果|成片)|(?:请|可以|先|然后|再)预览",
        ),
        "state",
        False,
    ),
    (
        _kind(
            r"(?:check|visit|view|see|manage|go\s+to|open)\s+(?:your\s+|the\s+)?(?:account|billing|balance|credits|subscription|plan)\b"
            rf"{_MIX_BALANCE}"
            r"|top[ -]?up\b|recharge\b|upgrade\s+(?:your\s+)?(?:plan|account|subscription)\b",
            r"查看(?:您的|你的)?(?:账户|账号|积分|余额|账单)|充值|(?:前往|去|到|进入)(?:账户|账号)",
        ),
        "credits",
        False,
    ),
    (
        _kind(
            r"(?:export|download)\s+(?:it|them|this|the|your)\b",
            r"导出按钮|下载按钮|(?:请|您可以|你可以|可以|即可|就可以|然后|再|去)(?:直接)?(?:导出|下载)",
        ),
        "export",
        False,
    ),
    # Opening a panel shows the project, unless the panel is about exporting or the account.
    (
        _kind(
            r"(?:open(?:\s+up)?|go\s+(?:over\s+|back\s+)?to|head\s+(?:over\s+|back\s+)?to|navigate\s+to|switch\s+to)"
            rf"\s+(?:the\s+|your\s+)?(?:[\w-]+\s+){{0,3}}?{_PANEL}\b",
            r"打开(?!了)[^,，。]{0,8}?(?:面板|窗口|菜单|设置|时间线|编辑器|媒体库|素材库|页面|选项卡|标签页|侧边栏|属性|账户|账号|项目|预览)"
            r"|(?:前往|进入|切换到)[^,，。]{0,8}?(?:面板|页面|选项卡|标签页|设置)",
        ),
        "state",
        True,
    ),
    # A click does what its button does; a button with no API counterpart ("Apply") does nothing.
    (
        _kind(
            r"(?:double-|right-)?(?:click|tap)(?:\s+on)?\b(?!\s+(?:tracks?|into)\b)\s+\S"
            r"|(?:press|hit)\s+(?:on\s+)?(?:the\s+)?(?:[\"“'‘]?[\w-]+[\"”'’]?\s+)?(?:button|key|icon)\b"
            r"|(?:press|hit)\s+[\"“'‘]?(?:play|export|download|save|apply|enter|done|ok|render|generate|preview)\b"
            r"|(?:use|find|locate)\s+the\s+(?:[\w\"“”'‘’-]+\s+){0,3}?(?:button|icon|menu|tab|toolbar|panel|slider|option)\b",
            r"(?:点击|单击|双击|右键|轻触|点一下)(?![率量了])",
        ),
        None,
        True,
    ),
)

# An instruction inside a clause that does not start with it ("You can get the file by
# clicking Download"): it cannot be cut out cleanly, so the sentence goes. The spaces around
# a button's name are taken whole (possessive), so a name is more than spaces: trying every
# way to share a long run of spaces between them and the name costs the run's length squared.
_EMBEDDED = re.compile(
    r"\b(?:by|after|before|when|once)\s+(?:clicking|tapping|pressing|hitting|dragging|dropping|opening)\b"
    r"|\b(?:click|tap)(?:ing)?\s++(?:on\s++)?(?:the\s++)?[\"“']?[\w -]{1,20}?[\"”']?\s++(?:button|icon|tab)\b"
    r"|\bpreview(?:ing)?\s+(?:it\s+)?in\s+(?:the\s+)?timeline\b"
    r"|\bdrag(?:ging)?(?:\s+and\s+|-and-|\s*/\s*)drop(?:ping)?\b",
    re.IGNORECASE,
)
# Every verb or noun that the patterns above start from: most sentences of a reply have none,
# and this one search spares them the clause by clause work.
_GUI_WORD = re.compile(
    r"\b(?:click|double-click|right-click|tap|press|hit|use|find|locate|open|go|head|navigate|switch|drag|drop|preview"
    r"|check|visit|view|see|manage|top|recharge|upgrade|export|download)"
    r"|点|单击|双击|右键|轻触|打开|前往|进入|切换|拖|预览|时间线|查看|充值|账户|账号|导出|下载",
    re.IGNORECASE,
)
_DRAGGING = re.compile(r"\bdrag|拖", re.IGNORECASE)

# What an instruction is about; the first mention wins.
_TOPIC = re.compile(
    r"(?P<export>\b(?:export|download|render)|导出|下载|渲染)"
    rf"|(?P<credits>\b(?:credit|balance{_MIX_BALANCE}|billing|account|subscription|top[ -]?up|recharge|upgrade)|积分|余额|账户|账号|账单|充值|订阅|升级)"
    r"|(?P<state>\b(?:timeline|track|preview|layer|play\b|status)|时间线|轨道|预览|图层|播放|状态)",
    re.IGNORECASE,
)

# A clause that only leads into the instruction after it: a purpose, a condition, where the
# button is, an interjection.
_LEAD_IN = re.compile(
    r"^(?:to|if|once|when|whenever|after|before|as soon as)\b"
    r"|^(?:in|on|from|at)\s+the\s+(?:[\w-]+\s+){0,3}(?:corner|panel|menu|toolbar|sidebar|tab|window|screen|bar|editor|page)\b"
    r"|^(?:great|perfect|done|awesome|okay|ok|all set|alright|sure|now|next|finally|then|first)\W*$"
    r"|^(?:如需|如果|若|要|想|满意|准备|完成后|等)"
    r"|^在[^,，]{0,8}(?:角|面板|菜单|工具栏|界面|页面|侧边栏|上方|下方)"
    r"|^(?:好的|好|太好了|完成|搞定|接下来|然后|最后)\W*$",
    re.IGNORECASE,
)

# A clause after an instruction that only goes on about it ("…, and your video will download",
# "…, to render it"); any other clause is the agent's content ("…, and the title is now red").
_CONTINUES = re.compile(
    r"^(?:(?:and|then|so|or)\s+)?(?:to|so that|in order to|which|where|from there|there|it will|it'll|you'?ll)\b"
    r"|^(?:(?:and|then)\s+)?(?:you'?re|you are|that's|that is)\s+(?:done|all set|it)\b"
    r"|\b(?:download|export|render|sav(?:e|ing)|file|button|panel|menu|tab|window|page|timeline|preview|editor|browser"
    r"|click|tap|mp4)"
    r"|下载|导出|渲染|保存|文件|按钮|面板|菜单|窗口|页面|时间线|预览|编辑器|即可|就可以|就会|就能",
    re.IGNORECASE,
)

_JOINER = re.compile(r"^(?:and|then|so|also|plus)\s+(?=\S)", re.IGNORECASE)

_GUI_VERB_AHEAD = (
    r"(?=(?:(?:you can|you could|you may|please|just|simply|also|now)\s+)*(?:double-|right-)?"
    r"(?:click|tap|press|hit|open|go to|head|navigate|switch to|drag|drop|preview|check|visit|top up|export|download"
    r"|use the|find the)\b)"
)
# Clause boundaries, kept so the remaining clauses are joined as they were written. A colon
# cuts only before a space ("at 0:05" is one clause); "and", "then", "so" only cut before an
# instruction: elsewhere they join content. A boundary is looked for where a run of spaces
# starts, never inside one: it would have been found from the run's start, and looking again
# from every space of a long run costs its length squared.
_CUT = re.compile(
    rf"(?:(?<!\s)|(?!\s))(?:\s*(?:[,，;；：]|:(?=\s))\s*|\s+[—–-]\s+|\s*—\s*|\s+(?:and|then|so)\s+{_GUI_VERB_AHEAD})",
    re.IGNORECASE,
)
# Quote marks and what closes each. An apostrophe quotes too, but only from one with no letter
# or digit before it to one with none after ("don't" quotes nothing).
_CLOSING = {'"': '"', "“": "”", "‘": "’", "「": "」", "『": "』", "《": "》", "`": "`"}
_APOSTROPHE_OPENS = r"(?<![A-Za-z0-9])'"
_QUOTED = re.compile(
    "|".join(f"{mark}[^{closing}]*{closing}" for mark, closing in _CLOSING.items())
    + rf"|{_APOSTROPHE_OPENS}[^'\n]*'(?![A-Za-z0-9])"
)
_OPENING = re.compile(rf"[{''.join(_CLOSING)}]|{_APOSTROPHE_OPENS}")

# A full stop only ends an English sentence before a space, so "1.5x" and "final.mp4" stay whole.
# A run of stops is tried as an end from its first stop only (or its second, when the sentence
# starts with the run): the rest of the run decides the same way, and trying it from each stop
# costs the run's length squared.
_SENTENCE = re.compile(
    r"(?P<body>\S.*?)(?P<end>(?:(?<![.!?])|(?<=^[.!?])|(?<=[\s。！？”’」』）)][.!?]))[.!?]+[\"'”’)\]]*(?=\s|$)"
    r"|[。！？]+[”’」』）)]*|$)(?P<space>\s*)"
)
_LIST_MARKER = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")
_SPACES = re.compile(r"[ \t\u3000]+")


def translate(reply: str) -> Translation:
    """The reply without its GUI instructions, and the actions they stood for."""
    actions: list[GuiAction] = []
    lines: list[str] = []
    budget = MAX_TRANSLATED_CHARS
    for line in reply.splitlines():
        if len(line) > budget:
            lines.append(line)
            continue
        budget -= len(line)
        marker = _LIST_MARKER.match(line)
        body = line[marker.end() :] if marker else line
        # Quoted text is a title or caption, never an instruction ("a '点击订阅' animation"), so clauses are
        # found and judged on a copy with it blanked (offsets kept); sentences too, so that a caption of two
        # sentences ("Big news. Click the link in bio!") stays whole and is kept as written.
        masked = _blank_quotes(body)
        sentences = _SENTENCE.finditer(_blank_quotes(body, keep_final_stops=True))
        kept = "".join(_translate_sentence(body, masked, match, actions) for match in sentences)
        kept = _SPACES.sub(" ", kept).strip()
        if kept:
            lines.append((marker.group().strip() + " " if marker else "") + kept)
        elif not body.strip() and lines and lines[-1]:
            lines.append("")
    return Translation(text="\n".join(lines).strip(), actions=actions)


def _translate_sentence(line: str, masked_line: str, sentence: re.Match[str], actions: list[GuiAction]) -> str:
    """One sentence of `line`, found in a copy of it (`sentence` gives the offsets)."""
    start, end = sentence.span("body")
    body, masked, whole = line[start:end], masked_line[start:end], line[sentence.start():sentence.end()]
    if not _GUI_WORD.search(masked):
        return whole
    clauses, kinds, separators, position = [], [], [""], 0
    for cut in [*_CUT.finditer(masked), None]:
        end_of_clause = cut.start() if cut else len(body)
        clauses.append(body[position:end_of_clause].strip())
        kinds.append(_instruction(masked[position:end_of_clause].strip()))
        if cut:
            separators.append(cut.group())
            position = cut.end()

    if all(kind is None for kind in kinds):
        if not _EMBEDDED.search(masked):
            return whole
        _note(actions, "chat" if _DRAGGING.search(masked) else _topic(body))
        return ""

    keep = [True] * len(clauses)
    for index, kind in enumerate(kinds):
        if kind is None:
            continue
        first = last = index
        while first > 0 and kinds[first - 1] is None and not _semicolon(separators[first]) and (
            _LEAD_IN.search(clauses[first - 1]) or _colon(separators[first])
        ):
            first -= 1
        while (last + 1 < len(clauses) and kinds[last + 1] is None and not _semicolon(separators[last + 1])
               and _CONTINUES.search(clauses[last + 1])):
            last += 1
        for dropped in range(first, last + 1):
            keep[dropped] = False
        action, depends_on_topic = kind
        if depends_on_topic:
            action = _topic(" ".join(clauses[first : last + 1])) or action
        _note(actions, action)

    kept = [index for index, keep_it in enumerate(keep) if keep_it]
    if not kept:
        return ""
    first = clauses[kept[0]]
    if kept[0] > 0:  # "Click Export, and the title is red": the "and" joined it to the dropped instruction
        first = _JOINER.sub("", first)
    text = first + "".join(separators[index] + clauses[index] for index in kept[1:])
    if kept[0] > 0 and body[:1].isupper() and text[:1].islower():
        text = text[0].upper() + text[1:]
    return text + line[sentence.start("end"):sentence.end("space")]


# What ends a sentence, when it ends a quote too ('"Big news."'): kept by the copy sentences are found in.
_STOPS = ".!?。！？"


def _blank_quotes(text: str, *, keep_final_stops: bool = False) -> str:
    """The text with every _QUOTED stretch's inside replaced by underscores, as _QUOTED.sub would.

    A mark with no closing mark after it opens nothing, and neither does any later mark of its
    kind: its kind is not tried again, so a run of unclosed marks is read once, not once per
    mark. An apostrophe's stretch may also fail on a letter after the next apostrophe, which
    is where the following attempt starts, so those attempts never read the same text twice.
    """
    pieces, position, unclosed = [], 0, set()
    for opening in _OPENING.finditer(text):
        start, mark = opening.start(), opening.group()
        if start < position or mark in unclosed:
            continue
        quote = _QUOTED.match(text, start)
        if quote is None:
            if mark in _CLOSING:
                unclosed.add(mark)
            continue
        inside = text[start + 1 : quote.end() - 1]
        stops = len(inside) - len(inside.rstrip(_STOPS)) if keep_final_stops else 0
        pieces += [text[position:start], mark, "_" * (len(inside) - stops), inside[len(inside) - stops :],
                   text[quote.end() - 1]]
        position = quote.end()
    pieces.append(text[position:])
    return "".join(pieces)


def _instruction(clause: str) -> tuple[GuiAction | None, bool] | None:
    for pattern, action, depends_on_topic in _KINDS:
        if pattern.search(clause):
            return action, depends_on_topic
    return None


def _topic(text: str) -> GuiAction | None:
    match = _TOPIC.search(text)
    return cast(GuiAction, match.lastgroup) if match else None


def _note(actions: list[GuiAction], action: GuiAction | None) -> None:
    if action is not None and action not in actions:
        actions.append(action)


def _semicolon(separator: str) -> bool:
    return ";" in separator or "；" in separator


def _colon(separator: str) -> bool:
    return ":" in separator or "：" in separator
