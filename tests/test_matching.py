"""Track identity: normalisation, version markers, remote paths and the identity score."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harmony.matching import (
    fold,
    identity,
    normalise_artist,
    normalise_artists,
    normalise_title,
    parse_path,
    tokens,
    versions,
)


@dataclass(frozen=True)
class Track:
    artist: str
    title: str
    artists: tuple[str, ...] = ()
    album: str = ""
    album_artist: str = ""
    track_number: int | None = None
    disc_number: int | None = None
    total_discs: int | None = None
    duration_ms: int | None = None


PARANOID = Track(
    "Radiohead", "Paranoid Android", ("Radiohead",), "OK Computer", "Radiohead", 2, 1, 1, 387_000
)

# Titles as Spotify and file names write them: brackets, dashes, credits, accents, scripts.
TITLE_TEXT = st.text(
    alphabet=st.sampled_from(
        list("abcxyzABCXYZ0129 ()[]-–'’&.,:!?_/")
        + list("éøßñçÅ")
        + list("дкрФЖ")
        + list("αβΣ")
        + list("夜に駆け한글")
    ),
    max_size=40,
)
WORDS = st.sampled_from(
    [
        "feat.",
        "ft",
        "Remastered",
        "2011",
        "Live",
        "Remix",
        "Deluxe",
        "Edition",
        "(",
        ")",
        "[",
        "]",
        "-",
        "Song",
        "Part",
        "II",
        "with",
        "Version",
        "Radio",
        "Edit",
        "The",
        "Mix",
        "Original",
        "&",
        "Sped",
        "Up",
    ]
)
TITLE_WORDS = st.lists(WORDS, max_size=10).map(" ".join)


# --- normalisation ---------------------------------------------------------------------------------


@given(st.one_of(TITLE_TEXT, TITLE_WORDS))
def test_title_normalisation_is_idempotent(title: str) -> None:
    once = normalise_title(title)
    assert normalise_title(once) == once


@given(st.one_of(TITLE_TEXT, TITLE_WORDS))
def test_artist_normalisation_is_idempotent(name: str) -> None:
    once = normalise_artist(name)
    assert normalise_artist(once) == once


@given(st.lists(st.one_of(TITLE_TEXT, TITLE_WORDS), max_size=5), st.randoms(use_true_random=False))
def test_artist_lists_are_order_independent(names: list[str], rng: object) -> None:
    shuffled = names[:]
    rng.shuffle(shuffled)  # type: ignore[attr-defined]
    assert normalise_artists(shuffled) == normalise_artists(names)
    assert normalise_artists(names + names) == normalise_artists(names)
    assert normalise_artists(normalise_artists(names)) == normalise_artists(names)


NON_LATIN = st.text(
    alphabet=st.one_of(
        st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF),  # CJK ideographs
        st.characters(min_codepoint=0x3041, max_codepoint=0x3096),  # hiragana
        st.characters(min_codepoint=0x30A1, max_codepoint=0x30FA),  # katakana
        st.characters(min_codepoint=0xAC00, max_codepoint=0xD7A3),  # Hangul syllables
        st.sampled_from("абвгдежзийклмнопрстуфхцчшщыэюя"),
        st.sampled_from("αβγδεζηθικλμνξοπρστυφχψω"),
    ),
    min_size=1,
    max_size=12,
)


@given(NON_LATIN)
def test_non_latin_text_never_normalises_to_nothing(text: str) -> None:
    assert normalise_title(text)
    assert normalise_artist(text)
    assert tokens(text)


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Bohemian Rhapsody - Remastered 2011", "bohemian rhapsody"),
        ("Here Comes The Sun - 2019 Mix", "here comes the sun"),
        ("Song (Deluxe Edition)", "song"),
        ("Song [2009 Remaster]", "song"),
        ("Song - Single Version", "song"),
        ("Get Lucky (feat. Pharrell Williams and Nile Rodgers)", "get lucky"),
        ("Uptown Funk (feat. Bruno Mars) - Live", "uptown funk live"),
        ("Song ft. Someone", "song"),
        ("Song featuring Someone [Radio Edit]", "song radio edit"),
        ("Song (with Someone)", "song"),
        ("Song - Live at Wembley", "song live at wembley"),
        ("Song (Tiësto Remix)", "song tiesto remix"),
        ("Don't Stop Me Now", "dont stop me now"),
        ("Another Brick in the Wall, Pt. 2", "another brick in the wall part 2"),
        ("Another Brick In The Wall (Part II)", "another brick in the wall part 2"),
        ("(What's The Story) Morning Glory?", "whats the story morning glory"),
        ("Hoppípolla", "hoppipolla"),
        ("Группа крови", "gruppa krovi"),
        ("Ζορμπάς", "zorbas"),
        ("夜に駆ける", "夜に駆ける"),
        ("ＹＯＡＳＯＢＩ", "yoasobi"),
        ("좋은 날", "좋은 날"),
        ("1979 - Remastered 2012", "1979"),
    ],
)
def test_title_normalisation(title: str, expected: str) -> None:
    assert normalise_title(title) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("The Beatles", "beatles"),
        ("Beatles, The", "beatles"),
        ("Guns N' Roses", "guns and roses"),
        ("Simon & Garfunkel", "simon and garfunkel"),
        ("Florence + The Machine", "florence and the machine"),
        ("Sigur Rós", "sigur ros"),
        ("Mötley Crüe", "motley crue"),
        ("Кино", "kino"),
        ("Daft Punk feat. Pharrell", "daft punk"),
        ("The The", "the"),
    ],
)
def test_artist_normalisation(name: str, expected: str) -> None:
    assert normalise_artist(name) == expected


def test_artist_lists_sort_and_drop_duplicates() -> None:
    assert normalise_artists(["Pharrell Williams", "Daft Punk", "daft punk", ""]) == (
        "daft punk",
        "pharrell williams",
    )


def test_digits_that_are_not_decimal_are_words() -> None:
    # Python calls the Rumi numeral "𐹠" a digit, yet int() refuses it ("²" becomes "2" when folded).
    assert tokens("Track ² 𐹠 007") == ("track", "2", "𐹠", "7")
    assert normalise_title("𐹠") == "𐹠"


def test_fold_keeps_kana_voicing_and_hangul() -> None:
    assert fold("が") == "が"  # the voicing mark is a combining character, but not an accent
    assert fold("한글") == "한글"
    assert fold("Ærø") == "aero"


# --- versions --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "marker"),
    [
        ("Song (Live)", "live"),
        ("Song - Live at Wembley", "live"),
        ("Song (En Vivo)", "live"),
        ("Song (Ao Vivo)", "live"),
        ("Song (En Directo)", "live"),
        ("Song (Live-Version)", "live"),
        ("Song (Live ver.)", "live"),
        ("Song (ライブ)", "live"),
        ("Song [Концертная запись]", "live"),
        ("Song (Club Remix)", "remix"),
        ("Song (Tiësto Mix)", "remix"),
        ("Song (Remezcla)", "remix"),
        ("Song (Versión Acústica)", "acoustic"),
        ("Song (Akustik Version)", "acoustic"),
        ("Song (Instrumental)", "instrumental"),
        ("Song (Inst.)", "instrumental"),
        ("Song (オフボーカル)", "instrumental"),
        ("Song (Karaoke Version)", "karaoke"),
        ("Song (In the Style of Someone)", "karaoke"),
        ("Song (Cover)", "cover"),
        ("Song (Demo)", "demo"),
        ("Song (Take 9)", "demo"),
        ("Song (Slowed + Reverb)", "slowed"),
        ("Song (Sped Up)", "sped_up"),
        ("Song (Nightcore)", "sped_up"),
        ("Song (Radio Edit)", "radio_edit"),
        ("Song (Edit)", "radio_edit"),
        ('Song (7" Version)', "radio_edit"),
        ("Song (Extended Mix)", "extended"),
        ('Song (12" Version)', "extended"),
        ("Song (Acapella)", "acapella"),
        ("Song (Clean)", "clean"),
        ("Song (German Version)", "language"),
        ("Song (Abbacadabra Version)", "variant"),
    ],
)
def test_version_markers(text: str, marker: str) -> None:
    assert marker in versions(text)


@pytest.mark.parametrize(
    "text",
    [
        "Song",
        "Song (Original Mix)",
        "Song (Album Version)",
        "Song - Remastered 2011",
        "Song (2009 Stereo Mix)",
        "Song (Single Version)",
        "Alive",
        "Song (Explicit)",
    ],
)
def test_plain_versions_carry_no_marker(text: str) -> None:
    assert versions(text) == frozenset()


# --- paths ----------------------------------------------------------------------------------------


def test_paths_split_on_both_separators_and_fold_disc_folders() -> None:
    windows = parse_path(r"@@abcde\Music\Pink Floyd\The Wall\CD2\06 - Comfortably Numb.flac")
    unix = parse_path("/home/me/Music/Pink Floyd/The Wall/CD2/06 - Comfortably Numb.flac")
    for path in (windows, unix):
        assert path.folders[:2] == ("The Wall", "Pink Floyd")
        assert (path.disc, path.track, path.extension) == (2, 6, "flac")
    assert windows.directory == r"@@abcde\Music\Pink Floyd\The Wall"


@pytest.mark.parametrize(
    ("filename", "disc", "track"),
    [
        (r"x\Album\01 - Title.flac", None, 1),
        (r"x\Album\1-03 Title.flac", 1, 3),
        (r"x\Album\2.05 Title.mp3", 2, 5),
        (r"x\Album\[07] Title.mp3", None, 7),
        (r"x\Album\A1. Title.flac", None, 1),
        (r"x\Album (Disc 2)\04 Title.flac", 2, 4),
        (r"x\Album\Disc 1\04 Title.flac", 1, 4),
        (r"x\Album\Title.flac", None, None),
    ],
)
def test_track_and_disc_numbers_from_the_path(filename: str, disc: int | None, track: int | None) -> None:
    path = parse_path(filename)
    assert (path.disc, path.track) == (disc, track)


def test_sibling_disc_folders_share_one_directory() -> None:
    one = parse_path(r"@@x\Artist - Album (Disc 1)\01 A.flac")
    two = parse_path(r"@@x\Artist - Album (Disc 2)\01 B.flac")
    assert one.directory == two.directory == r"@@x\Artist - Album"


@pytest.mark.parametrize(
    ("filename", "unsafe"),
    [
        (r"@@x\Music\..\..\Title.flac", True),
        ("@@x\\Music\\Title\x07.flac", True),
        ("@@x\\Music\\Title \u202ecalf.exe", True),
        ("@@x\\Music\\", True),
        ("/home/me/Music/Title.flac", False),
        (r"C:\Users\me\Music\Title.flac", False),
        (r"\\NAS\share\Title.flac", False),
        (r"@@x\Music\.\Title.flac", False),
    ],
)
def test_unsafe_paths(filename: str, unsafe: bool) -> None:
    assert bool(parse_path(filename).unsafe) is unsafe


def test_extension_comes_from_the_name() -> None:
    assert parse_path(r"x\Title.FLAC").extension == "flac"
    assert parse_path(r"x\Title.flac.exe").extension == "exe"
    assert parse_path(r"x\Title.mp3 ").extension == ""
    assert parse_path(r"x\Title").extension == ""


# --- identity -------------------------------------------------------------------------------------


def test_the_album_file_scores_full_marks() -> None:
    found = identity(r"@@abcde\Music\Radiohead\1997 - OK Computer\02 - Paranoid Android.flac", PARANOID, 387)
    assert found.score == 1.0
    assert not found.problems
    assert "album matches" in found.reasons


@pytest.mark.parametrize(
    "filename",
    [
        r"@@x\Downloads\Radiohead - Paranoid Android.mp3",
        r"@@x\RADIOHEAD_-_PARANOID_ANDROID.mp3",
        r"@@x\Scene\Radiohead-OK_Computer-1997-FiH\02-radiohead-paranoid_android-fih.mp3",
        r"@@x\Radiohead.OK.Computer.1997\02.Radiohead.-.Paranoid.Android.mp3",
        r"@@x\Radiohead - OK Computer (Deluxe) [FLAC 24-96]\02. Paranoid Android (Remastered 2017).flac",
        r"@@x\Music\Radiohead\OK Computer\02 Paranoid Andriod.mp3",
        r"@@x\Vinyl Rips\Radiohead - OK Computer (LP 1997) [24-96]\B1. Paranoid Android.flac",
    ],
)
def test_odd_names_of_the_right_file_pass(filename: str) -> None:
    found = identity(filename, PARANOID, 387)
    assert not found.problems, found.problems
    assert found.score >= 0.9


@pytest.mark.parametrize(
    ("filename", "problem"),
    [
        (r"@@x\Music\Other Act - Paranoid Android.mp3", "no artist evidence"),
        (r"@@x\Music\Radiohead\Misc\Other Act - Paranoid Android.mp3", "credits 'other act'"),
        (
            r"@@x\Radiohead\Live\1997 Glastonbury\05 Paranoid Android.mp3",
            "unrequested version: live in folder",
        ),
        (
            r"@@x\Radiohead - Paranoid Android (Acoustic).mp3",
            "unrequested version: acoustic in the file name",
        ),
        (r"@@x\Radiohead\OK Computer\02 Paranoid.mp3", "title not in the file name"),
        (r"@@x\Radiohead - Paranoid Android Reloaded.mp3", "title differs"),
        (r"@@x\Radiohead\OK Computer\Track 02.mp3", "title not in the file name"),
        (r"@@x\Radiohead\..\02 Paranoid Android.mp3", "unsafe path"),
    ],
)
def test_wrong_paths_carry_a_problem(filename: str, problem: str) -> None:
    found = identity(filename, PARANOID, 387)
    assert any(problem in p for p in found.problems), found.problems


def test_title_containment_is_not_similarity() -> None:
    arrival = Track("ABBA", "Arrival", duration_ms=180_000)
    assert identity(r"x\ABBA - Arrival in Ashford.mp3", arrival, 180).problems
    assert not identity(r"x\ABBA - Arrival.mp3", arrival, 180).problems
    love = Track("Kendrick Lamar", "LOVE. FEAT. ZACARI.", ("Kendrick Lamar", "Zacari"), duration_ms=213_000)
    assert identity(r"x\Kendrick Lamar - LOVESICK.mp3", love, 213).problems
    assert not identity(r"x\Kendrick Lamar - LOVE. (feat. Zacari).mp3", love, 213).problems


def test_numbers_are_identity() -> None:
    part2 = Track("Pink Floyd", "Another Brick in the Wall, Pt. 2", duration_ms=239_000)
    assert not identity(r"x\Pink Floyd - Another Brick in the Wall (Part II).flac", part2, 239).problems
    assert identity(r"x\Pink Floyd - Another Brick in the Wall, Part 1.flac", part2, 239).problems
    neon = Track("Steve Aoki", "Neon Future", duration_ms=230_000)
    assert identity(r"x\Steve Aoki - Neon Future II.mp3", neon, 230).problems


def test_a_requested_version_must_be_in_the_path() -> None:
    live = Track("Oasis", "Wonderwall - Live at Knebworth, 10 August '96", duration_ms=275_000)
    assert not identity(r"x\Oasis\Knebworth 1996 (Live)\CD1\12 - Wonderwall.flac", live, 275).problems
    assert identity(r"x\Oasis\Morning Glory\03 - Wonderwall.flac", live, 275).problems
    assert identity(r"x\Oasis - Wonderwall (Live at Maine Road).mp3", live, 275).problems


def test_an_edit_of_the_requested_length_needs_no_label() -> None:
    edit = Track("Avicii", "Levels - Radio Edit", duration_ms=199_000)
    assert not identity(r"x\VA - Ibiza Anthems\03 - Avicii - Levels.mp3", edit, 199).problems
    assert identity(r"x\VA - Ibiza Anthems\03 - Avicii - Levels.mp3", edit, None).problems


def test_markers_the_album_or_artist_carry_are_tolerated() -> None:
    unplugged = Track("Nirvana", "About A Girl", album="MTV Unplugged In New York", duration_ms=217_000)
    assert not identity(r"x\Nirvana\MTV Unplugged in New York\01 About a Girl.flac", unplugged, 217).problems
    live_band = Track("Live", "Lightning Crashes", album="Throwing Copper", duration_ms=325_000)
    assert not identity(r"x\Live\Throwing Copper\07 Lightning Crashes.flac", live_band, 325).problems


def test_a_title_inside_the_artist_name_is_not_artist_evidence() -> None:
    queen = Track("Queen", "Killer Queen", duration_ms=180_000)
    assert identity(r"x\Downloads\Killer Queen.mp3", queen, 180).problems
    assert not identity(r"x\Queen - Killer Queen.mp3", queen, 180).problems


def test_artist_names_in_another_order_or_spelling() -> None:
    utada = Track("Hikaru Utada", "First Love", duration_ms=257_000)
    assert not identity(r"x\宇多田ヒカル (Utada Hikaru)\First Love\11 First Love.flac", utada, 257).problems
    acdc = Track("AC/DC", "Back In Black", duration_ms=255_000)
    for name in (
        r"x\ACDC - Back in Black.mp3",
        r"x\AC-DC - Back In Black.mp3",
        r"x\AC_DC - Back in Black.mp3",
    ):
        assert not identity(name, acdc, 255).problems, name


def test_non_latin_titles_and_transliterations() -> None:
    kino = Track("Кино", "Группа крови", duration_ms=285_000)
    assert not identity(r"x\Kino - Gruppa krovi.mp3", kino, 285).problems
    assert not identity(r"x\Кино\Группа крови\01 - Группа крови.flac", kino, 285).problems
    yoasobi = Track("YOASOBI", "夜に駆ける", duration_ms=261_000)
    assert not identity("x\\ＹＯＡＳＯＢＩ－夜に駆ける.mp3", yoasobi, 261).problems
    assert not identity(r"x\YOASOBI夜に駆ける.mp3", yoasobi, 261).problems
    assert identity(r"x\YOASOBI - 夜に駆ける (Instrumental).flac", yoasobi, 261).problems


def test_score_is_within_bounds_and_length_counts() -> None:
    path = r"x\Radiohead - Paranoid Android.mp3"
    exact, unknown, off = (identity(path, PARANOID, s).score for s in (387, None, 420))
    assert 0 <= off < unknown < exact <= 1
