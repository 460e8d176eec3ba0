from __future__ import annotations

from nemovideo_mcp.timeline import EMPTY_TIMELINE, summarize, tracks_of

def test_the_seed_summary_exactly(seed_draft: dict) -> None:
    assert summarize(tracks_of(seed_draft)) == (
        'Timeline (3 tracks): 1. Video: city timelapse (0-10s) 2. BGM: Lo-fi (0-10s, 35%) 3. Title: "Urban Dreams" (0-3s)'
    )


def test_structured_tracks_carry_the_same_facts(seed_draft: dict) -> None:
    video, music, title = tracks_of(seed_draft)
    assert (video.kind, video.start_seconds, video.end_seconds) == ("Video", 0, 10)
    assert (music.kind, music.volume_percent) == ("BGM", 35)
    assert (title.kind, title.label, title.volume_percent) == ("Title", "Urban Dreams", None)


def test_empty_drafts_say_how_to_start() -> None:
    for draft in (None, {}, {"t": []}, {"t": [{"tt": 0, "sg": []}]}):
        assert tracks_of(draft) == []
        assert summarize(tracks_of(draft)) == EMPTY_TIMELINE
    assert "upload" in EMPTY_TIMELINE and "Describe" in EMPTY_TIMELINE


def test_segments_span_and_odd_shapes_are_tolerated() -> None:
    draft = {
        "t": [
            {"tt": 0, "unknown": 1, "sg": [{"s": 2000, "d": 1500, "m": {"name": "a"}}, {"start": 4000, "d": 2500}]},
            {"tt": 1, "sg": [{"st": 0, "d": 5000, "m": {"name": "Narration", "role": "voice", "volume": 80}}]},
            {"tt": 7, "sg": [{"st": 1500, "d": 1000, "m": {"text": "Download now", "role": "caption"}}]},
            {"tt": 99, "sg": [{"d": 1000}]},
            "not a track",
        ]
    }
    assert summarize(tracks_of(draft)) == (
        "Timeline (4 tracks): 1. Video: a (2-6.5s) 2. Audio: Narration (0-5s, 80%) "
        '3. Text: "Download now" (1.5-2.5s) 4. Track: item (0-1s)'
    )


def test_change_reports_name_added_removed_and_changed_tracks(seed_draft: dict) -> None:
    from nemovideo_mcp.timeline import describe_changes

    before = tracks_of(seed_draft)
    quieter = {"t": [seed_draft["t"][0], {"tt": 1, "sg": [{"st": 0, "d": 10000, "m": {"name": "Lo-fi", "vol": 0.2}}]}]}
    assert describe_changes(before, tracks_of(quieter)) == [
        '🗑️ Removed title "Urban Dreams"',
        "✏️ Changed background music Lo-fi: volume 35% → 20%",
    ]
    assert describe_changes([], before) == [
        "✅ Added video clip city timelapse (0–10 s)",
        "✅ Added background music Lo-fi (0–10 s)",
        '✅ Added title "Urban Dreams" (0–3 s)',
    ]
    assert describe_changes(before, before) == []


def test_two_identical_titles_are_two_tracks() -> None:
    from nemovideo_mcp.timeline import describe_changes

    title = {"tt": 7, "sg": [{"st": 0, "d": 3000, "m": {"text": "Hi"}}]}
    assert describe_changes(tracks_of({"t": [title]}), tracks_of({"t": [title, title]})) == ['✅ Added title "Hi" (0–3 s)']


def test_change_reports_read_well_for_unnamed_tracks_and_volumes_that_come_and_go() -> None:
    from nemovideo_mcp.timeline import describe_changes

    clip = {"tt": 0, "sg": [{"st": 0, "d": 4000}]}
    music = {"tt": 1, "sg": [{"st": 0, "d": 4000, "m": {"name": "Lo-fi"}}]}
    loud = {"tt": 1, "sg": [{"st": 0, "d": 4000, "m": {"name": "Lo-fi", "vol": 0.2}}]}
    assert describe_changes([], tracks_of({"t": [clip]})) == ["✅ Added video clip (0–4 s)"]
    assert describe_changes(tracks_of({"t": [music]}), tracks_of({"t": [loud]})) == [
        "✏️ Changed background music Lo-fi: volume set to 20%"
    ]
    assert describe_changes(tracks_of({"t": [loud]}), tracks_of({"t": [music]})) == [
        "✏️ Changed background music Lo-fi: volume no longer set (was 20%)"
    ]
