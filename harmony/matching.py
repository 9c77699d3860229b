"""Track identity: normalised names and titles, version markers, and how well a remote path names a track.

Pure: no I/O, no clock, no configuration. Everything compares *tokens*: `fold()` maps text to one
comparable form (NFKC, casefold, accents dropped, Cyrillic and Greek transliterated, CJK, kana and
Hangul kept as they are), and `tokens()` splits it into words (apostrophes join, `&` and `+` read
"and", `pt`/`vol` read "part"/"volume", numbers lose leading zeros). So "Guns N' Roses",
"GUNS_N_ROSES" and "Guns and Roses" are the same three words, and "Кино" is "kino".

Contracts:

- `normalise_title`, `normalise_artist` and `normalise_artists` are idempotent. A title keeps its
  version markers (live, remix, ...: a different recording) and loses `feat.` credits and edition
  groups such as `- Remastered 2011`, `(Deluxe Edition)` or `[2009 Remaster]`. `normalise_artists`
  is order-independent.
- `versions(text)` names the version markers present, in any of the languages `MARKERS` knows.
- `identity(path, track, length_s)` scores a remote path (Windows or Unix separators, `@@share`
  roots) against a wanted track: 0.45 title + 0.30 artist + 0.15 length + 0.10 album folder, in
  [0, 1], with the reasons, and the problems that make the path unusable whatever its score: no
  title, no artist evidence, another artist credited, a version marker the track did not ask for
  (in the file name or the nearest folders), one it asked for missing, an unsafe path.

To teach it a version marker, add a row to `MARKERS`; an edition, format or filler word, to `NOISE`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from functools import lru_cache
from typing import Protocol

# --- characters ----------------------------------------------------------------------------------

# Letters with no decomposition, and two scripts that transliterate letter by letter. Applied after
# casefolding and after combining accents are dropped (so й → и → i, ά → α → a).
_TRANSLIT = str.maketrans(
    {
        "ø": "o", "đ": "d", "ð": "d", "ł": "l", "þ": "th", "æ": "ae", "œ": "oe", "ı": "i", "ħ": "h",
        "ŧ": "t", "ŋ": "n", "ĸ": "k", "ƒ": "f",
        "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ж": "zh", "з": "z", "и": "i",
        "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p", "р": "r", "с": "s", "т": "t",
        "у": "u", "ф": "f", "х": "kh", "ц": "ts", "ч": "ch", "ш": "sh", "щ": "shch", "ъ": "", "ы": "y",
        "ь": "", "э": "e", "ю": "yu", "я": "ya", "і": "i", "є": "ye", "ґ": "g", "ў": "u", "ђ": "dj",
        "ј": "j", "љ": "lj", "њ": "nj", "ћ": "c", "џ": "dz", "ѓ": "g", "ќ": "k", "ѕ": "dz",
        "α": "a", "β": "v", "γ": "g", "δ": "d", "ε": "e", "ζ": "z", "η": "i", "θ": "th", "ι": "i",
        "κ": "k", "λ": "l", "μ": "m", "ν": "n", "ξ": "x", "ο": "o", "π": "p", "ρ": "r", "σ": "s",
        "ς": "s", "τ": "t", "υ": "y", "φ": "f", "χ": "ch", "ψ": "ps", "ω": "o",
    }
)  # fmt: skip
# Only Latin-style combining accents: kana voicing marks (U+3099) and Hangul jamo must survive.
_ACCENTS = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")
_APOSTROPHES = re.compile("['’‘`´ʼ]")
_CJK = (
    "\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af\u1100-\u11ff\u3130-\u318f"
)
# A run of Latin letters or digits glued to CJK text is two words ("YOASOBI夜に駆ける").
_SCRIPT_EDGE = re.compile(f"(?<=[a-z0-9])(?=[{_CJK}])|(?<=[{_CJK}])(?=[a-z0-9])")
_WORD = re.compile(r"[^\W_]+")
_ROMAN = {"i": "1", "ii": "2", "iii": "3", "iv": "4", "v": "5", "vi": "6", "vii": "7", "viii": "8"}
_ROMAN.update({"ix": "9", "x": "10", "xi": "11", "xii": "12"})
_NUMBERED = frozenset({"part", "volume", "chapter", "act", "book", "episode", "no", "number"})
_ABBREVIATIONS = {"pt": "part", "pts": "parts", "vol": "volume", "vols": "volumes", "n": "and"}
_ABBREVIATIONS.update({"ft": "feat", "featuring": "feat", "feats": "feat", "w": "with", "versus": "vs"})


# Greek digraphs as they are spelt in Latin file names ("Ζορμπάς" is "Zorbas").
_DIGRAPHS = re.compile("ου|μπ|ντ|γκ|γγ|αυ|ευ")
_DIGRAPH_SOUND = {"ου": "ou", "μπ": "b", "ντ": "d", "γκ": "g", "γγ": "ng", "αυ": "av", "ευ": "ev"}


@lru_cache(maxsize=65536)
def fold(text: str) -> str:
    """`text` casefolded, compatibility-normalised (full-width forms, ligatures), accents dropped,
    Cyrillic and Greek transliterated; other scripts kept as they are."""
    text = _ACCENTS.sub("", unicodedata.normalize("NFD", unicodedata.normalize("NFKC", text).casefold()))
    text = _DIGRAPHS.sub(lambda m: _DIGRAPH_SOUND[m.group()], text)
    return unicodedata.normalize("NFC", text.translate(_TRANSLIT))


@lru_cache(maxsize=65536)
def tokens(text: str) -> tuple[str, ...]:
    """The words of `text` after `fold()`, in their comparable form."""
    text = _APOSTROPHES.sub("", fold(text)).replace("&", " and ").replace("+", " and ").replace("$", "s")
    words = _WORD.findall(_SCRIPT_EDGE.sub(" ", text))
    out: list[str] = []
    for word in words:
        # isdecimal, not isdigit: Ethiopic or Rumi numerals are digits to Python (and NFKC leaves
        # them alone), but int() refuses them.
        if word.isdecimal() and len(word) <= 9:
            word = str(int(word))
        word = _ABBREVIATIONS.get(word, word)
        if out and out[-1] in _NUMBERED and word in _ROMAN:
            word = _ROMAN[word]
        out.append(word)
    return tuple(out)


# --- vocabulary -----------------------------------------------------------------------------------

# Version markers as word sequences, after `tokens()`. A marker is an unrequested version when a
# path carries it and the wanted title does not; "mix" and "edit" are decided by the word before.
MARKERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    *(("live", (w,)) for w in ("live", "unplugged", "livemitschnitt", "liveversion", "bootleg", "bootlegs")),
    *(("live", (w,)) for w in ("kontsert", "kontsertnaya", "konzert")),
    *(("live", p) for p in (("en", "vivo"), ("ao", "vivo"), ("al", "vivo"), ("dal", "vivo"))),
    *(("live", p) for p in (("en", "directo"), ("en", "concierto"), ("en", "concert"), ("in", "concert"))),
    *(("live", p) for p in (("en", "public"), ("peel", "session"), ("peel", "sessions"))),
    *(("live", p) for p in (("bbc", "session"), ("bbc", "sessions"), ("ライブ",), ("ライヴ",), ("라이브",))),
    *(("remix", (w,)) for w in ("remix", "remixes", "remixed", "rmx", "remezcla", "rework", "reworked")),
    *(("remix", (w,)) for w in ("refix", "mashup", "vip", "dub", "mixed", "remixe", "remiks", "リミックス")),
    *(("remix", p) for p in (("mash", "up"), ("re", "edit"), ("reedit",), ("club", "edit"), ("dj", "edit"))),
    *(("remix", p) for p in (("리믹스",), ("club", "version"), ("dj", "mix"), ("continuous", "mix"))),
    *(("acoustic", (w,)) for w in ("acoustic", "akustik", "akustisch", "acustico", "acustica", "acoustique")),
    *(("acoustic", (w,)) for w in ("akusticheskaya", "akustika", "stripped", "アコースティック", "어쿠스틱")),
    *(("acoustic", p) for p in (("piano", "version"), ("unplugged",))),
    *(("instrumental", (w,)) for w in ("instrumental", "instrumentals", "instrumentale", "instrumentaal")),
    *(("instrumental", (w,)) for w in ("inst", "instr", "instrumentalnaya", "インスト", "인스트루멘탈")),
    *(
        ("instrumental", p)
        for p in (("off", "vocal"), ("オフボーカル",), ("minus", "one"), ("backing", "track"))
    ),
    *(("instrumental", p) for p in (("no", "vocals"), ("without", "vocals"), ("karaoke", "version"))),
    *(("acapella", (w,)) for w in ("acapella", "acappella", "accapella", "acapellas", "acappellas")),
    *(("acapella", p) for p in (("a", "cappella"), ("a", "capella"), ("vocals", "only"), ("vocal", "only"))),
    *(("karaoke", (w,)) for w in ("karaoke", "karaoké", "singalong", "カラオケ", "노래방")),
    *(("karaoke", p) for p in (("sing", "along"), ("in", "the", "style", "of"), ("backing", "track"))),
    *(("cover", (w,)) for w in ("cover", "covers", "covered", "tribute", "kaver")),
    *(("cover", p) for p in (("made", "famous"), ("originally", "performed"), ("as", "performed", "by"))),
    *(("demo", (w,)) for w in ("demo", "demos", "outtake", "outtakes", "rehearsal", "rehearsals", "デモ")),
    *(("demo", p) for p in (("rough", "mix"), ("work", "tape"), ("early", "version"), ("alternate",))),
    *(("demo", p) for p in (("alternative", "version"), ("alternative", "take"), ("alt", "take"))),
    *(("demo", p) for p in (("alt", "version"), ("home", "recording"), ("work", "in", "progress"))),
    *(("slowed", (w,)) for w in ("slowed", "screwed", "daycore", "reverb", "slowdown")),
    *(("slowed", p) for p in (("slow", "version"), ("slowed", "down"))),
    *(("sped_up", (w,)) for w in ("sped", "spedup", "speedup", "nightcore")),
    *(("sped_up", p) for p in (("speed", "up"), ("sped", "up"), ("fast", "version"))),
    *(("radio_edit", p) for p in (("radio", "edit"), ("radio", "version"), ("radio", "mix"))),
    *(("radio_edit", p) for p in (("single", "edit"), ("short", "version"), ("short", "edit"))),
    *(("radio_edit", p) for p in (("radio", "cut"), ("tv", "size"), ("tv", "version"), ("tv", "edit"))),
    *(("extended", (w,)) for w in ("extended", "12inch")),
    *(("extended", p) for p in (("12", "inch"), ("12", "version"), ("12", "mix"), ("long", "version"))),
    *(("extended", p) for p in (("maxi", "version"), ("full", "length", "version"))),
    *(("clean", (w,)) for w in ("clean", "censored", "edited")),
    *(("radio_edit", p) for p in (("7", "inch"), ("7", "version"), ("7", "edit"), ("7", "mix"))),
    *(("demo", (w,)) for w in ("takes",)),
    *(
        ("language", (w, "version"))
        for w in ("english", "german", "french", "spanish", "italian", "japanese")
    ),
    *(("language", p) for p in (("version", "francaise"), ("en", "espanol"), ("deutsche", "version"))),
    *(("reprise", (w,)) for w in ("reprise", "interlude", "skit", "outro", "intro")),
)
MARKER_NAMES = frozenset(name for name, _ in MARKERS) | {"variant"}
# Versions that differ by their length: a file of the asked-for edit's length is that edit.
LENGTH_VERSIONS = frozenset({"radio_edit", "extended"})
_MARKER_INDEX: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
for _name, _phrase in MARKERS:
    _MARKER_INDEX.setdefault(_phrase[0], []).append((_name, _phrase))
# Words before "mix" that leave it the original ("Original Mix", "2009 Stereo Mix").
_PLAIN_MIX = frozenset({"original", "album", "stereo", "mono", "main", "lp", "single", "radio", "extended"})
_REMIX_EDIT = frozenset({"club", "dj", "re", "dub", "vip", "extended"})
MARKER_WORDS = frozenset(w for _, phrase in MARKERS for w in phrase) | {"mix", "edit"}


def _vocabulary(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Edition, format and filler words: they neither make a title nor count against one.
NOISE = _vocabulary(
    """remaster remastered remasterd remasters remastering deluxe edition editions expanded anniversary
    bonus track tracks version mono stereo original album single lp ep cd cds cdm cdr digital web dl
    vinyl flac mp3 m4a aac ogg opus alac wav aiff ape wv lossless kbps kbit kb bit bits khz hz hi res
    hires hd hq v0 v2 vbr cbr cdrip rip ripped official audio reissue special collectors collector
    limited legacy super japan japanese import promo retail explicit dirty uncensored main mix
    ost soundtrack from motion picture film movie music video full master mastered
    24bit 16bit 320 256 192 scene proper box set disc disk"""
)
_FORMAT_NUMBER = re.compile(r"^(?:\d+(?:kbps|kbit|kbs|k|bit|bits|khz|hz|st|nd|rd|th)|\d+x\d+)$")
_STOPWORDS = _vocabulary("the a an of and to in on at de la le el les los das der die und y et e i")
_PLACEHOLDERS = frozenset({"va", "various", "artists", "artist", "unknown", "track", "untitled"})
_YEAR = re.compile(r"^(?:19|20)\d\d$")


def _noise(token: str) -> bool:
    return token in NOISE or bool(_YEAR.match(token) or _FORMAT_NUMBER.match(token))


def _numeric(token: str) -> bool:
    return token.isdigit() or token in _ROMAN


def _naming(word: str) -> bool:
    """Does `word` before "version" name a version, rather than an edition ("Album Version")?"""
    return bool(word) and not (_noise(word) or _numeric(word) or word in _STOPWORDS or word in MARKER_WORDS)


def _markers(words: Sequence[str]) -> set[str]:
    """The version markers in a word sequence ("" never matches, so gaps break phrases)."""
    found: set[str] = set()
    for i, word in enumerate(words):
        before = words[i - 1] if i else ""
        if word == "mix" and before not in _PLAIN_MIX and before and not _YEAR.match(before):
            found.add({"12": "extended", "7": "radio_edit"}.get(before, "remix"))
        elif word == "version" and _naming(before):
            found.add("variant")  # "(German Version)", "(Abbacadabra Version)": another recording
        elif word == "take" and i + 1 < len(words) and words[i + 1].isdigit():
            found.add("demo")  # "(Take 9)": an outtake
        elif word == "edit" and not (i and words[i - 1] in ("radio", "single", "short", "tv")):
            found.add("remix" if i and words[i - 1] in _REMIX_EDIT else "radio_edit")
        for name, phrase in _MARKER_INDEX.get(word, ()):
            if tuple(words[i : i + len(phrase)]) == phrase:
                found.add(name)
    return found


def versions(text: str) -> frozenset[str]:
    """The version markers present in `text`: live, remix, acoustic, instrumental, acapella, karaoke,
    cover, demo, slowed, sped_up, radio_edit, extended, clean, reprise, language, and "variant" for
    any other named version ("(Abbacadabra Version)"); see `MARKERS`."""
    return frozenset(_markers(tokens(text)))


# --- structure: brackets, dash groups, feat. credits ----------------------------------------------

_OPEN = "([{【〔〈《<"
_CLOSE = ")]}】〕〉》>"
# " - ", " – ", " — ", " ~ ", " | ": the separators of "Artist - Title" and of Spotify's "Title - Live".
_DASHES = re.compile(r"\s+[-–—―~]+\s+|\s+[-–—―]+(?=\S)|(?<=\S)[–—―]+\s+|\s*[–—―]{2,}\s*|_-_|\s*\|\s*")


@dataclass(frozen=True)
class _Item:
    word: str
    group: int  # -1 outside brackets, else the bracket group's number within its part
    part: int


def _scan(part: str, part_no: int) -> list[_Item]:
    """The words of one dash-separated part, each with the bracket group it sits in, credits removed."""
    items: list[_Item] = []
    depth, group, groups, start = 0, -1, 0, 0
    for i, ch in enumerate(part):
        if ch not in _OPEN and ch not in _CLOSE:
            continue
        items.extend(_Item(w, group if depth else -1, part_no) for w in tokens(part[start:i]))
        start = i + 1
        if ch in _OPEN:
            if depth == 0:
                group, groups = groups, groups + 1
            depth += 1
        elif depth:
            depth -= 1
    items.extend(_Item(w, group if depth else -1, part_no) for w in tokens(part[start:]))
    return _drop_credits(items)


def _drop_credits(items: list[_Item]) -> list[_Item]:
    """Without `(feat. X)` and `(with X)` groups, and without a bare `feat. X` up to the next bracket;
    unchanged if nothing else would be left."""
    credit_groups = {
        it.group
        for n, it in enumerate(items)
        if it.group >= 0 and it.word in ("feat", "with") and (n == 0 or items[n - 1].group != it.group)
    }
    out: list[_Item] = []
    in_credit = False
    for n, it in enumerate(items):
        in_credit = it.group < 0 and (in_credit or (it.word == "feat" and n > 0))
        if not in_credit and it.group not in credit_groups:
            out.append(it)
    return out or items


def _parts(text: str) -> list[str]:
    return [p for p in _DASHES.split(text) if p.strip()]


def _segments(title: str) -> list[tuple[bool, list[str]]]:
    """A title's word runs in order, each marked core (outside brackets, before any ` - `) or not
    (a bracket group or a `- suffix` part); credits removed."""
    segments: list[tuple[bool, list[str]]] = []
    for n, part in enumerate(_parts(fold(title))):
        previous: tuple[bool, int] | None = None
        for it in _scan(part, n):
            key = (n == 0 and it.group < 0, it.group)
            if key != previous:
                segments.append((key[0], []))
                previous = key
            segments[-1][1].append(it.word)
    return segments


def _edition(group: Sequence[str]) -> bool:
    """An edition group: only edition, format and filler words and years ("2011 Remaster", "(1999)")."""
    return all(_noise(w) or w in _STOPWORDS for w in group)


@dataclass(frozen=True)
class TitleSpec:
    """A wanted title taken apart: its core words, all its kept words, the versions it asks for,
    the words that pin the asked-for version down ("tiesto" in "- Tiësto Remix") and the numbers
    of its other qualifiers ("2" in "(Part 2)"), which are identity."""

    core: tuple[str, ...]
    full: tuple[str, ...]
    requested: frozenset[str]
    pinned: tuple[str, ...]
    numbers: tuple[str, ...]


@lru_cache(maxsize=8192)
def title_spec(title: str) -> TitleSpec:
    """`title` taken apart; a title that is all brackets keeps its first group as its core."""
    segments = [(is_core, words) for is_core, words in _segments(title) if is_core or not _edition(words)]
    if not any(is_core for is_core, _ in segments):
        segments = [(True, segments[0][1]), *segments[1:]] if segments else [(True, list(tokens(title)))]
    core = [w for is_core, words in segments if is_core for w in words]
    kept = [words for is_core, words in segments if not is_core]
    versioned = [g for g in kept if _markers(g)]
    requested = frozenset(m for g in versioned for m in _markers(g))
    pinned = tuple(
        w
        for g in versioned
        for w in g
        if not (w in MARKER_WORDS or w in _STOPWORDS or _noise(w) or _numeric(w))
    )
    numbers = tuple(
        w
        for g in kept
        if g not in versioned
        for i, w in enumerate(g)
        if _numeric(w) and not _YEAR.match(w) and (len(g) <= 2 or (i and g[i - 1] in _NUMBERED))
    )
    full = tuple(w for _, words in segments for w in words)
    return TitleSpec(tuple(core), full, requested, pinned, numbers)


# --- normalisation -------------------------------------------------------------------------------


def _fixpoint(step: Callable[[str], str], text: str) -> str:
    # Each step only drops words, so a few rounds reach the fixed point that makes the result idempotent.
    for _ in range(16):
        following = step(text)
        if following == text:
            break
        text = following
    return text


def _title_step(title: str) -> str:
    return " ".join(title_spec(title).full)


def normalise_title(title: str) -> str:
    """The comparable words of a title without `feat.` credits or edition groups, version markers
    kept: "Song (feat. X) - Remastered 2011" → "song", "Song - Live at Leeds" → "song live at leeds"."""
    return _fixpoint(_title_step, title)


def _artist_step(name: str) -> str:
    folded = fold(name)
    words = [it.word for it in _scan(folded, 0) if it.group < 0] or list(tokens(name))
    if len(words) > 1 and words[-1] == "the" and re.search(r",\s*the\W*$", folded):
        words = words[:-1]  # "Beatles, The"
    if len(words) > 1 and words[0] == "the":
        words = words[1:]
    return " ".join(words)


def normalise_artist(name: str) -> str:
    """An artist name's comparable words, without a `feat.` credit or a leading "the"."""
    return _fixpoint(_artist_step, name)


