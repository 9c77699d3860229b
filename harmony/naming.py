"""Library paths: the one pure function that turns a track's metadata into a safe relative path.

`library_path(fields, template)` fills a path template such as `DEFAULT_TEMPLATE` from Spotify
metadata and returns a relative POSIX path whose every component is safe to create under the library
root on Linux, macOS and Windows shares: no `..`, no separators or absolute paths from the data, no
control, format or reserved characters, no Windows device names, no trailing dots or spaces, no
leading dot, at most 255 bytes of UTF-8. Names stay readable in the user's own script: text is
NFC-normalised and only unsafe characters are replaced. No I/O here.

`validate_template(template)` checks a template (the `library.template` option) at startup.
`PLACEHOLDERS` names and explains every placeholder, for the generated docs. To add a placeholder,
add it to `PLACEHOLDERS` and compute it in `_values`.
"""

from __future__ import annotations

import math
import re
import string
import unicodedata
from collections.abc import Mapping
from functools import lru_cache

DEFAULT_TEMPLATE = "{album_artist}/{year} - {album}/{disc_track} {title}.{ext}"
MAX_COMPONENT_BYTES = 255  # NAME_MAX on ext4, XFS, Btrfs and ZFS

PLACEHOLDERS: dict[str, str] = {
    "album_artist": "The album's artist; the track's artist when missing, else \"Unknown Artist\".",
    "artist": 'The track\'s artists, joined with ", "; "Unknown Artist" when missing.',
    "album": 'The album title; "Unknown Album" when missing.',
    "title": 'The track title; "Unknown Title" when missing.',
    "year": "The four-digit release year; when unknown, left out with the separator next to it.",
    "track": "The track number in two digits (07); left out when unknown.",
    "disc": "The disc number, only for albums of more than one disc; left out otherwise.",
    "disc_track": "The track number in two digits, with the disc in front (1-07) for multi-disc albums.",
    "ext": "The file extension in lower case, without the dot (the audio format, not the peer's name).",
}

_FALLBACKS = {"album_artist": "Unknown Artist", "artist": "Unknown Artist", "album": "Unknown Album"}
_FALLBACK_TITLE = "Unknown Title"

# Characters Windows (and so SMB shares) refuse in names, with readable stand-ins. ':' between
# words reads as a dash: "Title: Subtitle" becomes "Title - Subtitle".
_RESERVED = {"/": "-", "\\": "-", "|": "-", ":": "-", "<": "_", ">": "_", '"': "'", "?": "_", "*": "_"}
_COLON_BETWEEN_WORDS = re.compile(r"\s*:\s+")
_SEPARATORS = " -_.,;~–—"
_ONE_DOT_LEADER = "\u2024"
_BRACKETS = {"(": ")", "[": "]"}
_TRAILING = re.compile(r"[\s.]+$")
_EXT = re.compile(r"[a-z0-9]{1,16}")
_LEADING_DIGITS = re.compile(r"\s*(\d{1,9})")
_YEAR = re.compile(r"\s*(\d{4})")
# Windows refuses these as a name, or as the part before the first dot, in any case.
_DEVICES = frozenset(
    ["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"]
    + [f"{port}{n}" for port in ("COM", "LPT") for n in [*"0123456789", "¹", "²", "³"]]
)

Token = tuple[bool, str]  # (is a placeholder, the placeholder's name or the literal text)


def library_path(fields: Mapping[str, object], template: str = DEFAULT_TEMPLATE) -> str:
    """The relative POSIX path for a track described by `fields`, from `template`.

    `fields` holds album_artist, artist (a string or a list of strings), album, title, year (a
    number or a date string), track_number, disc_number, total_discs and ext; other keys are
    ignored, and missing, empty or ill-typed values get the fallbacks in `PLACEHOLDERS`. The
    result is deterministic, never empty, never absolute, and has no `.` or `..` component.
    Raises ValueError only when it cannot name the file at all: `fields` is not a mapping, `ext` is
    not a short alphanumeric extension, or the template is invalid (see `validate_template`)."""
    if not isinstance(fields, Mapping):
        raise ValueError("fields must be a mapping")
    components = _parse(_template(template))
    values = _values(fields)
    parts = []
    for tokens in components[:-1]:
        part = _finish(_render(tokens, values))
        if part:  # a folder made only of unknown values (say "{year}") is left out
            parts.append(part)
    *stem_tokens, (_, dot) = components[-1][:-1]
    stem = _render((*stem_tokens, (False, dot[:-1])), values)
    parts.append(_finish(stem, ext=values["ext"]) or _finish(_FALLBACK_TITLE, ext=values["ext"]))
    return "/".join(parts)


