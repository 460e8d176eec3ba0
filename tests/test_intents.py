from __future__ import annotations

import pydantic
import pytest

from nemovideo_mcp.intents import MEDIA_EXTENSIONS, Intent, route

# The seed table's words used as requests, the traps where the same words are content, and
# everyday phrasings of both, in English and Chinese.
ACTIONS = [
    # Edits that name a tool's topic: the backend's agent does them.
    ("add a 'Download now' caption", "chat"),
    ("balance the music and voice levels", "chat"),
    ("show the upload date as text", "chat"),
    ("make the credits roll at the end", "chat"),
    ("add a title that says export now", "chat"),
    ("change the status bar text to 'Live'", "chat"),
    ("create a video with visuals synced to this music track", "chat"),
    ("the end credits are too long, shorten them", "chat"),
    ("what do the end credits say?", "chat"),
    ("the audio balance is off", "chat"),
    ("what's the audio balance like?", "chat"),
    ("do the end credits show my name?", "chat"),
    ("how many names fit in the closing credits", "chat"),
    ("can you add subtitles?", "chat"),
    ("please put the logo in the top corner", "chat"),
    ("Export it and add a title", "chat"),
    ("add a progress bar at the bottom", "chat"),
    ("download a song for the background", "chat"),
    ("send me a video of cats playing piano", "chat"),
    ("turn this video into a new short promotional clip with music and transitions", "chat"),
    ("generate a 3-minute MP3 track into a 1080p MP4", "chat"),
    ("a caption saying \"export finished\"", "chat"),
    ("把音乐音量调低一点", "chat"),
    ("加一个标题'城市之梦'", "chat"),
    ("生成一个和音乐同步的视频", "chat"),
    ("把状态栏的文字改成“直播中”", "chat"),
    ("在视频里显示上传日期", "chat"),
    ("平衡一下音乐和人声", "chat"),
    ("加一个积分榜动画", "chat"),
    ("导出的视频太暗了，调亮一点", "chat"),
    ("帮我下载一首背景音乐", "chat"),
    ("hello", "chat"),
    ("", "chat"),
    # Credits.
    ("how many credits do I have left", "credits"),
    ("what's my balance", "credits"),
    ("What’s my balance?", "credits"),
    ("credits", "credits"),
    ("balance?", "credits"),
    ("do I have enough credits to export?", "credits"),
    ("I need more credits", "credits"),
    ("top up", "credits"),
    ("还有多少积分", "credits"),
    ("我的余额", "credits"),
    ("积分", "credits"),
    ("怎么充值", "credits"),
    # State.
    ("what's on the timeline", "state"),
    ("show tracks", "state"),
    ("what have we got so far?", "state"),
    ("status", "state"),
    ("what's the status?", "state"),
    ("is it done yet?", "state"),
    ("show me the timeline", "state"),
    ("现在的状态", "state"),
    ("时间线上有什么", "state"),
    ("让我看看时间线", "state"),
    ("目前做了什么", "state"),
    # Export.
    ("give me the mp4", "export"),
    ("send me the video", "export"),
    ("export 1080p MP4", "export"),
    ("download it", "export"),
    ("export", "export"),
    ("please export the video", "export"),
    ("can I download the final video?", "export"),
    ("render it", "export"),
    ("send me a download link", "export"),
    ("导出视频", "export"),
    ("下载", "export"),
    ("把视频发给我", "export"),
    ("把视频导出成mp4", "export"),
    # Upload, without a file yet: the tool asks for it.
    ("I want to upload a song", "upload"),
    ("how do I upload", "upload"),
    ("upload", "upload"),
    ("I'm uploading a video", "upload"),
    ("上传", "upload"),
    ("我想上传一首歌", "upload"),
    ("怎么上传视频", "upload"),
]


@pytest.mark.parametrize(("message", "action"), ACTIONS)
def test_a_message_is_routed_by_its_intent(message: str, action: str) -> None:
    assert route(message).action == action


@pytest.mark.parametrize(("message", "action"), [case for case in ACTIONS if case[1] != "upload"])
def test_a_message_without_a_file_carries_no_source_or_instruction(message: str, action: str) -> None:
    assert route(message) == Intent(action=action)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "message",
    ["I want to upload a song", "how do I upload", "upload this", "upload", "上传", "我想上传一首歌", "怎么上传视频"],
)
def test_upload_without_a_file_asks_for_one(message: str) -> None:
    assert route(message) == Intent(action="upload")