def normalise_artists(names: Iterable[str]) -> tuple[str, ...]:
    """The normalised names, sorted, without duplicates or empties: credit order is not identity."""
    return tuple(sorted({n for n in map(normalise_artist, names) if n}))


# --- remote paths --------------------------------------------------------------------------------

_DISC_FOLDER = re.compile(r"^(?:cd|disc|disk|dvd|side)\s*(\d{1,2}|[a-d])(?:\s+.*)?$")
_DISC_IN_NAME = re.compile(r"[\s\[(_-]*\b(?:cd|disc|disk)\s*[-_.]?\s*(\d{1,2})\b[\])]?", re.IGNORECASE)
# Artwork folders hold no audio; "Covers" is left alone, since a folder of covers is a trap, not artwork.
_EXTRA_FOLDER = re.compile(r"^(?:artwork|art|scans?|images?|booklet|extras?)$")
_PREFIXES = (
    re.compile(r"^\s*(?:cd|disc)?(?P<disc>\d{1,2})[-.](?P<track>\d{2})(?=\D|$)", re.IGNORECASE),
    re.compile(r"^\s*(?P<side>[a-dA-D])(?P<track>\d{1,2})(?=[\s._-])"),
    re.compile(r"^\s*[\[(]?(?:track\s*)?(?P<track>\d{1,3})[\])]?(?=[\s._)-]|$)", re.IGNORECASE),
)
_SIDE = re.compile(r"^[a-d]\d{1,2}$")
# C0 and C1 controls, and the bidirectional overrides that can disguise an extension.
_UNSAFE_CHARS = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


