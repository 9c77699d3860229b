"""Library paths: whatever the metadata, the path stays inside the library root, can be created,
and reads like the metadata; templates are checked before use."""

from __future__ import annotations

import os
import shutil
import tempfile
import unicodedata

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from harmony import naming
from harmony.naming import DEFAULT_TEMPLATE, PLACEHOLDERS, library_path, safe_name, validate_template

HOSTILE = [
    "..",
    ".",
    "/",
    "\\",
    "../../etc/passwd",
    "/etc/passwd",
    "C:\\Windows",
    "\x00",
    "\n",
    "\t",
    "\x7f",
    "\x85",
    "\u2028",
    "\u202e",  # right-to-left override
    "\u2066",
    "\u200b",  # zero-width space
    "\ufeff",
    "\u00ad",
    "CON",
    "nul",
    "Com1",
    "LPT9",
    "COM¹",
    "aux.flac",
    "PRN ",
    " ",
    "...",
    ":",
    "*",
    "?",
    "<",
    ">",
    "|",
    '"',
    "e\u0301",
    "ﬁ",
    "宇多田ヒカル",
    "Сигур",
    "🎵",
    "👨\u200d👩\u200d👧",
    "\ud800",
    "A" * 300,
    "é" * 200,
    "\U0001f600" * 70,
    "ワ" * 90,
]
hostile_text = st.lists(st.one_of(st.sampled_from(HOSTILE), st.text(max_size=12)), max_size=6).map("".join)
any_value = st.one_of(
    st.none(),
    hostile_text,
    st.integers(),
    st.floats(),
    st.booleans(),
    st.lists(hostile_text, max_size=3),
    st.binary(max_size=8),
)
FIELDS = ("album_artist", "artist", "album", "title", "year", "track_number", "disc_number", "total_discs")
field_maps = st.fixed_dictionaries(
    {"ext": st.sampled_from(["flac", "mp3", "m4a", "ogg", "opus", ".FLAC"])},
    optional={name: any_value for name in FIELDS},
)
TEMPLATES = [
    DEFAULT_TEMPLATE,
    "{artist}/{album} ({year})/{track}. {title}.{ext}",
    "{album_artist}/{year}/{album}/Disc {disc}/{track} - {artist} - {title}.{ext}",
    "{title}.{ext}",
]

RESERVED = set('<>:"/\\|?*')
DEVICES = {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"} | {
    f"{p}{n}" for p in ("COM", "LPT") for n in "0123456789¹²³"
}


