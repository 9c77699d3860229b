"""Backfill's scoring, pure: the ranker's identity score over a file's tags, and its invariants."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from harmony import backfill, matching
from harmony.backfill import LibraryFile
from harmony.fakes.catalogue import _ADJECTIVES, _NOUNS, MAIN_ARTISTS
from harmony.spotify import AlbumRef, ArtistRef, Track

WORDS = st.sampled_from(_ADJECTIVES + _NOUNS)
PHRASE = st.lists(WORDS, min_size=1, max_size=4).map(" ".join)
# Names in two alphabets that share no letter: no word of one, nor words run together, is the other's.
FIRST_HALF = st.text("abcdefghijklm", min_size=2, max_size=9)
SECOND_HALF = st.text("nopqrstuvwxyz", min_size=2, max_size=9)
ANY_TEXT = st.text(max_size=60)


def names(words: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.lists(words, min_size=1, max_size=3).map(" ".join)


def spotify_track(title: str, artists: list[str], album: str, duration_ms: int, number: int = 1) -> Track:
    refs = tuple(ArtistRef(f"artist{i:018d}", name) for i, name in enumerate(artists))
    ref = AlbumRef("album0000000000000000", album, "album", "2020-01-01", "day", 12, refs[:1])
    return Track("track0000000000000000", title, refs, duration_ms, number, 1, album=ref)


def library_file(
    title: str, artists: list[str], album: str, duration_ms: int, number: int | None = 1
) -> LibraryFile:
    return LibraryFile(
        1, "a/b.flac", title, tuple(artists), album, "", number, None, duration_ms, None, "flac"
    )


@settings(max_examples=300, deadline=None)
@given(
    title=ANY_TEXT,
    artists=st.lists(ANY_TEXT, max_size=3),
    album=ANY_TEXT,
    length=st.integers(0, 10**7),
    their_title=ANY_TEXT,
    theirs=st.lists(ANY_TEXT, max_size=3),
    their_album=ANY_TEXT,
    their_length=st.integers(0, 10**7),
)
def test_confidence_is_in_0_1_and_an_ineligible_result_stays_under_ruled_out(
    title: str,
    artists: list[str],
    album: str,
    length: int,
    their_title: str,
    theirs: list[str],
    their_album: str,
    their_length: int,
) -> None:
    file = library_file(title, artists, album, length)
    judged = backfill.judge(file, spotify_track(their_title, theirs, their_album, their_length))
    assert 0.0 <= judged.confidence <= 1.0
    assert judged.eligible or judged.confidence <= backfill.RULED_OUT
    # Whatever the tags hold, the path the identity score reads is a safe one.
    assert matching.parse_path(backfill.as_path(file)).unsafe == ""


@settings(max_examples=300, deadline=None)
@given(
    title=PHRASE,
    album=PHRASE,
    ours=st.lists(names(FIRST_HALF), min_size=1, max_size=3),
    theirs=st.lists(names(SECOND_HALF), min_size=1, max_size=3),
    length=st.integers(60_000, 600_000),
)
def test_a_match_never_crosses_artists_whose_names_differ(
    title: str, album: str, ours: list[str], theirs: list[str], length: int
) -> None:
    file = library_file(title, ours, album, length)
    track = spotify_track(title, theirs, album, length)
    assert not backfill.artists_agree(ours, theirs)
    judged = backfill.judge(file, track)
    assert not judged.eligible and judged.confidence <= backfill.RULED_OUT
    assert backfill.best(file, [track]) == judged
    assert backfill.by_isrc(file, [track]) is None


@settings(max_examples=200, deadline=None)
@given(
    title=PHRASE,
    album=PHRASE,
    artists=st.lists(st.sampled_from(MAIN_ARTISTS), min_size=1, max_size=2, unique=True),
    length=st.integers(60_000, 600_000),
    drift=st.integers(-2000, 2000),
    number=st.integers(1, 20),
)
def test_the_same_song_is_a_confident_match(
    title: str, album: str, artists: list[str], length: int, drift: int, number: int
) -> None:
    file = library_file(title, artists, album, length + drift, number)
    judged = backfill.judge(file, spotify_track(title, artists, album, length, number))
    assert judged.eligible and judged.confidence >= 0.9, judged.reasons


@settings(max_examples=200, deadline=None)
@given(title=PHRASE, artists=st.lists(st.sampled_from(MAIN_ARTISTS), min_size=1, max_size=2, unique=True))
def test_another_length_is_never_eligible(title: str, artists: list[str]) -> None:
    file = library_file(title, artists, "", 200_000)
    judged = backfill.judge(file, spotify_track(title, artists, "", 200_000 + 30_000))
    assert not judged.eligible and "length differs" in judged.reasons


@given(title=ANY_TEXT, artists=st.lists(ANY_TEXT, max_size=3), album=ANY_TEXT)
def test_queries_are_well_formed_field_filters(title: str, artists: list[str], album: str) -> None:
    for query in backfill.queries(library_file(title, artists, album, 0)):
        assert query.startswith('track:"') and query.count('"') in (2, 4, 6)
        assert query.isprintable()


def test_queries_drop_qualifiers_and_credits() -> None:
    file = library_file("Song (feat. Guest) - 2011 Remaster", ["Main feat. Guest"], "Album [Deluxe]", 0)
    assert backfill.queries(file) == [
        'track:"Song" artist:"Main" album:"Album"',
        'track:"Song" artist:"Main"',
    ]
    assert backfill.queries(library_file("", ["A"], "", 0)) == []
    assert backfill.queries(library_file("(Untitled)", [], "", 0)) == ['track:"(Untitled)"']


def test_isrc_is_taken_in_its_canonical_form_or_not_at_all() -> None:
    def code(text: str) -> str | None:
        return backfill.isrc(LibraryFile(1, "x.flac", "t", ("a",), isrc=text))

    assert code("us-rc1-76-07839") == "USRC17607839"
    assert code("USRC17607839") == "USRC17607839"
    assert code("not an isrc") is None and code("") is None


def test_artists_agree_on_spelling_and_on_a_credit_within_a_credit() -> None:
    agree = backfill.artists_agree
    assert agree(["AC/DC"], ["ACDC"]) and agree(["The Beatles"], ["Beatles, The"])
    assert agree(["Simon & Garfunkel"], ["Simon & Garfunkel"]) and agree(["A & B"], ["B"])
    assert agree(["Ночной Город"], ["Ночной Город"]) and not agree(["Aurora"], ["Kite Theory"])
    assert not agree([], ["A"])