@dataclass(frozen=True)
class RemotePath:
    """A remote file name taken apart. `folders` are nearest first, a disc or artwork folder folded
    into its album folder (so `folders[0]` is the album folder), and `directory` is that album
    folder's remote path, the same for every disc of a release; `disc` and `track` are what the
    path says, if anything; `unsafe` says why the path must not be used, if it must not."""

    folders: tuple[str, ...]
    directory: str
    stem: str
    extension: str
    disc: int | None
    track: int | None
    unsafe: str


@lru_cache(maxsize=65536)
def parse_path(filename: str) -> RemotePath:
    """Split a Soulseek path on both separators; the extension comes from the name and nothing else."""
    segments = [s for s in re.split(r"[\\/]+", filename) if s]
    unsafe = ""
    if _UNSAFE_CHARS.search(filename):
        unsafe = "control characters in the path"
    elif any(s.strip() == ".." for s in segments):
        unsafe = "'..' in the path"
    elif not segments or filename.endswith(("\\", "/")):
        unsafe = "no file name"
    name = segments[-1] if segments else ""
    stem, dot, ext = name.rpartition(".")
    if not dot or not re.fullmatch(r"[A-Za-z0-9]{1,5}", ext):
        stem, ext = name, ""
    directory = list(segments[:-1])
    disc: int | None = None
    folders: list[str] = []
    for folder in reversed(segments[:-1]):
        if folder.startswith("@@") or re.fullmatch(r"[A-Za-z]:", folder):
            continue
        if not folders:
            words = " ".join(tokens(folder))
            match = _DISC_FOLDER.match(words)
            if match or _EXTRA_FOLDER.match(words):
                disc = int(match.group(1)) if match and match.group(1).isdigit() else disc
                directory.pop()
                continue
            inner = _DISC_IN_NAME.search(folder)
            rest = _DISC_IN_NAME.sub(" ", folder).strip(" -_")
            if inner and rest:  # sibling folders "Album (CD1)", "Album (CD2)"
                disc, folder = int(inner.group(1)), rest
                directory[-1] = rest
        folders.append(folder)
    track = None
    for pattern in _PREFIXES:
        found = pattern.match(stem)
        if found:
            groups = found.groupdict()
            track = int(groups["track"])
            disc = int(groups["disc"]) if groups.get("disc") else disc
            break
    return RemotePath(tuple(folders), "\\".join(directory), stem, ext.lower(), disc, track, unsafe)