def validate_template(template: str) -> None:
    """Raise ValueError, naming the problem, unless `template` is a usable path template: `{name}`
    placeholders from `PLACEHOLDERS` only (no format specs; `{{` and `}}` for literal braces), folders
    separated by "/", relative, no empty, "." or ".." folder, no unsafe character in the literal text,
    and a file name that ends in ".{ext}" and holds {title}, {track} or {disc_track}."""
    _parse(_template(template))


def safe_name(text: str, fallback: str = "_") -> str:
    """One path component from any text, by the rules `library_path` applies to each value and
    component; `fallback` (which must itself be safe) when nothing printable is left."""
    return _finish(_clean(text)) or fallback


# --- the template ----------------------------------------------------------------------------


def _template(template: object) -> str:
    if not isinstance(template, str) or not template:
        raise ValueError("the template must be a non-empty string")
    return template


@lru_cache(maxsize=32)
def _parse(template: str) -> tuple[tuple[Token, ...], ...]:
    if template.startswith("/"):
        raise ValueError("the template must be a relative path, not start with '/'")
    components: list[list[Token]] = [[]]
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as e:
        raise ValueError(f"malformed template: {e}") from None
    for literal, name, spec, conversion in parsed:
        for i, piece in enumerate(literal.split("/")):
            if i:
                components.append([])
            if piece:
                components[-1].append((False, piece))
        if name is None:
            continue
        if name not in PLACEHOLDERS:
            known = ", ".join("{" + key + "}" for key in PLACEHOLDERS)
            raise ValueError(f"unknown placeholder {{{name}}} in the template; known: {known}")
        if spec or conversion:
            raise ValueError(f"placeholder {{{name}}} takes no format spec or conversion")
        components[-1].append((True, name))
    for tokens in components:
        _check_component(tokens)
    _check_file_name(components[-1])
    return tuple(tuple(tokens) for tokens in components)


def _check_component(tokens: list[Token]) -> None:
    if not tokens:
        raise ValueError("the template has an empty folder name (a '//' or a trailing '/')")
    for is_placeholder, text in tokens:
        if not is_placeholder and any(_unsafe(ch) for ch in text):
            bad = next(ch for ch in text if _unsafe(ch))
            raise ValueError(f"the template's text {text!r} holds the unsafe character {bad!r}")
    if all(not is_placeholder for is_placeholder, _ in tokens):
        text = "".join(text for _, text in tokens)
        if _finish(text) != text:
            raise ValueError(f"the template's folder name {text!r} is not a safe name")


def _check_file_name(tokens: list[Token]) -> None:
    if len(tokens) < 2 or tokens[-1] != (True, "ext") or tokens[-2][0] or not tokens[-2][1].endswith("."):
        raise ValueError("the template's file name must end in '.{ext}'")
    if not {(True, "title"), (True, "track"), (True, "disc_track")} & set(tokens):
        raise ValueError("the template's file name must hold {title}, {track} or {disc_track}")


def _unsafe(ch: str) -> bool:
    return ch in _RESERVED or unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp")


# --- the values ----------------------------------------------------------------------------


def _values(fields: Mapping[str, object]) -> dict[str, str]:
    ext = _text(fields.get("ext")).strip().lstrip(".").lower()
    if not _EXT.fullmatch(ext):
        raise ValueError(f"cannot name a file with the extension {ext!r}")
    artist = _clean(_text(fields.get("artist")))
    values = {
        "album_artist": _clean(_text(fields.get("album_artist"))) or artist,
        "artist": artist,
        "album": _clean(_text(fields.get("album"))),
        "title": _clean(_text(fields.get("title"))) or _FALLBACK_TITLE,
        "year": _year(fields.get("year")),
        "ext": ext,
    }
    for name, fallback in _FALLBACKS.items():
        values[name] = values[name] or fallback
    track, disc, discs = (_number(fields.get(key)) for key in ("track_number", "disc_number", "total_discs"))
    multi_disc = disc is not None and discs is not None and discs > 1
    values["track"] = f"{track:02d}" if track is not None else ""
    values["disc"] = str(disc) if multi_disc else ""
    values["disc_track"] = (
        f"{disc}-{values['track']}" if multi_disc and track is not None else values["track"]
    )
    return values