def assert_safe_component(part: str) -> None:
    assert part and part not in (".", "..")
    assert len(part.encode("utf-8")) <= naming.MAX_COMPONENT_BYTES
    assert not part.startswith(".") and not part.startswith(" ")
    assert not part.endswith(".") and not part.endswith(" ")
    assert not RESERVED & set(part)
    assert all(unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Zl", "Zp") for ch in part)
    assert part.split(".")[0].rstrip(" ").upper() not in DEVICES
    assert unicodedata.is_normalized("NFC", part)


@settings(max_examples=400, deadline=None)
@given(fields=field_maps, template=st.sampled_from(TEMPLATES))
@example(
    fields={"album_artist": "..", "album": "../..", "title": "/etc/passwd", "ext": "flac"},
    template=DEFAULT_TEMPLATE,
)
@example(fields={"title": "\u202egnp.exe", "artist": "CON", "ext": "mp3"}, template=TEMPLATES[1])
@example(fields={"title": "é" * 300, "album": "\U0001f600" * 100, "ext": "opus"}, template=DEFAULT_TEMPLATE)
def test_any_name_stays_inside_the_root_and_can_be_written(fields: dict[str, object], template: str) -> None:
    relative = library_path(fields, template)
    assert not relative.startswith("/") and "\\" not in relative
    parts = relative.split("/")
    for part in parts:
        assert_safe_component(part)
    assert parts[-1].endswith("." + fields["ext"].lower().lstrip("."))  # type: ignore[attr-defined]
    root = tempfile.mkdtemp(prefix="harmony-naming-")
    try:
        path = os.path.join(root, relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "xb") as out:
            out.write(b"audio")
        real_root = os.path.realpath(root)
        assert os.path.isfile(path) and os.path.realpath(path).startswith(real_root + os.sep)
        assert os.path.relpath(os.path.realpath(path), real_root).split(os.sep) == parts  # nothing collapsed
    finally:
        shutil.rmtree(root)


@settings(max_examples=200, deadline=None)
@given(fields=field_maps, template=st.sampled_from(TEMPLATES))
def test_paths_are_deterministic(fields: dict[str, object], template: str) -> None:
    assert library_path(fields, template) == library_path(dict(fields), template)
    assert library_path({**fields, "isrc": "USRC17607839", "popularity": 3}, template) == library_path(
        fields, template
    )


@settings(max_examples=300, deadline=None)
@given(text=hostile_text)
def test_safe_name_is_safe_and_idempotent(text: str) -> None:
    once = safe_name(text)
    assert_safe_component(once)
    assert safe_name(once) == once


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"album_artist": "AC/DC", "album": "Back in Black", "title": "Hells Bells", "year": 1980},
            "AC-DC/1980 - Back in Black/01 Hells Bells.flac",
        ),
        (
            {
                "album_artist": "Sigur Rós",
                "album": "Ágætis byrjun",
                "title": "Svefn-g-englar",
                "year": "1999-06-12",
            },
            "Sigur Rós/1999 - Ágætis byrjun/01 Svefn-g-englar.flac",
        ),
        (
            {"album_artist": "宇多田ヒカル", "album": "First Love", "title": "Automatic", "year": 1999},
            "宇多田ヒカル/1999 - First Love/01 Automatic.flac",
        ),
        (
            {"album_artist": "The Killers", "album": "Hot Fuss", "title": "Mr. Brightside", "year": 2004},
            "The Killers/2004 - Hot Fuss/01 Mr. Brightside.flac",
        ),
        (
            {
                "album_artist": "Jay-Z",
                "album": "Vol. 2: Hard Knock Life",
                "title": "Can I Get A...",
                "year": 1998,
            },
            "Jay-Z/1998 - Vol. 2 - Hard Knock Life/01 Can I Get A....flac",
        ),
        (
            {
                "album_artist": ".38 Special",
                "album": "Rockin' into the Night",
                "title": "Robin Hood",
                "year": 1979,
            },
            "_38 Special/1979 - Rockin' into the Night/01 Robin Hood.flac",
        ),
        (
            {"album_artist": "Metallica", "album": "...And Justice for All", "title": "One", "year": 1988},
            "Metallica/1988 - ...And Justice for All/01 One.flac",
        ),
        (
            {"album_artist": "..", "album": "...", "title": "..", "year": 2001},
            "\u2024\u2024/2001 - \u2024\u2024\u2024/01 \u2024\u2024.flac",
        ),
        (
            {"album_artist": "CON", "album": "nul", "title": "Aux", "year": 2001},
            "CON_/2001 - nul/01 Aux.flac",
        ),
        (
            {"album_artist": "A", "album": "B", "title": "CON", "year": 2001, "track_number": None},
            "A/2001 - B/CON_.flac",
        ),
        (
            {
                "album_artist": "",
                "artist": ["Daft Punk", "Pharrell Williams"],
                "album": "RAM",
                "title": "Get Lucky",
            },
            "Daft Punk, Pharrell Williams/RAM/01 Get Lucky.flac",
        ),
        (
            {
                "album_artist": "Pink Floyd",
                "album": "Wall",
                "title": "Hey You",
                "year": 1979,
                "disc_number": 2,
                "total_discs": 2,
                "track_number": "1/13",
            },
            "Pink Floyd/1979 - Wall/2-01 Hey You.flac",
        ),
        (
            {"album_artist": "Evil\u202e", "album": "Zero\u200bWidth", "title": "Tab\there\nnewline"},
            "Evil/ZeroWidth/01 Tab here newline.flac",
        ),
        ({}, "Unknown Artist/Unknown Album/01 Unknown Title.flac"),
        ({"track_number": None}, "Unknown Artist/Unknown Album/Unknown Title.flac"),
        ({"year": 0, "title": "   "}, "Unknown Artist/Unknown Album/01 Unknown Title.flac"),
    ],
)
def test_names_read_like_the_metadata(fields: dict[str, object], expected: str) -> None:
    assert library_path({"track_number": 1, "ext": "flac", **fields}) == expected


def test_disc_prefix_only_for_multi_disc_albums() -> None:
    base = {"album_artist": "A", "album": "B", "title": "T", "year": 2000, "track_number": 2, "ext": "mp3"}
    assert library_path({**base, "disc_number": 1, "total_discs": 1}).endswith("/02 T.mp3")
    assert library_path({**base, "disc_number": 1}).endswith("/02 T.mp3")
    assert library_path({**base, "disc_number": 1, "total_discs": 2}).endswith("/1-02 T.mp3")
    assert library_path({**base, "disc_number": 3, "total_discs": "3"}).endswith("/3-02 T.mp3")
    assert library_path({**base, "track_number": 112}).endswith("/112 T.mp3")