def _stem_items(stem: str) -> list[_Item]:
    # "01.Artist.-.Title", "01_artist_-_title", "01-artist-title-group": without spaces, dots and
    # underscores stand for spaces and single hyphens separate the parts.
    if " " not in stem.strip():
        if stem.count("-") >= 2 and "_-_" not in stem:
            stem = stem.replace("-", " - ")
        if stem.count(".") >= 2 or "_" in stem:
            stem = stem.replace(".", " ").replace("_", " ")
    items: list[_Item] = []
    for n, part in enumerate(_parts(fold(stem))):
        items.extend(_scan(part, n))
    return items


# --- finding words ---------------------------------------------------------------------------------


def find(needle: Sequence[str], hay: Sequence[str], taken: Sequence[bool] = ()) -> tuple[int, int] | None:
    """The first span of `hay` that spells `needle`, word for word or with the spaces gone ("AC/DC"
    is "ACDC", "Wu Tang" is "Wu-Tang"), touching no `taken` word."""
    n = len(needle)
    if not n:
        return None
    busy = list(taken) or [False] * len(hay)
    for i in range(len(hay) - n + 1):
        if tuple(hay[i : i + n]) == tuple(needle) and not any(busy[i : i + n]):
            return i, i + n
    joined = "".join(needle)
    if len(joined) < 4 and joined.isascii():
        return None
    for i in range(len(hay)):
        text = ""
        for j in range(i, len(hay)):
            if busy[j]:
                break
            text += hay[j]
            if len(text) >= len(joined):
                if text == joined and (j > i or n > 1):
                    return i, j + 1
                break
    return None


