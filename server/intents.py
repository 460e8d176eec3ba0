"""Which tool a user's message is for, decided before anything reaches the backend.

The seeds route by a keyword table ("export", "积分", "status", "upload"...) but ask for
"keyword and intent classification": a word is not an intent. "add a 'Download now'
caption" is an edit and "balance the music and voice levels" is not a credits question,
so the rules look at what the message asks for, in English and Chinese:

1. a local file or an http(s) URL in the message means the user is sending media: upload,
   then the message goes to the agent as the user wrote it, unless it says nothing beyond
   "here is a file". Routing decides, it never edits the user's words. An unquoted path with
   spaces is found with the filesystem's help: the longest candidate that exists wins;
2. then an ordered rule table over a normalised copy of the message in which quoted text is
   blanked, because a quoted caption is content and never a command. The rules know English
   and Chinese; a message in another language (Japanese and Korean are told from Chinese by
   their kana and hangul) goes to the agent, which understands it, rather than to a guess.

Deterministic; every pattern is compiled once, and every one runs in time linear in the
message (quantifiers that could backtrack over the whole message are bounded), so a long
message costs milliseconds; past MAX_MESSAGE_CHARS it is refused.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from .errors import InvalidInput
from .media import RECOGNISED
from .results import Action

# Recognised here so a bare "song.mp3" counts as a file; whether the backend accepts a
# format is decided where the upload happens.
MEDIA_EXTENSIONS = RECOGNISED
# About 8 pages of text: far more than a request to a video agent (a song's lyrics are 2-3 000).
MAX_MESSAGE_CHARS = 20_000
# The longest path read from a message; how many paths may be widened over spaces, and how
# many candidates they may check on disk, per message.
_MAX_PATH_CHARS = 512
_MAX_WIDENED_PATHS = 16
_MAX_PROBES = 256


class Intent(BaseModel):
    model_config = ConfigDict(frozen=True)

    action: Action
    paths: list[str] = []
    urls: list[str] = []
    instruction: str | None = None


_MEDIA_END = rf"\.(?:{'|'.join(MEDIA_EXTENSIONS)})(?![A-Za-z0-9])"
_PATH_CHAR = r"[^\s\"<>|*?，。；！？、（）【】「」“”‘’]"

# A quoted stretch: the content of one of these alternatives' groups.
_QUOTED = re.compile(
    r'"([^"\n]+)"'
    # An apostrophe inside a word ("what's", "don't") opens or closes nothing.
    r"|(?<![A-Za-z0-9])'([^'\n]+)'(?![A-Za-z0-9])"
    # An opening mark ends the stretch it opened, so a run of unclosed marks is read once, not once per mark.
    r"|“([^“”\n]+)”|‘([^‘’\n]+)’|「([^「」\n]+)」|『([^『』\n]+)』"
)
_QUOTED_URL = re.compile(r"https?://\S+", re.IGNORECASE)
# Quoting is how a path with spaces is written, so any quoted path or media file name counts.
_QUOTED_PATH = re.compile(rf"(?:(?:~|\.{{1,2}})?[\\/]|[A-Za-z]:[\\/]).+|.+{_MEDIA_END}", re.IGNORECASE | re.DOTALL)

_URL = re.compile(r"https?://[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+", re.IGNORECASE)

_PATH = re.compile(
    # Lengths are bounded so that a run of path-like starts ("(/a(/a(/a…") costs linear time, not quadratic.
    # A rooted path (/, ~/, ./, ../, C:\) to a media file; it may be glued to Chinese text on
    # either side ("上传/tmp/a.mp4然后..."), so it ends at the extension.
    rf"(?<![A-Za-z0-9_/\\.~:\-])(?:(?:~|\.{{1,2}})?/|[A-Za-z]:[\\/]){_PATH_CHAR}{{0,{_MAX_PATH_CHARS}}}?{_MEDIA_END}"
    # A rooted path without a media extension (a folder, an odd file): it must stand alone and
    # a bare "/x" needs a second component, so "music/voice" or "/s" is not a path.
    rf"|(?<![^\s(\[:,;=])(?:(?:~|\.{{1,2}})[\\/]|[A-Za-z]:[\\/]|/(?=[^\s/\"<>|*?]+/)){_PATH_CHAR}{{1,{_MAX_PATH_CHARS}}}"
    # A file name standing alone, in any script ("城市之梦.mp4").
    rf"|(?<!\S)[^\s\"'<>|*?/\\]+{_MEDIA_END}(?=$|\s|[,.;:!?，。；：！？、)\]])"
    # A plain ASCII name, possibly relative, glued to other text ("把song.mp3做成视频").
    rf"|(?<![A-Za-z0-9_\-./\\~:@])[A-Za-z0-9_\-.]+(?:/[A-Za-z0-9_\-.]+)*{_MEDIA_END}",
    re.IGNORECASE,
)
# Every path has a separator or a media extension; most messages have neither, and this is
# much cheaper to rule out than a _PATH scan.
_PATH_HINT = re.compile(rf"[/\\]|{_MEDIA_END}", re.IGNORECASE)
_TRAILING_PUNCTUATION = ".,;:!?'\"，。；：！？、）】」”’"

# "export to ~/Desktop/final.mp4": a path after one of these is where a result goes, not a source.
_DESTINATION_BEFORE = re.compile(r"(?:\b(?:to|into|as|in|at|under)|[到为至成在])\s*$", re.IGNORECASE)

# -- the rule table, over text that is NFKC-normalised (full-width punctuation becomes ASCII),
# case-folded and on one line.

# A command starts a clause: the message is cut at punctuation and conjunctions, and each
# clause loses its politeness or question frame ("can you", "how do I", "I want to") so
# that a "command" rule only has to look at the clause's first word.
_CLAUSE_BREAK = re.compile(r"[.!?;,:。、]|\b(?:and|then|also|but|plus|so)\b")
_FRAME = re.compile(
    r"\s*(?:(?:please|pls|kindly|just|now|ok|okay|also|then|and|so|hey|hi|first|next|finally|quickly"
    r"|can you|could you|would you|will you|can we|could we|can i|could i|let's|lets|let us|let me"
    r"|i want you to|i'd like you to|i need you to|i want to|i'd like to|i need to|i wanna|i'll|i will"
    r"|i'm going to|i am going to|going to|i'm|i am|go ahead and|help me|try to|ready to|time to"
    r"|how do i|how can i|where do i|where can i)\b\s*)*"
)

# Film credits and audio/colour balance are video content, not the account.
_NOT_ACCOUNT = re.compile(
    r"\b(?:opening|closing|end|ending|final|film|movie|rolling|scrolling)\s+credits\b"
    r"|\bcredits?\s+(?:to\s+)?(?:roll|rolls|rolling|scroll|scrolls|sequence|scene|screen|text|at the (?:end|start|beginning))\b"
    r"|\b(?:audio|sound|colou?r|white|volume|mix|level|stereo|tonal|tone)\s+balance\b"
)

_EDIT_VERBS = (
    r"add|put|insert|include|place|make|change|set|remove|delete|cut|trim|crop|resize|replace|swap|move"
    r"|adjust|mute|unmute|lower|raise|increase|decrease|boost|reduce|turn|fade|apply|use|create|generate"
    r"|produce|sync|rotate|flip|speed|slow|write|type|rename|overlay|split|merge|combine|shorten|lengthen"
    r"|extend|loop|reverse|zoom|blur|sharpen|brighten|darken|tint|colou?r|stabili[sz]e|enhance|animate"
    r"|highlight|translate|edit|fix|redo|undo|try|caption|subtitle|title|label|restyle|recolou?r"
)
_EDIT_ZH = (
    r"(?:添加|增加|加上|加入|插入|加(?=一|个|上|入|点|些|段|条|句|张|首|字幕|标题|音乐|背景|特效|转场|滤镜|文字|片头|片尾|水印|贴纸|配乐|音效|旁白|动画|logo)"
    r"|放(?=一|个|上|入|进|到)|修改|更改|改(?=成|为|一|个|下|掉|变)|替换|换(?=成|掉|一|个|首|张|段|上)|调整|调(?=高|低|大|小|亮|暗|快|慢|成|到|一)"
    r"|删除?|去掉|去除|剪|裁剪?|截取|生成|制作|做(?=一|个|成)|创建|设置(?!里|中|页)|设为|设成|让(?!我)|同步|配上|配(?=乐|音|个|一)"
    r"|变(?=成|得|为)|缩短|延长|加快|放慢|减慢|静音|降低|提高|淡入|淡出|移动|移到|旋转|翻转|写上|打上|合并|拼接|分割|拆分|倒放|循环|混音|平衡"
    r"|显示(?:为|成)|(?:在|于)(?:视频|画面|屏幕|开头|结尾|片头|片尾)[^,.!?。]{0,10}显示)"
    # "生成的视频", "增加了吗", "剪好的": a done thing being talked about, not a request.
    r"(?![的了好完])"
)

# (action, scope, pattern): the first rule that matches decides. A "command" pattern must
# start a clause (after its frame); a "text" pattern may match anywhere; a "chinese" one too,
# but it is only tried on a message with Chinese in it, which spares most messages its cost.
_Scope = Literal["command", "text", "chinese"]
_MEDIA_NOUN = r"(?:files?|videos?|clips?|songs?|tracks?|audio|music|images?|photos?|pictures?|footage|recordings?)"
_RULES: tuple[tuple[Action, _Scope, re.Pattern[str]], ...] = tuple(
    (action, scope, re.compile(f"^(?:{pattern})", re.MULTILINE) if scope == "command" else re.compile(pattern))
    for action, scope, pattern in (
        # Upload as the verb of a request ("I want to upload a song", "how do I upload"), not
        # as an adjective ("show the upload date"); it wins over edits because a described
        # edit of a file not yet sent needs the file first.
        ("upload", "command", r"(?:upload(?:ing)?|attach(?:ing)?)\b"),
        ("upload", "text", rf"\bhere(?:'s| is| are) (?:(?:my|the|a|an|some) )?{_MEDIA_NOUN}\b"),
        (
            "upload",
            "chinese",
            r"(?:^|[,.!?;:。\s]|然后|再|先)(?:请|帮我|我要|我想要?|我来|我先|先|怎么|如何|要|想|让我|我|可以|能|能不能){0,4}"
            r"上传(?!日期|时间|的|者|于|人)"
            r"|(?:发|传)(?:一?个|几个|一些|一段|一首)?(?:视频|文件|歌|音乐|图片|照片|素材)给你",
        ),
        # An edit request goes to the backend even when it names a tool's topic: "make the
        # credits roll", "change the status bar text", "add a title that says export now".
        ("chat", "command", rf"(?:{_EDIT_VERBS})\b(?!-)\s+\S"),
        (
            "chat",
            "command",
            r"balance\s+(?:the|this|that|my|our|it|them|audio|sound|music|voice|vocals?|levels?|volumes?|mix|colou?rs?|between)\b"
            r"|give\s+(?:it|this|the\s+\w+)\s+(?:a|an|some|more|less)\b",
        ),
        # "show the upload date as text": showing something inside the video is an edit.
        (
            "chat",
            "command",
            r"(?:show|display)\b.{0,80}?"
            r"\b(?:as (?:a |an )?(?:text|caption|title|subtitle|overlay|label)|on(?:-| )screen|in the (?:video|corner|frame))\b",
        ),
        ("chat", "chinese", _EDIT_ZH),
        # Credits: the account noun asked about ("how many credits do I have left", "what's my
        # balance"), or said on its own ("credits?", "余额").
        (
            "credits",
            "text",
            r"^(?=.*\b(?:credits?|balance)\b).*(?:how (?:many|much)|what(?:'s|s| is| are) (?:my|our|the)"
            r"|do (?:i|we) (?:still |even )?(?:have|got)|have (?:i|we) got|show me|tell me"
            r"|\b(?:check|remaining|left|my|our|account|enough|more|buy|get|see|view|any)\b)",
        ),
        ("credits", "text", r"^\W*(?:(?:my|the|current|remaining|available|account|credit|credits|balance|left|please|pls)\b\W*)+$"),
        ("credits", "text", r"\b(?:top[ -]?up|recharge)\b|how much (?:does|will|would|is) .{0,40}\bcost\b"),
        ("credits", "chinese", r"积分(?!榜|赛)|余额|额度|点数|充值"),
        # State: asking what the project holds or how far it got.
        (
            "state",
            "text",
            r"\b(?:status|progress)\b(?!\s+bar)|\bso far\b|\bwhere are we\b"
            r"|what (?:have|did) (?:we|you|i) (?:got|get|made|make|done|do|built|created)\b"
            r"|(?:how|what)(?:'s| is| does) (?:it|everything|the (?:project|video|timeline|edit))(?: \w+)?"
            r" (?:going|coming along|looking|look)\b"
            r"|\bis (?:it|the video) (?:done|ready|finished)\b",
        ),
        (
            "state",
            "text",
            r"what(?:'s| is| are) (?:on|in) (?:the |my |our )?(?:timeline|tracks?|project|draft)\b"
            r"|what(?:'s| is) the (?:current )?state\b|\b(?:current|project|session) (?:state|draft|timeline)\b"
            r"|\bstate of (?:the|my|our) (?:project|video|timeline|draft|edit)\b"
            r"|\b(?:show|list|view|see|display|preview)\s+(?:me\s+)?(?:(?:the|my|our|all|all the|current)\s+)?"
            r"(?:tracks?|timeline|draft|project|layers?)\b"
            r"|\b(?:which|what) tracks\b|^\W*(?:the |current |my )?(?:timeline|tracks|draft)\W*$",
        ),
        (
            "state",
            "chinese",
            r"状态(?!栏)|进度(?!条)|进展|做到哪|做了(?:什么|哪些)|(?:目前|现在|当前)(?:有|的)?(?:什么|哪些|情况|效果)"
            r"|(?:看|查|显示|列出|预览)(?:一下|看)?(?:当前的?|现在的?|目前的?)?(?:时间线|轨道|草稿|项目)"
            r"|(?:时间线|轨道|草稿|项目)(?:上|里|中)?(?:有什么|有哪些|是什么样|怎么样)|^\W*(?:时间线|轨道)\W*$",
        ),
        # Export: asking for the finished file ("export 1080p MP4", "download it", "send me the
        # video", "give me the mp4"), not mentioning the word ("the export looks blurry") nor
        # asking for new material ("download a song for the background").
        (
            "export",
            "command",
            r"export\b(?!-)"
            r"|download\b(?!-|\s+(?:an?|some|more)\s+(?:songs?|music|tracks?|sounds?|images?|photos?|pictures?|fonts?|effects?)\b)"
            r"|render\s+(?:it|this|the (?:video|final|result|project))\b",
        ),
        (
            "export",
            "text",
            r"\b(?:send|give|get|email)\s+(?:me|us)\s+(?:(?:the|my|this|that|our|it)\s+)?"
            r"(?:(?:final|finished|rendered|exported|edited|full)\s+)?"
            r"(?:video|mp4|mov|file|result|render|output|clip|movie|cut|version|download|link)s?\b"
            r"|\b(?:send|give|get|email)\s+(?:me|us)\s+an?\s+(?:download\s+)?link\b"
            r"|\b(?:send|email|share)\s+(?:it|the (?:video|mp4|file|result))\s+(?:to me|over|back)\b"
            r"|\bsave\s+(?:it|this|the (?:video|result|file|mp4|final \w+)|a copy)\b",
        ),
        (
            "export",
            "text",
            r"\bwhere(?:'s| is| can i (?:find|get))\s+(?:my|the)\s+(?:video|mp4|file|download|result|export)\b"
            r"|\b(?:want|need|like|have)\s+(?:the|my|a)\s+(?:final\s+)?(?:mp4|video file|download link|download|file)\b"
            r"|^\W*(?:the\s+)?(?:final\s+)?(?:mp4|download link)\W*(?:please|pls)?\W*$",
        ),
        (
            "export",
            "chinese",
            r"导出(?!的|时|前|后)|下载(?!的|一?首|一?段|一些|些)|(?:发|传|给)(?:给)?我(?:一下)?(?:视频|成品|文件|结果|mp4)"
            r"|(?:视频|成品|结果|文件)(?:发|传)给我|^(?:请)?(?:发|传)给我|保存(?:视频|下来|到本地)|渲染(?:出来|一下|视频)",
        ),
    )
)

# -- what is left of an upload message once the files are gone: words that only say "here is a file".
_UPLOAD_WORDS = re.compile(
    r"(?:\b(?:please|pls|can you|could you|i want to|i'd like to|i need to|let me|i'll|i will|i wanna|how do i|how can i"
    r"|i'm going to|go ahead and)\s+){0,4}"
    rf"\b(?:upload(?:ing|ed)?|attach(?:ing|ed)?)\b(?:\s+(?:this|these|that|those|the|my|a|an|some|following|new|local|it|them"
    rf"|here|{_MEDIA_NOUN})\b)*"
    rf"|\bhere(?:'s|’s| is| are)\s+(?:(?:my|the|a|an|some)\s+)?{_MEDIA_NOUN}\b"
    r"|(?:请|帮我|我要|我想要?|我来|我先|先|让我|怎么|如何|怎样|可以|能不能|能){0,4}上传(?:一下|了)?"
    r"(?:这个|这些|一个|一首|一段|几个)?(?:文件|视频|音乐|歌曲?|图片|照片|素材|音频)?",
    re.IGNORECASE,
)
_GLUE_WORDS = re.compile(r"\b(?:and|then|also|so|plus)\b|然后|接着|并且|并|再|和", re.IGNORECASE)
_FILLER = re.compile(
    r"\b(?:this|that|these|those|it|them|the|a|an|my|our|files?|here|please|pls|thanks|thank|you|ok|okay|now|to|for|me|is|are|i"
    r"|and|then|also|too|videos?|songs?|clips?|tracks?|audio|music|images?|photos?)\b"
    r"|这个|这些|一下|文件|请|谢谢|好的|吧|了|的|个|这|视频|歌|音乐",
    re.IGNORECASE,
)
_LETTER = re.compile(r"[^\W\d_]")
_CHINESE = re.compile(r"[\u3400-\u9fff]")
Language = Literal["en", "zh", "ja", "ko", "other"]
# Kana without U+30FB, the middle dot Chinese also writes names with (达・芬奇).
_KANA = re.compile(r"[\u3040-\u30fa\u30fc-\u30ff\u31f0-\u31ff\uff66-\uff9f]")
_HANGUL = re.compile(r"[\u1100-\u11ff\u3130-\u318f\uac00-\ud7af]")
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z\u00c0-\u024f\u1e00-\u1eff]")


def route(message: str) -> Intent:
    """The tool a message is for; chat (the backend's agent) when it is not a tool's job."""
    if len(message) > MAX_MESSAGE_CHARS:
        raise InvalidInput(
            f"This message is {len(message):,} characters long, over the {MAX_MESSAGE_CHARS:,} a request may have. "
            "Shorten it to what should change in the video; long text (a script, lyrics) can be uploaded as a file."
        )
    scan = _Scan(message)
    text = _normalise(scan.plain)
    rules_apply = language_of(text) in ("en", "zh")
    if scan.urls or scan.paths:
        if rules_apply and not scan.urls and scan.only_destinations and _classify(text) == "export":
            return Intent(action="export", paths=scan.paths)
        return Intent(action="upload", paths=scan.paths, urls=scan.urls,
                      instruction=message if _asks_for_more(scan.rest) else None)
    action = _classify(text) if rules_apply else "chat"
    return Intent(action=action)


def language_of(text: str) -> Language:
    """The language a message's rules are in, by script: kana is Japanese and hangul Korean even among Han."""
    if _KANA.search(text):
        return "ja"
    if _HANGUL.search(text):
        return "ko"
    han, latin = len(_HAN.findall(text)), len(_LATIN.findall(text))
    if len(_LETTER.findall(text)) - han - latin > han + latin:
        return "other"
    return "zh" if han else "en"


def _classify(text: str) -> Action:
    targets: dict[_Scope, str] = {
        "command": "\n".join(_FRAME.sub("", clause, count=1) for clause in _CLAUSE_BREAK.split(text)),
        "text": text,
        "chinese": text if _CHINESE.search(text) else "",
    }
    for action, scope, pattern in _RULES:
        if pattern.search(targets[scope]):
            return action
    return "chat"


def _normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold().replace("’", "'")
    # A line break ends a command the way a full stop does.
    return " ".join(_NOT_ACCOUNT.sub(" ~ ", text).replace("\n", " ; ").split())


def _asks_for_more(rest: str) -> bool:
    """Whether the message without its files says more than "here is a file"."""
    text = _UPLOAD_WORDS.sub(" ", rest)
    return bool(_LETTER.search(_FILLER.sub(" ", _GLUE_WORDS.sub(" ", text))))


class _Scan:
    """The files and URLs of a message, and the message without them.

    `plain` is what the rules read: sources removed, quoted text blanked. `rest` is the
    instruction's raw material: sources removed, quoted text (a caption) kept.
    """

    def __init__(self, message: str) -> None:
        self.paths: list[str] = []
        self.urls: list[str] = []
        self.only_destinations = True
        spans: list[tuple[int, int, bool]] = []  # (start, end, is a source)

        for match in _QUOTED.finditer(message):
            content = next(group for group in match.groups() if group is not None).strip()
            is_url = bool(_QUOTED_URL.fullmatch(content))
            is_path = not is_url and bool(_QUOTED_PATH.fullmatch(content))
            if is_url:
                self._add_url(content)
            elif is_path:
                self._add_path(content, message, match.start())
            spans.append((match.start(), match.end(), is_url or is_path))

        blank = _blank(message, spans)
        for match in _URL.finditer(blank):
            url = _trim_url(match.group())
            self._add_url(url)
            spans.append((match.start(), match.start() + len(url), True))

        blank = _blank(message, spans)
        taken_until, probes = 0, _Probes()
        for match in _PATH.finditer(blank) if _PATH_HINT.search(blank) else ():
            if match.start() < taken_until:  # already inside a longer path that exists
                continue
            start, end = _on_disk(blank, match.start(), match.start() + len(match.group().rstrip(_TRAILING_PUNCTUATION)),
                                  taken_until, probes)
            self._add_path(blank[start:end], message, start)
            spans.append((start, end, True))
            taken_until = end

        spans.sort()
        plain, rest, position = [], [], 0
        for start, end, is_source in spans:
            plain.append(message[position:start])
            rest.append(message[position:start])
            plain.append(" " if is_source else ' "" ')
            rest.append(" " if is_source else message[start:end])
            position = end
        plain.append(message[position:])
        rest.append(message[position:])
        self.plain = "".join(plain)
        self.rest = "".join(rest)

    def _add_url(self, url: str) -> None:
        self.only_destinations = False
        if url not in self.urls:
            self.urls.append(url)

    def _add_path(self, path: str, message: str, start: int) -> None:
        if not _DESTINATION_BEFORE.search(message[max(0, start - 12) : start]):
            self.only_destinations = False
        if path not in self.paths:
            self.paths.append(path)


class _Probes:
    """How many candidate paths a message may still check on disk: a bound on its cost."""

    def __init__(self) -> None:
        self.left = _MAX_PROBES
        self.paths_left = _MAX_WIDENED_PATHS

    def exists(self, candidate: str) -> bool:
        if self.left <= 0:
            return False
        self.left -= 1
        try:
            return Path(candidate).expanduser().exists()
        except (OSError, RuntimeError, ValueError):  # a name too long, "~nosuchuser", a NUL byte
            return False


_ROOT = re.compile(r"(?:~|\.{1,2})?[\\/]|[A-Za-z]:[\\/]")
# Where a path with spaces may end: before a space or the end of the line, or right after a media extension.
_CANDIDATE_END = re.compile(rf"\S(?=\s|$)|{_MEDIA_END}", re.IGNORECASE)
_TOKEN_START = re.compile(r"(?:(?<=\s)|^)\S")
_MEDIA_AT_END = re.compile(rf"{_MEDIA_END}$", re.IGNORECASE)
# What joins clauses, not folder names: a missing path is not read across it.
_NOT_IN_A_PATH = re.compile(r"[,;!?，。；！？、]|\b(?:and|or|then|also|but|plus|so|call|called|name|named|as|to|into"
                            r"|with|for|from|use|using|it|please)\b", re.IGNORECASE)
_MAX_SPACES_JOINED = 3
# The end of the next media file name, before a quote or a new line could close the path.
_MEDIA_NAME_END = re.compile(rf"[^\n\"<>|*?]*?{_MEDIA_END}", re.IGNORECASE)


def _on_disk(text: str, start: int, end: int, earliest: int, probes: _Probes) -> tuple[int, int]:
    """The span of the path at text[start:end], widened over spaces to the longest file or folder that exists.

    An unquoted "~/My Videos/intro clip.mp4" reads as "~/My" and "clip.mp4"; on disk only the
    whole exists. A path may begin a few words before the match (a rooted word) and end a few
    words after it. Without a longer match on disk, the match stands as it is.
    """
    if probes.paths_left <= 0 or probes.left <= 0:
        return start, end
    probes.paths_left -= 1
    line_start = max(text.rfind("\n", max(0, start - _MAX_PATH_CHARS), start) + 1, earliest, start - _MAX_PATH_CHARS)
    line_end = text.find("\n", end, end + _MAX_PATH_CHARS)
    line_end = min(len(text), end + _MAX_PATH_CHARS) if line_end == -1 else line_end
    starts = [token.start() for token in _TOKEN_START.finditer(text, line_start, start)
              if _ROOT.match(text, token.start())][-3:]
    if _ROOT.match(text, start):
        starts.append(start)
    ends = sorted({candidate.end() for candidate in _CANDIDATE_END.finditer(text, end, line_end)})[:12][::-1]
    for first in starts:
        for last in ends:
            candidate = text[first:last].rstrip(_TRAILING_PUNCTUATION)
            if first + len(candidate) > end and " " in candidate and probes.exists(candidate):
                return first, first + len(candidate)
        if first < start:
            # A rooted word before the match may also end where the match does ("/My Videos/a.mp4").
            candidate = text[first:end]
            if " " in candidate and probes.exists(candidate):
                return first, end
    return _missing_path_with_spaces(text, start, end, line_end, probes) or (start, end)


def _missing_path_with_spaces(text: str, start: int, end: int, line_end: int,
                              probes: _Probes) -> tuple[int, int] | None:
    """A rooted word that is not on disk, then words up to a media file name: one missing path with spaces.

    "/Users/me/My Music/song one.mp3" on a machine without it would otherwise read as "/Users/me/My" and
    "one.mp3"; named whole, the upload says that this file was not found. Only a few plain words may sit
    between: never the start of another path ("/a/clips and ~/b.mp3"), punctuation or a word that joins
    clauses ("to ~/Videos/Wedding and call it final.mp4" names a folder, then a file name), and never after
    "to"/"into", where a path is a destination (a folder about to be made).
    """
    if (not _ROOT.match(text, start) or _MEDIA_AT_END.search(text, start, end)
            or _DESTINATION_BEFORE.search(text[max(0, start - 12):start]) or probes.exists(text[start:end])):
        return None
    media = _MEDIA_NAME_END.match(text, end, line_end)
    if media is None:
        return None
    between = text[end:media.end()]
    if (between.count(" ") > _MAX_SPACES_JOINED or _NOT_IN_A_PATH.search(between)
            or any(_ROOT.match(text, token.start()) for token in _TOKEN_START.finditer(text, end, media.end()))):
        return None
    return start, media.end()


def _blank(message: str, spans: list[tuple[int, int, bool]]) -> str:
    """The message with each span turned into spaces, so later matches keep their offsets."""
    pieces, position = [], 0
    for start, end, _ in sorted(spans):
        pieces += [message[position:start], " " * (end - start)]
        position = end
    pieces.append(message[position:])
    return "".join(pieces)


def _trim_url(url: str) -> str:
    """A URL without the sentence punctuation after it; a ")" stays when the URL opened one."""
    while url and url[-1] in ".,;:!?'\")]":
        if url[-1] in ")]" and url.count("(" if url[-1] == ")" else "[") >= url.count(url[-1]):
            break
        url = url[:-1]
    return url
