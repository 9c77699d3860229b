"""Ranking: every gate and tie-break, the invariants of the order, album mode, the `harmony rank` contract."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harmony.matching import parse_path, versions
from harmony.ranking import (
    Candidate,
    Preferences,
    Rung,
    UserContext,
    Wanted,
    album_folders,
    pick,
    pick_album,
    rank,
    rank_json,
)
from harmony.slskd import File, PeerResponse

WANTED = Wanted(
    "Radiohead", "Paranoid Android", ("Radiohead",), "OK Computer", "Radiohead", 2, 1, 1, 387_000, None, 1997
)
ALBUM_DIR = r"@@abcde\Music\Radiohead\1997 - OK Computer"
GOOD = ALBUM_DIR + r"\02 - Paranoid Android.flac"


def flac(name: str = GOOD, secs: int | None = 387, *, depth: int | None = 16, kbps: int = 900) -> File:
    rate = {16: 44100, 24: 96000}.get(depth or 0)
    return File(name, int((secs or 387) * kbps * 125), "flac", None, depth, rate, secs)


def mp3(
    name: str, secs: int | None = 387, *, kbps: int | None = 320, vbr: bool | None = False, real: int = 0
) -> File:
    return File(name, int(387 * (real or kbps or 320) * 125) + 50_000, "mp3", kbps, None, None, secs, vbr)


def peer(
    name: str,
    *files: File,
    slot: bool = True,
    speed: int = 1_000_000,
    queue: int = 0,
    locked: tuple[File, ...] = (),
) -> PeerResponse:
    return PeerResponse(name, slot, speed, queue, tuple(files), locked)


def verdict(
    *responses: PeerResponse, prefs: Preferences | None = None, context: UserContext | None = None
) -> Candidate:
    """The one candidate of a search that shows one file."""
    (only,) = rank(WANTED, responses, prefs, context)
    return only


def order(
    *responses: PeerResponse, prefs: Preferences | None = None, context: UserContext | None = None
) -> list[str]:
    return [c.username for c in rank(WANTED, responses, prefs, context) if c.accepted]


def rejected_for(candidate: Candidate, words: str) -> bool:
    return not candidate.accepted and any(
        r.startswith("rejected: ") and words in r for r in candidate.reasons
    )


# --- gates ----------------------------------------------------------------------------------------


def test_the_right_file_is_accepted_with_its_reasons() -> None:
    only = verdict(peer("u", flac()))
    assert only.accepted and only.rank == 1
    assert only.reasons[0].startswith("identity 1.00")
    assert "quality flac 16-bit" in only.reasons[1]
    assert "free upload slot, queue 0" in only.reasons[2]


def test_format_comes_from_the_file_name_not_the_extension_field() -> None:
    liar = File(GOOD, 387 * 900 * 125, "mp3", None, 16, 44100, 387)
    assert verdict(peer("u", liar)).accepted
    m4a = File(GOOD[:-5] + ".m4a", 387 * 256 * 125, "flac", 256, None, None, 387)
    assert rejected_for(verdict(peer("u", m4a)), "format 'm4a' not allowed")
    assert rejected_for(verdict(peer("u", flac(GOOD[:-5]))), "no extension")


def test_locked_files_are_rejected() -> None:
    assert rejected_for(verdict(peer("u", locked=(flac(),))), "locked")


def test_bitrate_floor_reported_or_estimated() -> None:
    assert rejected_for(verdict(peer("u", mp3(GOOD[:-5] + ".mp3", kbps=96))), "bitrate 96 kbps below 128")
    assert verdict(peer("u", mp3(GOOD[:-5] + ".mp3", kbps=128))).accepted
    unknown = mp3(GOOD[:-5] + ".mp3", None, kbps=None, vbr=None, real=96)
    assert rejected_for(verdict(peer("u", unknown)), "from size, below 128")
    assert verdict(peer("u", flac()), prefs=Preferences(min_bitrate_kbps=2000)).accepted  # lossless is exempt


def test_length_within_tolerance() -> None:
    assert verdict(peer("u", flac(secs=391))).accepted
    assert rejected_for(verdict(peer("u", flac(secs=395))), "length 6:35 vs 6:27")
    assert verdict(peer("u", flac(secs=395)), prefs=Preferences(duration_tolerance_s=10)).accepted
    assert verdict(peer("u", flac(secs=None))).accepted  # a missing length does not exclude


def test_length_is_estimated_from_size_and_bitrate() -> None:
    name = GOOD[:-5] + ".mp3"
    whole = File(name, 387 * 320 * 125 + 80_000, "mp3", 320, None, None, None, False)
    cut = File(name, 190 * 320 * 125 + 80_000, "mp3", 320, None, None, None, False)
    assert verdict(peer("u", whole)).accepted
    assert rejected_for(verdict(peer("u", cut)), "length about 3:12 from size and bitrate")


@pytest.mark.parametrize(
    ("file", "words"),
    [
        (flac(kbps=320), "implausible for flac"),  # an MP3 in a FLAC container
        (flac(secs=None, depth=None, kbps=200), "implausible for flac"),
        (mp3(GOOD[:-5] + ".mp3", kbps=320, real=128), "implausible for 320 kbps mp3"),  # the bitrate liar
        (flac(kbps=9000), "implausible for flac"),  # a whole album in one file
    ],
)
def test_size_must_fit_format_bitrate_and_length(file: File, words: str) -> None:
    assert rejected_for(verdict(peer("u", file)), words)
    assert verdict(peer("u", file), prefs=Preferences(check_size=False)).reasons  # the gate can be off


def test_identity_gates() -> None:
    other_act = flac(r"@@x\Music\Other Act - Paranoid Android.flac")
    assert rejected_for(verdict(peer("u", other_act)), "no artist evidence")
    live_folder = flac(r"@@x\Music\Radiohead\Live at Glastonbury 1997\05 - Paranoid Android.flac")
    assert rejected_for(verdict(peer("u", live_folder)), "unrequested version: live in folder")
    assert rejected_for(verdict(peer("u", flac(ALBUM_DIR + r"\02 - Paranoid Android (Remix).flac"))), "remix")
    strict = Preferences(identity_threshold=0.99)
    assert rejected_for(
        verdict(peer("u", flac(r"@@x\Radiohead - Paranoid Android.flac")), prefs=strict), "below 0.99"
    )


def test_users_blocked_cooling_down_or_files_marked_wrong() -> None:
    context = UserContext(
        blocked=frozenset({"bad"}), cooling=frozenset({"tired"}), wrong=frozenset({("w", GOOD)})
    )
    assert rejected_for(verdict(peer("bad", flac()), context=context), "user bad is blocked")
    assert rejected_for(verdict(peer("tired", flac()), context=context), "user tired is cooling down")
    assert rejected_for(verdict(peer("w", flac()), context=context), "marked wrong before")
    assert verdict(peer("fine", flac()), context=context).accepted


def test_unsafe_paths_are_rejected() -> None:
    assert rejected_for(
        verdict(peer("u", flac(r"@@x\Radiohead\..\..\02 - Paranoid Android.flac"))), "unsafe path"
    )
    assert rejected_for(verdict(peer("u", flac(GOOD.replace(".flac", "\x00.flac")))), "unsafe path")


def test_every_failing_gate_is_given() -> None:
    bad = File(r"@@x\Music\Other Act - Paranoid Android (Live).m4a", 1000, "", 64, None, None, 120)
    reasons = verdict(peer("u", locked=(bad,))).reasons
    for words in ("format 'm4a'", "locked", "length", "no artist evidence", "unrequested version: live"):
        assert any(words in r for r in reasons), (words, reasons)


# --- order ----------------------------------------------------------------------------------------


def test_identity_bucket_comes_first() -> None:
    sure = peer("sure", mp3(ALBUM_DIR + r"\02 - Paranoid Android.mp3"))
    unsure = peer("unsure", flac(r"@@x\Radiohead - Paranoid Android.flac", secs=None), speed=9_000_000)
    assert order(unsure, sure) == ["sure", "unsure"]  # 1.00 with a length beats 0.85 without one


def test_quality_ladder() -> None:
    files = {
        "hires": flac(GOOD, depth=24, kbps=2400),
        "cd": flac(GOOD),
        "cbr320": mp3(GOOD[:-5] + ".mp3"),
        "v0": mp3(GOOD[:-5] + ".mp3", kbps=245, vbr=True),
        "cbr256": mp3(GOOD[:-5] + ".mp3", kbps=256),
    }
    responses = [peer(name, f, speed=100_000 * (n + 1)) for n, (name, f) in enumerate(files.items())]
    assert order(*reversed(responses)) == list(files)


def test_a_custom_ladder_and_format_preference() -> None:
    prefs = Preferences(formats=("mp3", "flac"), ladder=(Rung.parse("mp3 320"),))
    assert order(peer("f", flac()), peer("m", mp3(GOOD[:-5] + ".mp3")), prefs=prefs) == ["m", "f"]
    prefs = Preferences(formats=("mp3", "flac"), ladder=())
    assert order(peer("f", flac()), peer("m", mp3(GOOD[:-5] + ".mp3")), prefs=prefs) == ["m", "f"]


def test_hires_needs_proof_when_the_bit_depth_is_missing() -> None:
    proven = peer("proven", flac(depth=None, kbps=2600))
    plain = peer("plain", flac(depth=16), speed=9_000_000)
    assert order(plain, proven) == ["proven", "plain"]
    unproven = peer("unproven", flac(depth=None, kbps=900), speed=100)
    assert order(unproven, plain) == ["plain", "unproven"]  # same rung: the faster peer


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ({"slot": True, "queue": 40, "speed": 60_000}, {"slot": False, "queue": 0, "speed": 9_000_000}),
        ({"queue": 0, "speed": 300_000}, {"queue": 8, "speed": 9_000_000}),
        ({"queue": 4, "speed": 100_000}, {"queue": 30, "speed": 100_000}),
        ({"speed": 5_000_000}, {"speed": 600_000}),
        ({"speed": 600_000, "queue": 1}, {"speed": 700_000, "queue": 2}),  # same buckets: exact queue
        ({"speed": 700_000}, {"speed": 600_000}),  # same buckets, same queue: exact speed
    ],
)
def test_availability_breaks_ties_in_order(first: dict[str, Any], second: dict[str, Any]) -> None:
    assert order(peer("b", flac(), **second), peer("a", flac(), **first)) == ["a", "b"]


def test_history_breaks_ties_before_exact_speed() -> None:
    context = UserContext(history={"trusted": (3, 0), "flaky": (1, 2)})
    responses = (
        peer("flaky", flac(), speed=700_000),
        peer("new", flac(), speed=650_000),
        peer("trusted", flac(), speed=600_000),
    )
    assert order(*responses, context=context) == ["trusted", "new", "flaky"]
    assert "history 3 ok, 0 failed" in rank(WANTED, responses, context=context)[0].reasons


def test_ties_fall_to_username_then_filename() -> None:
    twin = flac(ALBUM_DIR + r"\02 Paranoid Android.flac")
    responses = (peer("zed", flac()), peer("amy", twin, flac()))
    ranked = [(c.username, c.filename) for c in rank(WANTED, responses)]
    assert ranked == [("amy", GOOD), ("amy", twin.filename), ("zed", GOOD)]


def test_duplicate_listings_count_once() -> None:
    ranked = rank(WANTED, [peer("u", flac(), flac()), peer("u", flac(), slot=False)])
    assert [(c.username, c.rank) for c in ranked] == [("u", 1)]
    assert "free upload slot" in ranked[0].reasons[2]


# --- invariants -----------------------------------------------------------------------------------

NAMES = [
    GOOD,
    ALBUM_DIR + r"\02 - Paranoid Android.mp3",
    r"@@y\Radiohead - Paranoid Android.mp3",
    r"@@y\Radiohead - Paranoid Android (Live).mp3",
    r"@@y\Radiohead - Paranoid Android (Live at Glastonbury).flac",
    r"@@y\Radiohead - Paranoid Android (Remix).mp3",
    r"@@y\Radiohead - Paranoid Android - Radio Edit.mp3",
    r"@@y\Radiohead\Instrumentals\02 - Paranoid Android.flac",
    r"@@z\Other Act - Paranoid Android.mp3",
    r"@@z\Radiohead\OK Computer\03 - Subterranean Homesick Alien.flac",
    r"@@z\Radiohead - Paranoid Android.m4a",
    r"@@z\Radiohead\OK Computer\..\02 Paranoid Android.flac",
]


def _file(name: str, secs: int, kbps: int, depth: int, attrs: bool) -> File:
    lossy = name.endswith(("mp3", "m4a"))
    return File(
        name,
        int(387 * kbps * 125),
        name.rpartition(".")[2],
        kbps if lossy else None,
        None if lossy else depth,
        44100,
        secs if attrs else None,
    )


FILES = st.builds(
    _file,
    st.sampled_from(NAMES),
    st.sampled_from([387, 386, 380, 420, 200]),
    st.sampled_from([96, 192, 320, 900, 2400]),
    st.sampled_from([16, 24]),
    st.booleans(),
)
PEERS = st.builds(
    lambda name, files, locked, slot, speed, queue: PeerResponse(
        name, slot, speed, queue, tuple(files), tuple(locked)
    ),
    st.sampled_from(["amy", "bob", "cat", "dan", "eve"]),
    st.lists(FILES, max_size=4),
    st.lists(FILES, max_size=1),
    st.booleans(),
    st.sampled_from([0, 40_000, 300_000, 2_000_000, 6_000_000]),
    st.sampled_from([0, 1, 6, 30, 80]),
)
SEARCHES = st.lists(PEERS, max_size=6)
CONTEXTS = st.builds(
    lambda blocked, history: UserContext(blocked=frozenset(blocked), history=dict(history)),
    st.sets(st.sampled_from(["amy", "bob"]), max_size=1),
    st.dictionaries(st.sampled_from(["cat", "dan", "eve"]), st.tuples(st.integers(0, 5), st.integers(0, 5))),
)


def _shape(candidates: list[Candidate]) -> list[tuple[str, str, bool, int | None, tuple[str, ...]]]:
    return [(c.username, c.filename, c.accepted, c.rank, c.reasons) for c in candidates]


@settings(max_examples=60, deadline=None)
@given(SEARCHES, CONTEXTS, st.randoms(use_true_random=False))
def test_the_order_is_deterministic_and_independent_of_response_order(
    responses: list[PeerResponse], context: UserContext, rng: random.Random
) -> None:
    first = rank(WANTED, responses, context=context)
    shuffled = [
        PeerResponse(
            p.username,
            p.has_free_slot,
            p.upload_speed,
            p.queue_length,
            tuple(rng.sample(p.files, len(p.files))),
            p.locked_files,
        )
        for p in responses
    ]
    rng.shuffle(shuffled)
    assert _shape(rank(WANTED, shuffled, context=context)) == _shape(first)
    assert _shape(rank(WANTED, responses, context=context)) == _shape(first)


@settings(max_examples=60, deadline=None)
@given(SEARCHES, CONTEXTS)
def test_the_order_is_total_and_no_rejected_candidate_is_picked(
    responses: list[PeerResponse], context: UserContext
) -> None:
    ranked = rank(WANTED, responses, context=context)
    keys = [(c.username, c.filename) for c in ranked]
    assert len(keys) == len(set(keys))
    accepted = [c for c in ranked if c.accepted]
    assert [c.rank for c in accepted] == list(range(1, len(accepted) + 1))
    assert ranked[: len(accepted)] == accepted  # the accepted come first
    assert all(c.rank is None for c in ranked if not c.accepted)
    best = pick(ranked)
    assert (best is None) == (not accepted)
    assert best is None or (best.accepted and best.username not in context.blocked)
    document = rank_json(
        {"wanted": _wanted_json(), "responses": [_response_json(p) for p in responses]}, context=context
    )
    picked = document["pick"]
    assert picked == (None if best is None else {"username": best.username, "filename": best.filename})


LIVE = Wanted("Radiohead", "Paranoid Android - Live at Glastonbury", ("Radiohead",), duration_ms=387_000)


@settings(max_examples=60, deadline=None)
@given(SEARCHES)
def test_a_requested_version_is_required_and_an_unrequested_one_refused(
    responses: list[PeerResponse],
) -> None:
    for candidate in rank(LIVE, responses):
        if candidate.accepted:
            assert "live" in versions(candidate.filename)
    for candidate in rank(WANTED, responses):
        if candidate.accepted:
            assert not versions(candidate.filename)


# --- the `harmony rank` contract --------------------------------------------------------------------


def _wanted_json() -> dict[str, Any]:
    return {
        "artist": "Radiohead",
        "artists": ["Radiohead"],
        "title": "Paranoid Android",
        "album": "OK Computer",
        "album_artist": "Radiohead",
        "track_number": 2,
        "disc_number": 1,
        "total_discs": 1,
        "duration_ms": 387_000,
        "isrc": None,
        "release_year": 1997,
    }


def _response_json(p: PeerResponse) -> dict[str, Any]:
    def file(f: File) -> dict[str, Any]:
        raw = {
            "filename": f.filename,
            "size": f.size,
            "extension": f.extension,
            "bitRate": f.bit_rate,
            "bitDepth": f.bit_depth,
            "sampleRate": f.sample_rate,
            "length": f.length,
            "isVariableBitRate": f.vbr,
        }
        return {k: v for k, v in raw.items() if v is not None}

    return {
        "username": p.username,
        "hasFreeUploadSlot": p.has_free_slot,
        "uploadSpeed": p.upload_speed,
        "queueLength": p.queue_length,
        "files": [file(f) for f in p.files],
        "lockedFiles": [file(f) for f in p.locked_files],
    }


def test_rank_json_output_shape() -> None:
    responses = [_response_json(peer("u", flac(), mp3(r"@@y\Other - Paranoid Android.mp3")))]
    out = rank_json({"wanted": _wanted_json(), "responses": responses, "comment": "ignored"})
    assert out["pick"] == {"username": "u", "filename": GOOD}
    assert [set(c) for c in out["candidates"]] == [
        {"username", "filename", "accepted", "rank", "reasons"}
    ] * 2
    assert [(c["accepted"], c["rank"]) for c in out["candidates"]] == [(True, 1), (False, None)]
    assert all(isinstance(r, str) for c in out["candidates"] for r in c["reasons"])


def test_rank_json_preferences_default_to_the_given_ones() -> None:
    document = {"wanted": _wanted_json(), "responses": [_response_json(peer("u", flac()))]}
    assert rank_json(document, Preferences(formats=("mp3",)))["pick"] is None
    document["preferences"] = {"formats": ["FLAC"], "min_bitrate_kbps": 192, "unknown": True}
    assert rank_json(document, Preferences(formats=("mp3",)))["pick"] == {"username": "u", "filename": GOOD}


def test_rank_json_accepts_what_slskd_sends() -> None:
    raw = {
        "username": "u",
        "token": 5,
        "fileCount": 1,
        "lockedFileCount": 0,
        "hasFreeUploadSlot": True,
        "uploadSpeed": 100,
        "queueLength": 0,
        "lockedFiles": [],
        "files": [
            {
                "filename": GOOD,
                "size": 40_000_000,
                "code": 1,
                "extension": "",
                "bitDepth": 16,
                "sampleRate": 44100,
                "length": 387,
                "isLocked": False,
            }
        ],
    }
    assert rank_json({"wanted": {"artist": "Radiohead", "title": "Paranoid Android"}, "responses": [raw]})[
        "pick"
    ]


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ([], "expected a JSON object"),
        ({"responses": []}, "wanted: expected an object"),
        ({"wanted": {"artist": "a"}, "responses": []}, "wanted.title"),
        ({"wanted": {"title": "t"}, "responses": []}, "wanted.artist"),
        ({"wanted": {"title": "t", "artists": ["a", 3]}, "responses": []}, "wanted.artists[1]"),
        (
            {"wanted": {"title": "t", "artist": "a", "duration_ms": "387"}, "responses": []},
            "wanted.duration_ms",
        ),
        (
            {"wanted": {"title": "t", "artist": "a", "track_number": -1}, "responses": []},
            "wanted.track_number",
        ),
        (
            {"wanted": {"title": "t", "artist": "a", "disc_number": True}, "responses": []},
            "wanted.disc_number",
        ),
        ({"wanted": {"title": "t", "artist": "a"}}, "responses: required"),
        ({"wanted": {"title": "t", "artist": "a"}, "responses": {}}, "responses: expected a list"),
        ({"wanted": {"title": "t", "artist": "a"}, "responses": [3]}, "responses[0]: expected an object"),
        ({"wanted": {"title": "t", "artist": "a"}, "responses": [{}]}, "responses[0].username"),
        (
            {"wanted": {"title": "t", "artist": "a"}, "responses": [{"username": "u", "files": {}}]},
            "responses[0].files",
        ),
        (
            {
                "wanted": {"title": "t", "artist": "a"},
                "responses": [{"username": "u", "files": [{"size": 1}]}],
            },
            "responses[0].files[0].filename",
        ),
        (
            {
                "wanted": {"title": "t", "artist": "a"},
                "responses": [{"username": "u", "lockedFiles": [{"filename": "x.mp3", "bitRate": "320"}]}],
            },
            "responses[0].lockedFiles[0].bitRate",
        ),
        (
            {"wanted": {"title": "t", "artist": "a"}, "responses": [{"username": "u", "queueLength": 1.5}]},
            "responses[0].queueLength",
        ),
        (
            {"wanted": {"title": "t", "artist": "a"}, "preferences": [], "responses": []},
            "preferences: expected",
        ),
        (
            {"wanted": {"title": "t", "artist": "a"}, "preferences": {"formats": "flac"}, "responses": []},
            "preferences.formats",
        ),
        (
            {"wanted": {"title": "t", "artist": "a"}, "preferences": {"ladder": ["flac x"]}, "responses": []},
            "preferences.ladder",
        ),
        (
            {
                "wanted": {"title": "t", "artist": "a"},
                "preferences": {"identity_threshold": 2},
                "responses": [],
            },
            "preferences.identity_threshold",
        ),
        (
            {
                "wanted": {"title": "t", "artist": "a"},
                "preferences": {"min_bitrate_kbps": "high"},
                "responses": [],
            },
            "preferences.min_bitrate_kbps",
        ),
    ],
)
def test_rank_json_names_the_malformed_field(document: Any, field: str) -> None:
    with pytest.raises(ValueError, match=field.replace("[", r"\[").replace("]", r"\]")):
        rank_json(document)


def test_rungs_parse_and_print() -> None:
    for text in ("flac 24", "flac 24/96", "flac", "mp3 320", "mp3 v0", "ogg"):
        assert str(Rung.parse(text)) == text
    for bad in ("", "flac 24 96", "mp3 v9", "mp3 24/96", "fl@c"):
        with pytest.raises(ValueError):
            Rung.parse(bad)


# --- album mode -----------------------------------------------------------------------------------

OK_COMPUTER = [
    ("Airbag", 284),
    ("Paranoid Android", 387),
    ("Subterranean Homesick Alien", 267),
    ("Exit Music (For a Film)", 264),
    ("Let Down", 299),
    ("Karma Police", 264),
    ("Fitter Happier", 117),
    ("Electioneering", 230),
    ("Climbing Up the Walls", 285),
    ("No Surprises", 229),
    ("Lucky", 259),
    ("The Tourist", 324),
]
RELEASE = [
    Wanted("Radiohead", title, ("Radiohead",), "OK Computer", "Radiohead", n, 1, 1, secs * 1000 + 300)
    for n, (title, secs) in enumerate(OK_COMPUTER, 1)
]
WANTED_TRACKS = {1, 5, 9}


def folder(
    root: str, *, fmt: str = "flac", skip: tuple[int, ...] = (), suffix: str = "", extra: int = 0
) -> list[File]:
    files = []
    for n, (title, secs) in enumerate(
        OK_COMPUTER + [("Lull", 147), ("Meeting in the Aisle", 186)][:extra], 1
    ):
        if n - 1 in skip:
            continue
        name = f"{root}\\{n:02d} - {title}{suffix}.{fmt}"
        if fmt == "flac":
            files.append(File(name, secs * 900 * 125, fmt, None, 16, 44100, secs))
        else:
            files.append(File(name, secs * 320 * 125 + 60_000, fmt, 320, None, None, secs, False))
    return files


def test_album_mode_picks_one_complete_folder() -> None:
    responses = [
        peer("complete", *folder(r"@@a\Music\Radiohead\1997 - OK Computer"), slot=False, queue=3),
        peer("missing", *folder(r"@@b\Radiohead - OK Computer [FLAC]", skip=(1,)), speed=9_000_000),
        peer("mp3", *folder(r"@@c\Radiohead - OK Computer (1997)", fmt="mp3"), speed=9_000_000),
        peer("live", *folder(r"@@d\Radiohead - OK Computer Live", suffix=" (Live)"), speed=9_000_000),
    ]
    chosen = pick_album(RELEASE, WANTED_TRACKS, responses)
    assert chosen is not None
    assert chosen.username == "complete"
    assert [t.index for t in chosen.tracks] == sorted(WANTED_TRACKS)
    assert {t.candidate.username for t in chosen.tracks} == {"complete"}
    assert [f.filename.rpartition("\\")[2] for f in chosen.files] == [
        "02 - Paranoid Android.flac",
        "06 - Karma Police.flac",
        "10 - No Surprises.flac",
    ]
    assert chosen.reasons[1] == "12 of 12 release tracks, 12 flac files"
    verdicts = {v.username: v for v in album_folders(RELEASE, WANTED_TRACKS, responses)}
    assert (verdicts["mp3"].accepted, verdicts["mp3"].rank) == (True, 2)
    assert any("'Paranoid Android' missing" in r for r in verdicts["missing"].reasons)
    assert any("unrequested version: live" in r for r in verdicts["live"].reasons)


def test_album_mode_finds_nothing_when_no_folder_is_complete() -> None:
    responses = [
        peer("missing", *folder(r"@@b\Radiohead - OK Computer", skip=(5,))),
        peer(
            "locked",
            *folder(r"@@c\Radiohead - OK Computer", skip=(9,)),
            locked=(folder(r"@@c\Radiohead - OK Computer")[9],),
        ),
        peer("other_album", *folder(r"@@d\Radiohead - The Bends")),
        peer("scattered", *folder(r"@@e\Radiohead - OK Computer")[1:2]),
    ]
    assert pick_album(RELEASE, WANTED_TRACKS, responses) is None
    verdicts = {v.username: v.reasons for v in album_folders(RELEASE, WANTED_TRACKS, responses)}
    assert any("'Karma Police' missing" in r for r in verdicts["missing"])
    assert any("'No Surprises' missing (locked by the peer)" in r for r in verdicts["locked"])
    assert any("album's name is not in the folder" in r for r in verdicts["other_album"])
    assert any("only 1 of 12 release tracks" in r for r in verdicts["scattered"])
    assert pick_album(RELEASE, WANTED_TRACKS, []) is None
    assert pick_album(RELEASE, set(), [peer("complete", *folder(r"@@a\Radiohead\OK Computer"))]) is None


def test_album_mode_allows_bonus_tracks_and_splits_mixed_folders_by_format() -> None:
    mixed = folder(r"@@a\Radiohead\OK Computer OKNOTOK", extra=2)
    mixed += folder(r"@@a\Radiohead\OK Computer OKNOTOK", fmt="mp3", skip=(5,))
    chosen = pick_album(RELEASE, WANTED_TRACKS, [peer("u", *mixed)])
    assert chosen is not None and {f.filename[-4:] for f in chosen.files} == {"flac"}
    verdicts = album_folders(RELEASE, WANTED_TRACKS, [peer("u", *mixed)])
    assert [(v.format, v.accepted) for v in verdicts] == [("flac", True), ("mp3", False)]


THE_WALL = [
    Wanted("Pink Floyd", title, ("Pink Floyd",), "The Wall", "Pink Floyd", n, disc, 2, secs * 1000)
    for disc, titles in (
        (
            1,
            [
                ("In the Flesh?", 199),
                ("The Thin Ice", 147),
                ("Another Brick in the Wall, Pt. 1", 191),
                ("The Happiest Days of Our Lives", 106),
                ("Another Brick in the Wall, Pt. 2", 239),
            ],
        ),
        (
            2,
            [
                ("Hey You", 280),
                ("Is There Anybody Out There?", 160),
                ("Nobody Home", 206),
                ("Vera", 95),
                ("Bring the Boys Back Home", 81),
                ("Comfortably Numb", 383),
            ],
        ),
    )
    for n, (title, secs) in enumerate(titles, 1)
]


WALL_LAYOUTS = {
    "cd": r"@@w\Pink Floyd\1979 - The Wall\CD{disc}\{no:02d} - {title}.flac",
    "sibling": r"@@w\Pink Floyd - The Wall (Disc {disc})\{no:02d} {title}.flac",
    "prefix": r"@@w\Pink Floyd - The Wall\{disc}-{no:02d} {title}.flac",
}


def wall_files(layout: str) -> list[File]:
    files = []
    for track in THE_WALL:
        secs = (track.duration_ms or 0) // 1000
        title = track.title.replace("?", "")
        name = WALL_LAYOUTS[layout].format(disc=track.disc_number, no=track.track_number, title=title)
        files.append(File(name, secs * 900 * 125, "flac", None, 16, 44100, secs))
    return files


@pytest.mark.parametrize("layout", ["cd", "sibling", "prefix"])
def test_album_mode_merges_the_discs_of_a_release(layout: str) -> None:
    wanted = {2, 4, 10}  # "Pt. 1" and "Pt. 2" on disc 1, "Comfortably Numb" on disc 2
    chosen = pick_album(
        THE_WALL, wanted, [peer("u", *wall_files(layout)), peer("v", *wall_files(layout)[:5])]
    )
    assert chosen is not None and chosen.username == "u"
    names = [f.filename for f in chosen.files]
    assert "Pt. 1" in names[0] and "Pt. 2" in names[1] and "Comfortably Numb" in names[2]
    assert len({parse_path(f.filename).directory for f in wall_files(layout)}) == 1


def test_album_mode_refuses_indexes_outside_the_release() -> None:
    with pytest.raises(ValueError, match="within the release's 12 tracks"):
        album_folders(RELEASE, {12}, [])


def test_album_mode_does_not_depend_on_response_order() -> None:
    responses = [
        peer("amy", *folder(r"@@a\Radiohead\OK Computer")),
        peer("bob", *folder(r"@@b\Radiohead - OK Computer (1997)")),
        peer("cat", *folder(r"@@c\Radiohead - OK Computer", skip=(1,))),
    ]
    first = album_folders(RELEASE, WANTED_TRACKS, responses)
    for shuffled in (responses[::-1], responses[1:] + responses[:1]):
        assert album_folders(RELEASE, WANTED_TRACKS, shuffled) == first
    chosen = pick_album(RELEASE, WANTED_TRACKS, responses)
    assert chosen is not None and chosen.username == "amy"  # a tie on everything else: the username