def fuzzy(needle: Sequence[str], hay: Sequence[str], floor: float) -> tuple[int, int, float] | None:
    """The window of `hay` most like `needle` (ratio at least `floor`) whose numbers are the needle's:
    a typo is forgiven, "Part 1" for "Part 2" or "Vol. 4 5" for "Vol. 4" is not."""
    joined = " ".join(needle)
    if len(joined) < 6:
        return None
    numbers = sorted(w for w in needle if _numeric(w))
    best: tuple[int, int, float] | None = None
    for size in {len(needle) - 1, len(needle), len(needle) + 1} - {0}:
        for i in range(len(hay) - size + 1):
            window = hay[i : i + size]
            if "" in window or sorted(w for w in window if _numeric(w)) != numbers:
                continue
            ratio = SequenceMatcher(None, joined, " ".join(window), autojunk=False).ratio()
            if ratio >= floor and (best is None or (ratio, -i) > (best[2], -best[0])):
                best = (i, i + size, ratio)
    return best


# --- identity --------------------------------------------------------------------------------------


class TrackLike(Protocol):
    """What identity needs of a wanted track (`ranking.Wanted` is one)."""

    @property
    def artist(self) -> str: ...
    @property
    def artists(self) -> tuple[str, ...]: ...
    @property
    def title(self) -> str: ...
    @property
    def album(self) -> str: ...
    @property
    def album_artist(self) -> str: ...
    @property
    def track_number(self) -> int | None: ...
    @property
    def disc_number(self) -> int | None: ...
    @property
    def total_discs(self) -> int | None: ...
    @property
    def duration_ms(self) -> int | None: ...