@pytest.mark.parametrize(
    ("message", "paths", "urls", "instruction"),
    [
        ("/Users/me/song.mp3", ["/Users/me/song.mp3"], [], None),
        ("~/Music/track.wav", ["~/Music/track.wav"], [], None),
        ("./clip.mov", ["./clip.mov"], [], None),
        ("../footage/b-roll.MKV", ["../footage/b-roll.MKV"], [], None),
        ("C:\\Users\\me\\a.mp4", ["C:\\Users\\me\\a.mp4"], [], None),
        ("C:/Users/me/a.mp4", ["C:/Users/me/a.mp4"], [], None),
        ('"/Users/me/My Song.mp3" make a lyric video', ["/Users/me/My Song.mp3"], [], "make a lyric video"),
        ("'C:\\My Videos\\trip.mov'", ["C:\\My Videos\\trip.mov"], [], None),
        ("song.mp3", ["song.mp3"], [], None),
        ("upload this file: song.mp3", ["song.mp3"], [], None),
        ("make a video synced to /tmp/song.mp3", ["/tmp/song.mp3"], [], "make a video synced to"),
        ("make a video synced to /tmp/song.mp3.", ["/tmp/song.mp3"], [], "make a video synced to"),
        ("upload /tmp/a.mp4 and add a title", ["/tmp/a.mp4"], [], "add a title"),
        ("here's my song ~/Music/a.wav, make it a music video", ["~/Music/a.wav"], [], "make it a music video"),
        ("use intro.mp4 and outro.mp4, add a 'Subscribe' caption", ["intro.mp4", "outro.mp4"], [], "use and, add a 'Subscribe' caption"),
        ("/tmp/a.mp4 /tmp/a.mp4", ["/tmp/a.mp4"], [], None),
        ("upload ~/clips", ["~/clips"], [], None),
        ("https://youtu.be/abc123", [], ["https://youtu.be/abc123"], None),
        ("https://cdn.example.com/a.mp4, https://cdn.example.com/b.mp3.", [], ["https://cdn.example.com/a.mp4", "https://cdn.example.com/b.mp3"], None),
        (
            "make a music video from https://www.youtube.com/watch?v=x1 please",
            [],
            ["https://www.youtube.com/watch?v=x1"],
            "make a music video from please",
        ),
        ("(see https://en.wikipedia.org/wiki/Foo_(bar))", [], ["https://en.wikipedia.org/wiki/Foo_(bar)"], "(see)"),
        ("上传 /tmp/a.mp4 然后加上标题", ["/tmp/a.mp4"], [], "加上标题"),
        ("上传/tmp/a.mp4然后加上标题", ["/tmp/a.mp4"], [], "加上标题"),
        ("上传 “/Users/me/我的 视频/旅行.mov”", ["/Users/me/我的 视频/旅行.mov"], [], None),
        ("用 城市之梦.mp4 做一个预告片", ["城市之梦.mp4"], [], "用 做一个预告片"),
        ("把song.mp3做成视频", ["song.mp3"], [], "把 做成视频"),
        ("上传 https://example.com/v.mp4", [], ["https://example.com/v.mp4"], None),
    ],
)
def test_a_message_with_a_file_or_url_is_an_upload(message: str, paths: list[str], urls: list[str], instruction: str | None) -> None:
    assert route(message) == Intent(action="upload", paths=paths, urls=urls, instruction=instruction)


@pytest.mark.parametrize("extension", MEDIA_EXTENSIONS)
def test_every_media_extension_is_recognised_in_any_case(extension: str) -> None:
    assert route(f"clip.{extension.upper()} please").paths == [f"clip.{extension.upper()}"]
    assert route(f"make a reel from ~/Media/clip.{extension}").paths == [f"~/Media/clip.{extension}"]


@pytest.mark.parametrize(
    "message",
    [
        "set the ratio to 9:16 / vertical",
        "use 16:9",
        "balance the music/voice mix",
        "a 50/50 split screen",
        "make it look like a .gif",
        "音乐/人声/画面 都要平衡",
        "add a caption 'visit https://mysite.com'",
        "make the text say 'and/or'",
    ],
)
def test_slashes_dots_and_quoted_links_are_not_files(message: str) -> None:
    intent = route(message)
    assert (intent.action, intent.paths, intent.urls) == ("chat", [], [])


@pytest.mark.parametrize(
    ("message", "paths"),
    [
        ("export to ~/Desktop/final.mp4", ["~/Desktop/final.mp4"]),
        ("save it to ~/Downloads", ["~/Downloads"]),
        ("导出到 ~/Movies/成片.mp4", ["~/Movies/成片.mp4"]),
    ],
)
def test_a_path_an_export_writes_to_is_a_destination_not_an_upload(message: str, paths: list[str]) -> None:
    assert route(message) == Intent(action="export", paths=paths)


def test_a_path_after_to_in_an_edit_is_still_a_source() -> None:
    assert route("download /tmp/a.mp4").action == "upload"
    assert route("sync the cuts to /tmp/beat.wav").action == "upload"


def test_an_intent_is_frozen() -> None:
    intent = route("export")
    with pytest.raises(pydantic.ValidationError):
        intent.action = "chat"  # type: ignore[misc]


def test_routing_is_deterministic() -> None:
    messages = [message for message, _ in ACTIONS] + ["make a video synced to /tmp/song.mp3", "上传 /tmp/a.mp4 然后加上标题"]
    first = [route(message) for message in messages]
    assert [route(message) for message in reversed(messages)] == first[::-1]


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("add a title " + "very " * 2000 + "big", Intent(action="chat")),
        ("how many credits do I have left" + " please" * 1500, Intent(action="credits")),
        ("blah " * 2000 + "/tmp/a.mp4", Intent(action="upload", paths=["/tmp/a.mp4"], instruction=("blah " * 2000).strip())),
        ("x" * 10_000, Intent(action="chat")),
        ("/" * 10_000, Intent(action="chat")),
        ("中" * 10_000, Intent(action="chat")),
        ("and " * 2500 + "export", Intent(action="export")),
        ("'" * 10_000, Intent(action="chat")),
        (" " * 10_000, Intent(action="chat")),
        ("upload /a.mp4 " + "and " * 2500, Intent(action="upload", paths=["/a.mp4"])),
    ],
)
def test_long_messages_are_routed_correctly(message: str, expected: Intent) -> None:
    assert len(message) >= 10_000
    assert route(message) == expected