def test_unknown_values_are_left_out_with_their_separators() -> None:
    fields = {"album_artist": "A", "album": "B", "title": "T", "ext": "ogg"}
    assert library_path(fields, "{album_artist}/{album} ({year})/{track}. {title}.{ext}") == "A/B/T.ogg"
    assert library_path(fields, "{album_artist}/[{year}] {album}/{title}.{ext}") == "A/B/T.ogg"
    assert library_path(fields, "{album_artist}/{year}/{album}/{disc_track} - {title}.{ext}") == "A/B/T.ogg"
    assert library_path(fields, "{album_artist}/{album}, {year}/{title} {disc}.{ext}") == "A/B/T.ogg"


def test_long_names_are_cut_on_a_character_boundary_keeping_the_extension() -> None:
    for title in ("é" * 300, "\U0001f600" * 100, "a" * 254 + "é" * 3, "ワ" * 100 + "e\u0301" * 10):
        path = library_path({"album_artist": title, "album": title, "title": title, "ext": "flac"})
        for part in path.split("/"):
            assert len(part.encode()) <= 255 and len(part.encode()) > 240
        assert path.endswith(".flac") and unicodedata.is_normalized("NFC", path)


def test_the_extension_must_be_nameable() -> None:
    for ext in (None, "", ".", "fl/ac", "x" * 17, "flac ogg", "é", 3.5, b"flac"):
        with pytest.raises(ValueError, match="extension"):
            library_path({"title": "T", "ext": ext})
    with pytest.raises(ValueError):
        library_path(["not", "a", "mapping"])  # type: ignore[arg-type]
    assert library_path({"ext": " .MP3 "}) == "Unknown Artist/Unknown Album/Unknown Title.mp3"


@settings(max_examples=200, deadline=None)
@given(fields=st.dictionaries(st.text(max_size=12), any_value, max_size=6))
def test_only_an_unusable_extension_raises(fields: dict[str, object]) -> None:
    assert library_path({**fields, "ext": "flac"}).endswith(".flac")


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("", "non-empty"),
        ("{album}/{nope}/{title}.{ext}", "unknown placeholder {nope}"),
        ("{album}/{}/{title}.{ext}", "unknown placeholder {}"),
        ("{album.x}/{title}.{ext}", "unknown placeholder {album.x}"),
        ("{album}/{title:>10}.{ext}", "no format spec"),
        ("{album!r}/{title}.{ext}", "no format spec"),
        ("{album/{title}.{ext}", "malformed"),
        ("{album}}/{title}.{ext}", "malformed"),
        ("/music/{album}/{title}.{ext}", "relative"),
        ("{album}//{title}.{ext}", "empty folder"),
        ("{album}/{title}.{ext}/", "empty folder"),
        ("../{album}/{title}.{ext}", "not a safe name"),
        ("{album}/./{title}.{ext}", "not a safe name"),
        ("{album}\\{title}.{ext}", "unsafe character"),
        ("{album}: {year}/{title}.{ext}", "unsafe character"),
        ("{album}/{title}", "must end in '.{ext}'"),
        ("{album}/{title}{ext}", "must end in '.{ext}'"),
        ("{album}/{title}.{ext}.bak", "must end in '.{ext}'"),
        ("{artist}/{album}.{ext}", "must hold {title}"),
    ],
)
def test_bad_templates_are_refused_with_the_reason(template: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("{", r"\{").replace("}", r"\}").replace(".", r"\.")):
        validate_template(template)
    with pytest.raises(ValueError):
        library_path({"ext": "flac"}, template)


def test_placeholders_are_documented_and_all_usable() -> None:
    validate_template(DEFAULT_TEMPLATE)
    for template in TEMPLATES:
        validate_template(template)
    assert all(isinstance(text, str) and text and "\n" not in text for text in PLACEHOLDERS.values())
    every = " ".join("{" + name + "}" for name in PLACEHOLDERS if name != "ext") + ".{ext}"
    validate_template(every)
    fields = {"album_artist": "AA", "artist": "A", "album": "B", "title": "T", "year": 2001}
    fields |= {"track_number": 3, "disc_number": 2, "total_discs": 2, "ext": "flac"}
    assert library_path(fields, every) == "AA A B T 2001 03 2 2-03.flac"
    assert library_path(fields, "Music/{album}/{title}.{ext}") == "Music/B/T.flac"  # literal folders are kept