@dataclass(frozen=True)
class Identity:
    """How well a path names a track. `problems` rule the path out whatever `score` says: no title,
    no artist evidence, another artist credited, an unrequested or a missing version, an unsafe path."""

    score: float
    reasons: tuple[str, ...]
    problems: tuple[str, ...]
    title: float
    artist: float
    album: float
    length: float
    path: RemotePath


WEIGHTS = {"title": 0.45, "artist": 0.30, "length": 0.15, "album": 0.10}
# Title words beyond the wanted ones cost this much each: bare words make another title ("Arrival in
# Ashford" is not "The Arrival"), bracketed ones are mostly a subtitle; numbers are identity either way.
EXTRA_BARE = 0.35
EXTRA_BRACKET = 0.2
TITLE_FLOOR = 0.7
_FORMAT_WORDS = _vocabulary(
    "flac mp3 m4a aac ogg opus alac wav aiff kbps kbit bit bits khz hz 24bit 16bit"
    " web cd vinyl lossless hires hi res v0 v2 vbr cbr"
)


@dataclass
class _Scope:
    """One place the path names things (the file name or a folder), with the words already explained."""

    where: str
    items: list[_Item]
    taken: list[bool]

    def __post_init__(self) -> None:
        self.taken = self.taken or [False] * len(self.items)

    @property
    def words(self) -> list[str]:
        return [it.word for it in self.items]

    def claim(self, needles: Iterable[Sequence[str]], any_order: bool = False) -> bool:
        """Mark the first free span spelling each needle (for names, in any word order: "Utada
        Hikaru" is "Hikaru Utada"); True if any was found."""
        found = False
        for needle in needles:
            span = find(needle, self.words, self.taken)
            if span is None and any_order and len(needle) > 1:
                span = _shuffled(needle, self.words, self.taken)
            if span is not None:
                self.take(span)
                found = True
        return found

    def take(self, span: tuple[int, int]) -> None:
        self.taken[span[0] : span[1]] = [True] * (span[1] - span[0])

    def residual(self) -> list[str]:
        return ["" if t else w for w, t in zip(self.words, self.taken)]


def _shuffled(needle: Sequence[str], hay: Sequence[str], taken: Sequence[bool]) -> tuple[int, int] | None:
    n, target = len(needle), sorted(needle)
    for i in range(len(hay) - n + 1):
        if sorted(hay[i : i + n]) == target and not any(taken[i : i + n]):
            return i, i + n
    return None


def _names(track: TrackLike) -> list[tuple[str, ...]]:
    names: list[tuple[str, ...]] = []
    for name in (track.artist, *track.artists):
        words = tuple(normalise_artist(name).split())
        if words and words not in names and not set(words) <= _PLACEHOLDERS:
            names.append(words)
    return names


def _title_span(spec: TitleSpec, words: Sequence[str]) -> tuple[tuple[int, int], float] | None:
    for needle in (spec.full, spec.core) if spec.full != spec.core else (spec.core,):
        span = find(needle, words)
        if span is not None:
            return span, 1.0
    hit = fuzzy(spec.core, words, 0.86)
    return ((hit[0], hit[1]), hit[2]) if hit else None