def _text(value: object) -> str:
    """Text from a field value: strings as they are, numbers in decimal, a list of strings joined
    with ", "; anything else (None, booleans, other objects) is missing."""
    if isinstance(value, list | tuple):
        return ", ".join(text for text in (_scalar(item) for item in value) if text.strip())
    return _scalar(value)


def _scalar(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return ""
    if isinstance(value, int) and abs(value) < 10**18:
        return str(value)
    if isinstance(value, float) and math.isfinite(value) and abs(value) < 1e18:
        return str(int(value)) if value.is_integer() else str(value)
    return ""


def _number(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and (match := _LEADING_DIGITS.match(value)):
        number = int(match.group(1))  # "3/12" → 3
    else:
        return None
    return number if 0 < number < 10**9 else None


def _year(value: object) -> str:
    if isinstance(value, str):
        match = _YEAR.match(value)  # "2019", "2019-03-01"
        year = int(match.group(1)) if match else 0
    else:
        year = _number(value) or 0
    return f"{year:04d}" if 0 < year <= 9999 else ""


def _clean(text: str) -> str:
    """A value with unsafe characters replaced: format characters (bidirectional and zero-width
    controls) removed, control characters and line breaks as spaces, reserved characters as their
    stand-ins, lone surrogates as "_"; then NFC, single spaces, no surrounding whitespace. A value of
    dots alone has them as one-dot leaders (U+2024), which look the same and mean nothing to a path."""
    text = _COLON_BETWEEN_WORDS.sub(" - ", text)
    out = []
    for ch in text:
        category = unicodedata.category(ch)
        if category == "Cf":
            continue
        if category in ("Cc", "Zl", "Zp"):
            out.append(" ")
        elif category == "Cs":
            out.append("_")
        else:
            out.append(_RESERVED.get(ch, ch))
    text = re.sub(" {2,}", " ", unicodedata.normalize("NFC", "".join(out))).strip()
    if text and not text.strip(". "):
        # A name of dots alone ("...", "..") would be cut to nothing or climb a folder: keep its look.
        text = text.replace(".", _ONE_DOT_LEADER)
    return text


# --- rendering -----------------------------------------------------------------------------


def _render(tokens: tuple[Token, ...], values: Mapping[str, str]) -> str:
    """The component's text, with each empty placeholder's separator or brackets left out too:
    "{year} - {album}" without a year is "{album}", "{album} ({year})" is "{album}"."""
    pieces = [values[text] if is_placeholder else text for is_placeholder, text in tokens]
    for i, (is_placeholder, _) in enumerate(tokens):
        if not is_placeholder or pieces[i]:
            continue
        before = i > 0 and not tokens[i - 1][0]
        after = i + 1 < len(tokens) and not tokens[i + 1][0]
        opener = pieces[i - 1][-1:] if before else ""
        if opener in _BRACKETS and after and pieces[i + 1].startswith(_BRACKETS[opener]):
            pieces[i - 1] = pieces[i - 1][:-1].rstrip()
            pieces[i + 1] = pieces[i + 1][1:]
        elif not "".join(pieces[:i]).strip(_SEPARATORS):
            if after:
                pieces[i + 1] = pieces[i + 1].lstrip(_SEPARATORS)
        elif before:
            pieces[i - 1] = pieces[i - 1].rstrip(_SEPARATORS)
    return "".join(pieces)


def _finish(text: str, ext: str = "") -> str:
    """A safe component from cleaned text (plus "." + `ext` for a file name), or "" if none is left:
    no surrounding whitespace or trailing dots, no leading dot, no device name, ≤ 255 bytes."""
    suffix = f".{ext}" if ext else ""
    text = _TRAILING.sub("", text.strip()) if not ext else text.strip()
    if text.startswith("."):
        text = "_" + text[1:]  # a leading dot would hide the file
    name = (text + suffix).split(".", 1)[0].rstrip(" ")
    if name.upper() in _DEVICES:
        text = name + "_" + text[len(name) :]
    budget = MAX_COMPONENT_BYTES - len(suffix.encode())
    while len(text.encode()) > budget:
        # Cut on a character boundary; NFC again, as the cut may leave a composable pair.
        text = unicodedata.normalize("NFC", text.encode()[:budget].decode("utf-8", "ignore"))
    text = _TRAILING.sub("", text) if not ext else text.rstrip()
    return text + suffix if text else ""