def _title_extras(spec: TitleSpec, stem: _Scope, span: tuple[int, int]) -> tuple[float, list[str]]:
    """What the unexplained words next to the title (in its dash parts) cost, and which they are."""
    items = stem.items
    parts = {items[i].part for i in range(*span)}
    formats = {(it.part, it.group) for it in items if it.group >= 0 and it.word in _FORMAT_WORDS}
    # "(From the Motion Picture Top Gun)", "[Theme from X]": a subtitle, not another title.
    subtitles = {(it.part, it.group) for it in items if it.group >= 0 and it.word == "from"}
    leading = 0  # a track number prefix before the title: "01", "1 03", "a1"
    while leading < span[0] and (_numeric(items[leading].word) or _SIDE.match(items[leading].word)):
        leading += 1
    wanted = set(spec.full) | set(spec.pinned)
    cost, extras = 0.0, []
    for i, it in enumerate(items):
        if span[0] <= i < span[1] or it.part not in parts or stem.taken[i] or i < leading:
            continue
        if (it.part, it.group) in subtitles and not _numeric(it.word):
            continue
        w = it.word
        if _numeric(w):  # numbers are identity, unless wanted, a year or a format's ("FLAC 24-96")
            if w in wanted or _noise(w) or (it.part, it.group) in formats:
                continue
        elif w in wanted or _noise(w) or w in MARKER_WORDS:
            continue
        weight = EXTRA_BARE if it.group < 0 or _numeric(w) else EXTRA_BRACKET
        cost += weight / 2 if w in _STOPWORDS else weight
        extras.append(w)
    return cost, extras


def _other_credit(stem: _Scope) -> str:
    """Content words of a file-name part that holds nothing the track is known by: "Other Act -
    Title" filed under the wanted artist's folder is someone else's recording."""
    for part in sorted({it.part for it in stem.items}):
        members = [(it, t) for it, t in zip(stem.items, stem.taken) if it.part == part]
        if any(t for _, t in members):
            continue
        content = [
            it.word
            for it, _ in members
            if it.group < 0
            and not (_noise(it.word) or _numeric(it.word) or it.word in _STOPWORDS)
            and it.word not in _PLACEHOLDERS
        ]
        if content:
            return " ".join(content)
    return ""


def _length_score(length_s: float | None, track: TrackLike, tolerance_s: float) -> tuple[float, str]:
    if length_s is None or not track.duration_ms:
        return 0.5, "length unknown"
    wanted = track.duration_ms / 1000
    delta = abs(length_s - wanted)
    text = f"length {clock(length_s)} vs {clock(wanted)}"
    if delta <= 2:
        return 1.0, text
    if delta <= tolerance_s:
        return 1.0 - 0.5 * (delta - 2) / max(tolerance_s - 2, 1e-9), text
    return 0.0, text


def clock(seconds: float) -> str:
    """Seconds as m:ss."""
    whole = round(seconds)
    return f"{whole // 60}:{whole % 60:02d}"


def _track_agrees(path: RemotePath, track: TrackLike) -> bool:
    number, disc = path.track, path.disc
    if number is not None and number >= 100 and (track.total_discs or 1) > 1:
        disc, number = number // 100, number % 100  # "203 Title": disc 2, track 3
    if track.track_number is not None and number is not None and number != track.track_number:
        return False
    return not (track.disc_number and disc and disc != track.disc_number)


def identity(
    path: str, track: TrackLike, length_s: float | None = None, tolerance_s: float = 5.0
) -> Identity:
    """Score `path` against `track`. `length_s` is the file's length, reported or estimated;
    `tolerance_s` is how far off it may be before the length scores 0 (ranking gates on it)."""
    parsed = parse_path(path)
    spec, names = title_spec(track.title), _names(track)
    album = tuple(normalise_title(track.album).split())
    items = _stem_items(parsed.stem)
    stem = _Scope("the file name", items, [False] * len(items))
    folders = [_Scope(f"folder '{f}'", [_Item(w, -1, 0) for w in tokens(f)], []) for f in parsed.folders[:3]]
    problems = [f"unsafe path: {parsed.unsafe}"] if parsed.unsafe else []
    reasons: list[str] = []
    # Claim the title first, then the names around it, so a title inside a name (or a name that is
    # also the title) is read once, as what it most likely is.
    found = _title_span(spec, stem.words)
    if found is not None:
        stem.take(found[0])
    artist_where = "the file name" if stem.claim(names, any_order=True) else ""
    album_found = bool(album) and stem.claim([album])
    title_score = _title_score(spec, stem, found, reasons, problems)
    artist_where = artist_where or _artist_folder(spec, names, folders)
    album_found = any(bool(album) and scope.claim([album]) for scope in folders[:2]) or album_found
    artist_score = _artist_score(
        track, names, stem, folders, artist_where, found is not None, reasons, problems
    )
    album_score = _album_score(parsed, track, album_found, reasons)
    length_score, length_text = _length_score(length_s, track, tolerance_s)
    reasons.append(length_text)
    fits = length_s is not None and length_score > 0
    problems.extend(_version_problems(spec, track, names, album, stem, folders, fits))
    parts = {"title": title_score, "artist": artist_score, "length": length_score, "album": album_score}
    score = sum(WEIGHTS[k] * v for k, v in parts.items())
    return Identity(
        score=round(min(1.0, max(0.0, score)), 4),
        reasons=tuple(reasons),
        problems=tuple(problems),
        title=title_score,
        artist=artist_score,
        album=album_score,
        length=length_score,
        path=parsed,
    )


def _title_score(
    spec: TitleSpec,
    stem: _Scope,
    found: tuple[tuple[int, int], float] | None,
    reasons: list[str],
    problems: list[str],
) -> float:
    """The title's spelling less what its extra words cost; a problem below `TITLE_FLOOR`."""
    if found is None:
        problems.append("title not in the file name")
        return 0.0
    span, ratio = found
    cost, extras = _title_extras(spec, stem, span)
    score = max(0.0, ratio - cost)
    notes = [] if ratio == 1.0 else [f"spelled differently ({ratio:.2f})"]
    notes += ["extra words: " + " ".join(extras[:6])] if extras else []
    reasons.append("title " + ("matches" if score >= 0.999 else f"{score:.2f}: " + "; ".join(notes)))
    if score < TITLE_FLOOR:
        problems.append("title differs: " + "; ".join(notes))
    absent = [w for w in spec.numbers if w not in stem.words]
    if absent:
        problems.append("title number " + " ".join(absent) + " not in the file name")
    return score


def _artist_folder(spec: TitleSpec, names: Sequence[Sequence[str]], folders: Sequence[_Scope]) -> str:
    """The nearest folder that names the act, after the title's words in each are claimed."""
    where = ""
    for scope in folders:
        # A folder named exactly as the act is the act's folder, even when a song has the same name.
        named = [w for w in scope.words if not _noise(w)] in [list(name) for name in names]
        scope.claim([spec.full, spec.core])
        if (scope.claim(names, any_order=True) or named) and not where:
            where = scope.where
    return where


def _album_score(path: RemotePath, track: TrackLike, found: bool, reasons: list[str]) -> float:
    """1 for the album's name in the path with the track number agreeing, 0.8 if it disagrees
    (another edition), 0.3 with no album evidence (a single, a compilation, a loose file)."""
    if not found:
        return 0.3
    agrees = _track_agrees(path, track)
    reasons.append("album matches" + ("" if agrees else ", track number differs"))
    return 1.0 if agrees else 0.8


def _artist_score(
    track: TrackLike,
    names: Sequence[Sequence[str]],
    stem: _Scope,
    folders: Sequence[_Scope],
    where: str,
    titled: bool,
    reasons: list[str],
    problems: list[str],
) -> float:
    """1 for a credited artist in the path, 0.9 for the album artist in a folder, 0.8 for a near
    spelling; 0, with a problem, when nothing names the artist or the file name credits another."""
    score = 1.0 if where else 0.0
    if not where and track.album_artist:
        album_artist = tuple(normalise_artist(track.album_artist).split())
        if album_artist and not set(album_artist) <= _PLACEHOLDERS:
            for scope in folders:
                if scope.claim([album_artist], any_order=True):
                    where, score = f"{scope.where} (album artist)", 0.9
                    break
    if not where:
        for scope in (stem, *folders):
            hit = fuzzy(names[0], scope.residual(), 0.88) if names else None
            if hit:
                where, score = f"{scope.where} (spelled '{' '.join(scope.words[hit[0] : hit[1]])}')", 0.8
                break
    if not where:
        problems.append(f"no artist evidence for {track.artist}")
        return 0.0
    reasons.append(f"artist in {where}")
    other = _other_credit(stem) if titled and not where.startswith("the file name") else ""
    if other:
        problems.append(f"the file name credits '{other}', not {track.artist}")
        return 0.0
    return score


def _version_problems(
    spec: TitleSpec,
    track: TrackLike,
    names: Sequence[Sequence[str]],
    album: Sequence[str],
    stem: _Scope,
    folders: Sequence[_Scope],
    length_fits: bool,
) -> list[str]:
    """Markers the path carries outside the words the track is known by, unless the title asked for
    them or the album or artist names carry them; then asked-for markers the path lacks (an edit
    of the asked-for length needs no label) and the asked-for version's name if most of it is absent."""
    tolerated = set(spec.requested) | _markers(album)
    for name in names:
        tolerated |= _markers(name)
    problems: list[str] = []
    flagged: set[str] = set()
    for scope in (stem, *folders):
        for marker in sorted(_markers(scope.residual()) - tolerated - flagged):
            flagged.add(marker)
            problems.append(f"unrequested version: {marker.replace('_', ' ')} in {scope.where}")
    present = set().union(*(_markers(scope.words) for scope in (stem, *folders)))
    for marker in sorted(spec.requested - present):
        if marker in LENGTH_VERSIONS and length_fits:
            continue
        problems.append(f"asked for {marker.replace('_', ' ')}, the path has none")
    everywhere = {w for scope in (stem, *folders) for w in scope.words}
    absent = [w for w in spec.pinned if w not in everywhere]
    if spec.requested and len(absent) * 2 > len(spec.pinned):
        problems.append(f"asked for '{' '.join(spec.pinned)}', the path does not name it")
    return problems
