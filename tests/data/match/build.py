"""Builds the public match corpus: one JSON file of cases per category in this directory.

Run: .venv/bin/python tests/data/match/build.py

The output is committed; the tests read the JSON and never run this script. It is deterministic (a
seeded generator per case), so rerunning it after an edit changes only what the edit changes.

A case is what a real Soulseek search for one track shows and what a careful person would accept:

    {"id", "category", "wanted": {...}, "preferences"?: {...},
     "responses": [<slskd's GET /api/v0/searches/{id}/responses body, camelCase, nulls omitted>],
     "acceptable": [{"username", "filename"}, ...],   # [] means nothing here is acceptable
     "why": "one line"}

"Acceptable" means the right recording, in an allowed format, that can be trusted without a listen:
the path names the artist, the length fits, the size fits the format, nothing marks another
version. Where the user's preferences decide between right files (quality ladder, free slot, queue,
speed), only the files that win are acceptable.
"""

# The tables below hold whole Soulseek paths, one per line, so that each case reads as a search result.
# ruff: noqa: E501

from __future__ import annotations

import json
import random
import string
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

# --- the tracks -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Track:
    """A track as Spotify lists it (`title`, `album`) and as files name it (`name`, `record`)."""

    artist: str
    title: str
    album: str
    year: int
    no: int
    secs: int
    artists: tuple[str, ...] = ()
    name: str = ""  # the title in file names; defaults to the title without Spotify's suffixes
    record: str = ""  # the album in folder names
    disc: int = 1
    discs: int = 1
    album_artist: str = ""

    @property
    def file_title(self) -> str:
        return self.name or self.title

    @property
    def folder_album(self) -> str:
        return self.record or self.album

    def wanted(self) -> dict[str, Any]:
        ms = self.secs * 1000 + (zlib.crc32(self.title.encode()) % 1000)
        return {
            "artist": self.artist,
            "artists": list(self.artists or (self.artist,)),
            "title": self.title,
            "album": self.album,
            "album_artist": self.album_artist or self.artist,
            "track_number": self.no,
            "disc_number": self.disc,
            "total_discs": self.discs,
            "duration_ms": ms,
            "isrc": None,
            "release_year": self.year,
        }


T = {
    "paranoid": Track("Radiohead", "Paranoid Android", "OK Computer", 1997, 2, 387),
    "karma": Track("Radiohead", "Karma Police", "OK Computer", 1997, 6, 264),
    "rhapsody": Track(
        "Queen",
        "Bohemian Rhapsody - Remastered 2011",
        "A Night At The Opera (2011 Remaster)",
        1975,
        11,
        355,
        name="Bohemian Rhapsody",
        record="A Night At The Opera",
    ),
    "liveforever": Track(
        "Oasis", "Live Forever - Remastered", "Definitely Maybe (Remastered)", 1994, 3, 276, name="Live Forever"
    ),
    "dollparts": Track("Hole", "Doll Parts", "Live Through This", 1994, 4, 211),
    "teenspirit": Track("Nirvana", "Smells Like Teen Spirit", "Nevermind", 1991, 1, 301),
    "getlucky": Track(
        "Daft Punk",
        "Get Lucky (feat. Pharrell Williams and Nile Rodgers)",
        "Random Access Memories",
        2013,
        8,
        369,
        artists=("Daft Punk", "Pharrell Williams", "Nile Rodgers"),
        name="Get Lucky",
    ),
    "buckley": Track("Jeff Buckley", "Hallelujah", "Grace", 1994, 6, 413),
    "cohen": Track("Leonard Cohen", "Hallelujah", "Various Positions", 1984, 5, 278),
    "dreams": Track(
        "Fleetwood Mac", "Dreams - 2004 Remaster", "Rumours", 1977, 2, 257, name="Dreams", record="Rumours"
    ),
    "hoppipolla": Track("Sigur Rós", "Hoppípolla", "Takk...", 2005, 3, 268),
    "joga": Track("Björk", "Jóga", "Homogenic", 1997, 2, 305),
    "halo": Track("Beyoncé", "Halo", "I AM...SASHA FIERCE", 2008, 2, 261),
    "krovi": Track("Кино", "Группа крови", "Группа крови", 1988, 1, 285),
    "yoru": Track("YOASOBI", "夜に駆ける", "THE BOOK", 2021, 2, 261),
    "dynamite": Track("BTS", "Dynamite", "BE", 2020, 2, 199),
    "backinblack": Track("AC/DC", "Back In Black", "Back In Black", 1980, 6, 255),
    "sweetchild": Track("Guns N' Roses", "Sweet Child O' Mine", "Appetite For Destruction", 1987, 9, 356),
    "herecomes": Track(
        "The Beatles",
        "Here Comes The Sun - Remastered 2009",
        "Abbey Road (Remastered)",
        1969,
        7,
        185,
        name="Here Comes The Sun",
        record="Abbey Road",
    ),
    "brick2": Track(
        "Pink Floyd", "Another Brick in the Wall, Pt. 2", "The Wall", 1979, 5, 239, disc=1, discs=2
    ),
    "numb": Track("Pink Floyd", "Comfortably Numb", "The Wall", 1979, 6, 383, disc=2, discs=2),
    "1979": Track(
        "The Smashing Pumpkins",
        "1979 - Remastered 2012",
        "Mellon Collie And The Infinite Sadness (Deluxe Edition)",
        1995,
        5,
        265,
        name="1979",
        record="Mellon Collie and the Infinite Sadness",
        disc=2,
        discs=2,
    ),
    "purplerain": Track("Prince", "Purple Rain", "Purple Rain", 1984, 9, 521),
    "hello": Track("Adele", "Hello", "25", 2015, 1, 295),
    "hurtcash": Track("Johnny Cash", "Hurt", "American IV: The Man Comes Around", 2002, 2, 218),
    "hurtnin": Track("Nine Inch Nails", "Hurt", "The Downward Spiral", 1994, 14, 373),
    "beggin": Track("Måneskin", "Beggin'", "Chosen", 2017, 7, 211),
    "kickstart": Track("Mötley Crüe", "Kickstart My Heart", "Dr. Feelgood", 1989, 5, 282),
    "malamente": Track("ROSALÍA", "MALAMENTE - Cap.1: Augurio", "El Mal Querer", 2018, 1, 150, name="Malamente"),
    "alors": Track("Stromae", "Alors on danse", "Cheese", 2010, 3, 206),
    "onemoretime": Track("Daft Punk", "One More Time", "Discovery", 2001, 1, 320),
    "levels": Track("Avicii", "Levels - Radio Edit", "Levels", 2011, 1, 199),
    "tears": Track("Eric Clapton", "Tears in Heaven - Acoustic Live", "Unplugged (Deluxe Edition)", 1992, 4, 279),
    "aboutagirl": Track("Nirvana", "About A Girl", "MTV Unplugged In New York", 1994, 1, 217),
    "whitney": Track("Whitney Houston", "I Will Always Love You", "The Bodyguard", 1992, 1, 271),
    "dolly": Track("Dolly Parton", "I Will Always Love You", "Jolene", 1974, 10, 173),
    "africa": Track("TOTO", "Africa", "Toto IV", 1982, 10, 295),
    "somebody": Track(
        "Gotye",
        "Somebody That I Used To Know",
        "Making Mirrors",
        2011,
        3,
        244,
        artists=("Gotye", "Kimbra"),
    ),
    "uptown": Track(
        "Mark Ronson",
        "Uptown Funk (feat. Bruno Mars)",
        "Uptown Special",
        2015,
        4,
        270,
        artists=("Mark Ronson", "Bruno Mars"),
        name="Uptown Funk",
    ),
    "nothingelse": Track("Metallica", "Nothing Else Matters", "Metallica", 1991, 8, 388),
    "stairway": Track(
        "Led Zeppelin",
        "Stairway to Heaven - Remaster",
        "Led Zeppelin IV (Remaster)",
        1971,
        4,
        482,
        name="Stairway to Heaven",
        record="Led Zeppelin IV",
    ),
    "glorybox": Track("Portishead", "Glory Box", "Dummy", 1994, 11, 306),
    "teardrop": Track("Massive Attack", "Teardrop", "Mezzanine", 1998, 3, 329),
    "model": Track("Kraftwerk", "Das Model", "Die Mensch-Maschine", 1978, 5, 218),
    "femme": Track("Air", "La femme d'argent", "Moon Safari", 1998, 1, 430),
    "firstlove": Track("Hikaru Utada", "First Love", "First Love", 1999, 11, 257),
    "goodday": Track("IU", "좋은 날", "Real", 2010, 2, 234),
    "qingtian": Track("Jay Chou", "晴天", "葉惠美", 2003, 3, 269),
    "zorbas": Track("Mikis Theodorakis", "Ζορμπάς", "Zorba the Greek", 1964, 1, 262),
    "khochesh": Track("Земфира", "Хочешь?", "Прости меня моя любовь", 2000, 4, 212),
    "creep": Track("Radiohead", "Creep", "Pablo Honey", 1993, 2, 238),
    "crazy": Track("Gnarls Barkley", "Crazy", "St. Elsewhere", 2006, 2, 178),
    "hellorichie": Track("Lionel Richie", "Hello", "Can't Slow Down", 1983, 5, 248),
    "wonderwall": Track("Oasis", "Wonderwall - Remastered", "(What's The Story) Morning Glory? (Remastered)", 1995, 3, 258, name="Wonderwall", record="(What's The Story) Morning Glory?"),
    "loveless": Track("My Bloody Valentine", "Loomer", "Loveless", 1991, 2, 158),
    "love": Track("Kendrick Lamar", "LOVE. FEAT. ZACARI.", "DAMN.", 2017, 10, 213, artists=("Kendrick Lamar", "Zacari"), name="LOVE"),
    "arrival": Track("ABBA", "Arrival", "Arrival", 1976, 10, 180),
    "neon": Track("Steve Aoki", "Neon Future", "Neon Future I", 2014, 1, 230),
    "dancingqueen": Track("ABBA", "Dancing Queen", "Arrival", 1976, 2, 230),
    "heroes": Track("David Bowie", "\"Heroes\" - 2017 Remaster", "\"Heroes\" (2017 Remaster)", 1977, 3, 371, name="Heroes", record="Heroes"),
    "starman": Track("David Bowie", "Starman - 2012 Remaster", "The Rise and Fall of Ziggy Stardust and the Spiders from Mars (2012 Remaster)", 1972, 4, 254, name="Starman", record="The Rise and Fall of Ziggy Stardust and the Spiders from Mars"),
    "clair": Track("Claude Debussy", "Suite bergamasque, L. 75: III. Clair de lune", "Debussy: Piano Works", 2012, 3, 301, name="Clair de lune"),
    "intro": Track("The xx", "Intro", "xx", 2009, 1, 128),
    "wakeup": Track("Arcade Fire", "Wake Up", "Funeral", 2004, 7, 335),
    "seven": Track("The White Stripes", "Seven Nation Army", "Elephant", 2003, 1, 232),
    "blueMonday": Track("New Order", "Blue Monday", "Power, Corruption & Lies (Collector's Edition)", 1983, 9, 449, name="Blue Monday", record="Power, Corruption & Lies"),
    "mrbrightside": Track("The Killers", "Mr. Brightside", "Hot Fuss", 2004, 2, 222),
    "rollingdeep": Track("Adele", "Rolling in the Deep", "21", 2011, 1, 228),
    "wuTang": Track("Wu-Tang Clan", "C.R.E.A.M. (Cash Rules Everything Around Me)", "Enter The Wu-Tang (36 Chambers)", 1993, 8, 252, name="C.R.E.A.M."),
    "sabotage": Track("Beastie Boys", "Sabotage", "Ill Communication", 1994, 13, 178),
    "windowlicker": Track("Aphex Twin", "Windowlicker", "Windowlicker", 1999, 1, 366),
    "runboy": Track("Florence + The Machine", "Dog Days Are Over", "Lungs", 2009, 1, 252),
    "simon": Track("Simon & Garfunkel", "The Sound of Silence", "Sounds Of Silence", 1966, 1, 185),
}  # fmt: skip


# --- files and peers ---------------------------------------------------------------------------------


def rng_for(key: str) -> random.Random:
    return random.Random(zlib.crc32(key.encode()))


@dataclass
class F:
    """One file as a peer lists it; `None` attributes are omitted, as slskd omits nulls."""

    filename: str
    size: int
    extension: str | None = None
    bitRate: int | None = None  # slskd's key
    bitDepth: int | None = None
    sampleRate: int | None = None
    length: int | None = None
    isVariableBitRate: bool | None = None

    def json(self) -> dict[str, Any]:
        ext = self.extension
        if ext is None:
            ext = self.filename.rpartition(".")[2].lower() if "." in self.filename else ""
        out: dict[str, Any] = {"filename": self.filename, "size": self.size, "code": 1, "extension": ext}
        for key in ("bitRate", "bitDepth", "sampleRate", "length", "isVariableBitRate"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        out["isLocked"] = False
        return out


def flac(path: str, secs: int, r: random.Random, *, depth: int = 16, rate: int = 44100, attrs: bool = True,
         kbps: float | None = None, length: int | None = None) -> F:  # fmt: skip
    """A FLAC file: 16/44.1 compresses to 650-1050 kbps, 24-bit to 1.6-3.2 Mbps."""
    if kbps is None:
        kbps = r.uniform(650, 1050) if depth == 16 else r.uniform(1600, 3200) * rate / 96000 + 400
    size = int(secs * kbps * 125) + r.randrange(20_000, 900_000)
    if not attrs:
        return F(path, size)
    return F(path, size, bitDepth=depth, sampleRate=rate, length=secs if length is None else length)


def mp3(path: str, secs: int, r: random.Random, *, kbps: int = 320, vbr: bool = False, attrs: bool = True,
        true_kbps: float | None = None, length: int | None = None, bitrate: bool = True) -> F:  # fmt: skip
    """An MP3: CBR is exactly its bitrate plus tags and art; V0 averages 220-260 kbps."""
    if vbr:
        kbps = r.randrange(225, 265)
    size = int(secs * (true_kbps or kbps) * 125) + r.randrange(4_000, 400_000)
    if not attrs:
        return F(path, size)
    return F(
        path,
        size,
        bitRate=kbps if bitrate else None,
        length=secs if length is None else length,
        isVariableBitRate=vbr,
    )


def other(path: str, secs: int, r: random.Random, kbps: int = 256) -> F:
    return F(path, int(secs * kbps * 125) + r.randrange(4_000, 200_000), bitRate=kbps, length=secs)


def words(text: str) -> list[str]:
    return text.split()


_NAMES = words(
    "vinylhoarder cratedigger lossless_larry mp3junkie77 nordicbreeze oldschoolnoise djfluff kbps_king "
    "musicfreak1983 basement_tapes sk8rboi2004 flacattack wavewatcher deepcutz lofi_lena rarecollector "
    "thesoundofsleep gr00vemachine shoegazer_91 jazzcat tapehiss midnightrunner sonicyouthfan archivist_uk "
    "berlinbeats tokyo_drift_fm seoulsearcher moscowmule88 athensnights lisbonlights cdrip_central "
    "audiophile_ab bitperfect overdub vaporwave_vince cassettekid northern_soul_ed peelsessions "
    "hiresheaven rippedcds punkrockpete grungegirl emo_forever technotom ambientamy dubplate_dan"
)


def usernames(r: random.Random, n: int) -> list[str]:
    return r.sample(_NAMES, n)


def share(r: random.Random) -> str:
    kind = r.random()
    if kind < 0.55:
        return "@@" + "".join(r.choice(string.ascii_lowercase) for _ in range(5))
    if kind < 0.75:
        return r.choice(
            ("C:\\Users\\Owner\\Music", "D:\\Music", "E:\\Media\\Audio", "C:\\Users\\mike\\Music")
        )
    return r.choice(("Music", "Shared", "Soulseek Shared Folder", "MP3", "FLAC"))


def peer(username: str, files: list[F], r: random.Random, *, slot: bool | None = None, speed: int | None = None,
         queue: int | None = None, locked: list[F] | None = None) -> dict[str, Any]:  # fmt: skip
    slot = r.random() < 0.75 if slot is None else slot
    speed = r.choice((180_000, 450_000, 900_000, 1_600_000, 3_200_000)) if speed is None else speed
    queue = (0 if slot else r.randrange(1, 25)) if queue is None else queue
    locked = locked or []
    return {
        "username": username,
        "token": r.randrange(10_000, 99_999),
        "fileCount": len(files),
        "lockedFileCount": len(locked),
        "hasFreeUploadSlot": slot,
        "uploadSpeed": speed,
        "queueLength": queue,
        "files": [f.json() for f in files],
        "lockedFiles": [f.json() for f in locked],
    }


# --- path styles ------------------------------------------------------------------------------------


def win(name: str) -> str:
    """What a Windows share allows: no '/', and ':' '?' '*' '"' '<' '>' '|' replaced or dropped."""
    return name.replace("/", "_").replace(":", " -").translate(str.maketrans("", "", '?*"<>|')).strip(" .")


def styled(t: Track, style: str, root: str, ext: str, *, title: str | None = None, album: str | None = None,
           artist: str | None = None, no: int | None = None) -> str:  # fmt: skip
    """The path of `t` in one of the layouts real shares use."""
    a = win(artist or t.artist)
    ti = win(title or t.file_title)
    al = win(album or t.folder_album)
    n = t.no if no is None else no
    y = t.year
    disc = f"CD{t.disc}\\" if t.discs > 1 else ""
    layouts = {
        "year_dash": f"{root}\\Music\\{a}\\{y} - {al}\\{disc}{n:02d} - {ti}.{ext}",
        "artist_album": f"{root}\\{a} - {al} ({y})\\{disc}{n:02d}. {a} - {ti}.{ext}",
        "tagged": f"{root}\\Downloads\\{a} - {al} [{ext.upper()}]\\{disc}{n:02d} - {ti}.{ext}",
        "plain": f"{root}\\{a} - {ti}.{ext}",
        "album_dir": f"{root}\\{a}\\{al}\\{disc}{n:02d} {ti}.{ext}",
        "underscore": f"{root}\\mp3\\{a.lower().replace(' ', '_')}\\{n:02d}_{ti.lower().replace(' ', '_')}.{ext}",
        "scene": f"{root}\\Scene\\{a.replace(' ', '_')}-{al.replace(' ', '_')}-{y}-FiH\\"
        f"{n:02d}-{a.lower().replace(' ', '_')}-{ti.lower().replace(' ', '_')}-fih.{ext}",
        "dotted": f"{root}\\{a.replace(' ', '.')}.{al.replace(' ', '.')}.{y}\\"
        f"{n:02d}.{a.replace(' ', '.')}.-.{ti.replace(' ', '.')}.{ext}",
        "disc_track": f"{root}\\{a}\\{al} ({y})\\{t.disc}-{n:02d} {ti}.{ext}",
        "long_name": f"{root}\\{a} - {al}\\{a} - {al} - {n:02d} - {ti}.{ext}",
        "bracket_no": f"{root}\\Music\\{a}\\{al}\\[{n:02d}] {ti}.{ext}",
        "caps": f"{root}\\{a.upper()} - {ti.upper()}.{ext.upper()}",
        "vinyl": f"{root}\\Vinyl Rips\\{a} - {al} (LP {y}) [24-96]\\B{n % 5 + 1}. {ti}.{ext}",
        "year_album_artist": f"{root}\\{y} - {a} - {al}\\{n:02d} {a} - {ti}.{ext}",
        "genre_tree": f"{root}\\Rock\\{a[0].upper()}\\{a}\\{y} {al}\\{disc}{n:02d} - {ti}.{ext}",
        "no_number": f"{root}\\{a}\\{al}\\{ti}.{ext}",
    }
    return layouts[style]


STYLES = ("year_dash", "artist_album", "tagged", "plain", "album_dir", "underscore", "scene", "dotted",
          "long_name", "bracket_no", "caps", "year_album_artist", "genre_tree", "no_number")  # fmt: skip


def good_file(t: Track, r: random.Random, style: str | None = None, fmt: str | None = None, **path: Any) -> F:
    """The right recording, as one of the usual formats."""
    style = style or r.choice(STYLES)
    fmt = fmt or r.choice(("flac", "flac", "mp3", "mp3v0"))
    ext = "mp3" if fmt.startswith("mp3") else "flac"
    name = styled(t, style, share(r), ext, **path)
    if fmt == "flac":
        return flac(name, t.secs + r.choice((0, 0, 1, -1)), r)
    if fmt == "flac24":
        return flac(name, t.secs, r, depth=24, rate=r.choice((48000, 96000)))
    return mp3(name, t.secs + r.choice((0, 0, 1, -1)), r, vbr=fmt == "mp3v0", kbps=320)


# --- cases --------------------------------------------------------------------------------------------


@dataclass
class Case:
    id: str
    category: str
    wanted: dict[str, Any]
    responses: list[dict[str, Any]]
    acceptable: list[tuple[str, str]]
    why: str
    preferences: dict[str, Any] | None = None

    def json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "category": self.category, "wanted": self.wanted}
        if self.preferences is not None:
            out["preferences"] = self.preferences
        out["responses"] = self.responses
        out["acceptable"] = [{"username": u, "filename": f} for u, f in self.acceptable]
        out["why"] = self.why
        return out


@dataclass
class Builder:
    """Collects the peers of one case; `good=True` files are the acceptable ones."""

    key: str
    r: random.Random = field(init=False)
    names: list[str] = field(init=False)
    responses: list[dict[str, Any]] = field(default_factory=list)
    acceptable: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.r = rng_for(self.key)
        self.names = usernames(self.r, 12)
        self.spare = [n for n in _NAMES if n not in self.names]

    def add(self, files: list[F], good: list[bool] | bool = False, **peer_kw: Any) -> str:
        name = self.names.pop()
        flags = good if isinstance(good, list) else [good] * len(files)
        self.responses.append(peer(name, files, self.r, **peer_kw))
        self.acceptable += [(name, f.filename) for f, ok in zip(files, flags) if ok]
        return name

    def case(self, category: str, t: Track, why: str, *, versions: bool = True, **kw: Any) -> Case:
        """The case, with a crowd of decoys added: what else the same search shows."""
        self.crowd(t, versions=versions)
        responses = self.responses[:]
        self.r.shuffle(responses)
        return Case(self.key, category, t.wanted(), responses, self.acceptable, why, **kw)

    def crowd(self, t: Track, *, versions: bool) -> None:
        """Between 4 and 16 files, none acceptable, from peers of their own: B-sides in the single's
        folder, other versions (unless the case asks for one), formats not allowed, locked, cut-off
        and low-bitrate copies, and the same title by other acts. A generator of its own keeps the
        case's other random choices as they were."""
        r = rng_for(self.key + ":crowd")
        kinds = ["b_side", "format", "locked", "preview", "low_bitrate", "other_act"]
        kinds += ["version", "version", "version"] if versions else []
        names = r.sample(self.spare, 8)
        for _ in range(r.randrange(2, 7)):
            files: list[F] = []
            locked: list[F] = []
            for _ in range(r.randrange(1, 4)):
                kind = r.choice(kinds)
                decoy = _decoy(t, kind, r)
                (locked if kind == "locked" else files).append(decoy)
            self.responses.append(peer(names.pop(), files, r, locked=locked))


B_SIDES = ("Lost Signal", "Paper Moons", "Static Bloom", "Northern Wires", "Glass Harbour", "Slow Engines",
           "Quiet Machines", "Hollow Coast", "Ember Lines", "Cold Pastures")  # fmt: skip


def _decoy(t: Track, kind: str, r: random.Random) -> F:
    root = share(r)
    if kind == "b_side":
        folder = f"{root}\\{win(t.artist)} - {win(t.file_title)} (CD Single) [{t.year}]"
        return flac(f"{folder}\\{r.randrange(2, 5):02d} - {r.choice(B_SIDES)}.flac", r.randrange(150, 330), r)
    if kind == "format":
        ext = r.choice(("m4a", "wma", "ogg", "ape"))
        return other(styled(t, r.choice(STYLES), root, ext), t.secs, r, 256)
    if kind == "locked":
        return good_file(t, r)
    if kind == "preview":
        return mp3(styled(t, "plain", root, "mp3"), r.choice((30, 60, 90)), r)
    if kind == "low_bitrate":
        return mp3(
            styled(t, r.choice(("plain", "album_dir")), root, "mp3"), t.secs, r, kbps=r.choice((64, 96))
        )
    if kind == "other_act":
        act = r.choice(
            ("The Tribute Band", "Midnight Karaoke Stars", "Piano Dreamers", "String Tribute Quartet")
        )
        return mp3(styled(t, "plain", root, "mp3", artist=act), t.secs + r.randrange(-20, 20), r)
    version = r.choice(("live", "remix", "instrumental", "karaoke", "acoustic", "demo", "slowed", "sped_up"))
    return version_file(t, version, r, same_length=r.random() < 0.3)


CATEGORIES: dict[str, Callable[[], Iterator[Case]]] = {}


def category(fn: Callable[[], Iterator[Case]]) -> Callable[[], Iterator[Case]]:
    CATEGORIES[fn.__name__] = fn
    return fn


# --- traps ------------------------------------------------------------------------------------------

VERSION_SUFFIXES = {
    "live": ["(Live)", "(Live at Wembley Stadium)", "- Live", "[Live 1998]", "(Live From Austin, TX)"],
    "remix": ["(Club Remix)", "(Tiësto Remix)", "(Extended Club Mix)", "[VIP Mix]", "(Dub Mix)"],
    "acoustic": ["(Acoustic)", "(Acoustic Version)", "[Unplugged]", "(Stripped)", "(Piano Version)"],
    "instrumental": ["(Instrumental)", "[Instrumental Version]", "(Inst.)", "(Backing Track)"],
    "karaoke": ["(Karaoke Version)", "(In the Style of {artist}) [Karaoke]", "(Karaoke)"],
    "cover": ["(Cover)", "({artist} Cover)", "[Tribute to {artist}]"],
    "demo": ["(Demo)", "(Early Demo)", "(Demo Version)", "(Rough Mix)", "(Alternate Take)"],
    "slowed": ["(Slowed + Reverb)", "(slowed)", "[Slowed Down]"],
    "sped_up": ["(Sped Up)", "(sped up version)", "[Nightcore]"],
    "radio_edit": ["(Radio Edit)", "(Single Edit)", "(Radio Version)", "(Edit)"],
    "extended": ["(Extended Mix)", "(Extended Version)", '(12" Version)', "(Long Version)"],
    "acapella": ["(Acapella)", "(A Cappella)", "[Vocals Only]"],
    "clean": ["(Clean)", "(Clean Version)"],
}
# How much longer (seconds) each version usually runs; 0 where it often runs the same.
VERSION_DELTA = {"live": 21, "remix": 95, "acoustic": -14, "instrumental": 0, "karaoke": 2, "cover": 9,
                 "demo": -31, "slowed": 64, "sped_up": -52, "radio_edit": -62, "extended": 124,
                 "acapella": -5, "clean": 0}  # fmt: skip


def version_file(
    t: Track, kind: str, r: random.Random, *, same_length: bool = False, n: int | None = None
) -> F:
    options = VERSION_SUFFIXES[kind]
    suffix = options[(n if n is not None else r.randrange(len(options))) % len(options)].format(
        artist=t.artist
    )
    artist = "Karaoke Kings" if kind == "karaoke" and r.random() < 0.5 else t.artist
    if kind == "cover":
        artist = r.choice(("The Tribute Band", "Acoustic Covers Inc.", "Piano Dreamers"))
    title = f"{t.file_title} {suffix}"
    style = r.choice(("plain", "album_dir", "year_dash", "artist_album"))
    album = t.folder_album if style != "plain" else None
    if style in ("album_dir", "year_dash", "artist_album") and kind in ("remix", "live", "demo", "acoustic"):
        album = {"remix": f"{t.folder_album} (Remixes)", "live": f"Live at the BBC {t.year + 3}",
                 "demo": f"{t.folder_album} (Super Deluxe)", "acoustic": "Acoustic Sessions"}[kind]  # fmt: skip
    path = styled(t, style, share(r), r.choice(("mp3", "flac")), title=title, album=album, artist=artist)
    secs = t.secs + (0 if same_length else VERSION_DELTA[kind] + r.randrange(-3, 4))
    return flac(path, secs, r) if path.endswith(".flac") else mp3(path, secs, r)


def folder_version_file(t: Track, kind: str, r: random.Random) -> F:
    """The version marker only in a folder name; the file name is the plain title."""
    a, ti = win(t.artist), win(t.file_title)
    root = share(r)
    folders = {
        "live": f"{root}\\Music\\{a}\\Live\\{t.year + 2}-06-14 Roskilde Festival\\{t.no:02d} {ti}.flac",
        "live2": f"{root}\\{a} - Live at Glastonbury {t.year + 1}\\{t.no:02d} - {ti}.flac",
        "remix": f"{root}\\{a}\\{win(t.folder_album)} (The Remixes)\\{t.no:02d} - {ti}.mp3",
        "instrumental": f"{root}\\Instrumentals\\{a} - {win(t.folder_album)}\\{t.no:02d} - {ti}.flac",
        "karaoke": f"{root}\\Karaoke Hits Vol. 12\\{a} - {ti}.mp3",
        "demo": f"{root}\\{a}\\Demos & Rarities\\{ti}.mp3",
        "acoustic": f"{root}\\{a} - MTV Unplugged\\{t.no:02d} {ti}.flac",
        "cover": f"{root}\\Covers\\Acoustic Covers\\{a} - {ti}.mp3",
        "en_vivo": f"{root}\\{a} - En Vivo en Buenos Aires\\{t.no:02d} - {ti}.mp3",
        "bootleg": f"{root}\\{a}\\Bootlegs\\{t.year + 4} Paris\\{ti}.mp3",
    }
    path = folders[kind]
    secs = t.secs + r.randrange(-2, 3)
    return flac(path, secs, r) if path.endswith(".flac") else mp3(path, secs, r)


FOREIGN = [
    ("live", "(En Vivo)"), ("live", "(Ao Vivo)"), ("live", "(En Directo)"), ("live", "(Live-Version)"),
    ("live", "(Live ver.)"), ("live", "(Dal Vivo)"), ("live", "[Концертная запись]"), ("live", "(ライブ)"),
    ("live", "(라이브)"), ("acoustic", "(Versión Acústica)"), ("acoustic", "(Akustik Version)"),
    ("acoustic", "(Acústico)"), ("remix", "(Remezcla)"), ("instrumental", "(Versión Instrumental)"),
    ("instrumental", "(オフボーカル)"), ("karaoke", "(カラオケ)"), ("remix", "(Ремикс)"),
]  # fmt: skip

OTHER_ACTS = {
    "buckley": ["Leonard Cohen", "Rufus Wainwright", "Pentatonix", "k.d. lang", "Alexandra Burke"],
    "cohen": ["Jeff Buckley", "Rufus Wainwright", "Pentatonix", "John Cale"],
    "hurtcash": ["Nine Inch Nails"],
    "hurtnin": ["Johnny Cash", "Leona Lewis"],
    "whitney": ["Dolly Parton", "LeAnn Rimes"],
    "dolly": ["Whitney Houston", "Linda Ronstadt"],
    "hello": ["Lionel Richie", "Evanescence", "Martin Solveig & Dragonette"],
    "hellorichie": ["Adele", "Evanescence"],
    "creep": ["TLC", "Stone Temple Pilots", "Scala & Kolacny Brothers"],
    "crazy": ["Patsy Cline", "Aerosmith", "Seal", "Willie Nelson"],
    "halo": ["Depeche Mode", "Soil", "Texas"],
    "africa": ["Weezer", "Karl Wolf"],
    "intro": ["M83", "Alt-J", "DJ Shadow"],
    "heroes": ["The Wallflowers", "Peter Gabriel", "Måns Zelmerlöw"],
    "dynamite": ["Taio Cruz"],
    "wakeup": ["Rage Against the Machine", "Hilary Duff"],
    "alors": ["Dave Rodgers"],
    "teardrop": ["Newton Faulkner", "José González", "Elbow"],
}


# --- categories ----------------------------------------------------------------------------------------


ODD_STYLES = ("underscore", "scene", "dotted", "long_name", "bracket_no", "caps", "no_number", "vinyl",
              "year_album_artist", "genre_tree", "disc_track")  # fmt: skip


@category
def odd_names() -> Iterator[Case]:
    """The right file under the names real shares give it, beside traps that share the words."""
    keys = ["paranoid", "karma", "rhapsody", "liveforever", "dollparts", "teenspirit", "getlucky", "dreams",
            "backinblack", "sweetchild", "herecomes", "purplerain", "hello", "nothingelse", "stairway",
            "glorybox", "teardrop", "femme", "seven", "mrbrightside", "rollingdeep", "sabotage", "wonderwall",
            "creep", "simon", "runboy"]  # fmt: skip
    for n, key in enumerate(keys):
        t = T[key]
        b = Builder(f"odd_names-{n + 1:03d}")
        r = b.r
        odd = r.sample(ODD_STYLES, 3)
        only_one = n % 2 == 0
        for style in odd[: 1 if only_one else 3]:
            fmt = "flac24" if style == "vinyl" else r.choice(("flac", "mp3", "mp3v0"))
            b.add([good_file(t, r, style, fmt)], good=True)
        kind = r.choice(("live", "remix", "instrumental", "demo", "acoustic"))
        b.add([version_file(t, kind, r)])
        if n % 3 == 0:
            b.add([version_file(t, "radio_edit", r)])
        yield b.case(
            "odd_names", t, f"the right file only under {', '.join(odd[: 1 if only_one else 3])} names"
        )
    specials: list[tuple[str, str, list[tuple[str, bool]]]] = [
        ("getlucky", "feat. credits in the file name, in several spellings", [
            ("@@fgh\\Daft Punk - Random Access Memories (2013) [FLAC]\\08 - Get Lucky (feat. Pharrell Williams & Nile Rodgers).flac", True),
            ("Music\\Daft Punk ft. Pharrell - Get Lucky.mp3", True),
            ("@@kk\\Daft Punk - Get Lucky (Radio Edit) (feat. Pharrell Williams).mp3", False)]),
        ("rhapsody", "Spotify's 'Remastered 2011' suffix in the file name or not at all", [
            ("@@q\\Queen\\1975 - A Night At The Opera (2011 Remaster)\\11 - Bohemian Rhapsody (Remastered 2011).flac", True),
            ("D:\\Music\\Queen - Bohemian Rhapsody.mp3", True),
            ("@@q2\\Queen - Bohemian Rhapsody (Live Aid 1985).mp3", False)]),
        ("rhapsody", "a typo in the title", [
            ("@@zz\\Queen\\A Night at the Opera\\11 Bohemain Rhapsody.mp3", True)]),
        ("simon", "'&' written as 'and'", [
            ("@@s\\Simon and Garfunkel\\Sounds of Silence (1966)\\01 - The Sound of Silence.flac", True),
            ("@@s2\\Simon & Garfunkel - The Sound of Silence (Live at Central Park).mp3", False)]),
        ("sweetchild", "apostrophes dropped or changed", [
            ("@@g\\Guns N Roses\\Appetite For Destruction\\09 Sweet Child O Mine.flac", True),
            ("@@g2\\Guns n' Roses - Sweet Child o' Mine (Acoustic).mp3", False)]),
        ("runboy", "'+' written as 'and'", [
            ("@@f\\Florence and the Machine\\Lungs\\01 Dog Days Are Over.flac", True),
            ("@@f2\\Florence + The Machine - Dog Days Are Over (Demo).mp3", False)]),
        ("backinblack", "AC/DC written ACDC, AC-DC and AC_DC", [
            ("@@a\\ACDC\\1980 - Back in Black\\06 - Back in Black.flac", True),
            ("@@b\\AC-DC - Back In Black.mp3", True),
            ("@@c\\AC_DC - Back in Black (Live at River Plate).mp3", False)]),
        ("herecomes", "'The Beatles' filed as 'Beatles, The'", [
            ("@@bb\\Beatles, The\\Abbey Road\\07 Here Comes the Sun.flac", True),
            ("@@bc\\The Beatles - Here Comes The Sun (Take 9).mp3", False)]),
        ("wuTang", "an acronym title with dots, spelt with and without them", [
            ("@@w\\Wu-Tang Clan\\Enter the Wu-Tang (36 Chambers)\\08 - C.R.E.A.M..flac", True),
            ("@@w2\\Wu Tang Clan - CREAM.mp3", True),
            ("@@w3\\Wu-Tang Clan - C.R.E.A.M. (Instrumental).mp3", False)]),
        ("dreams", "the share lists the file twice, once with a '(2004 Remaster)' suffix", [
            ("@@fm\\Fleetwood Mac\\Rumours (2004 Remaster)\\02 Dreams (2004 Remaster).flac", True),
            ("@@fm\\Fleetwood Mac\\Rumours\\02 Dreams.flac", True)]),
    ]  # fmt: skip
    for n, (key, why, files) in enumerate(specials, len(keys) + 1):
        t = T[key]
        b = Builder(f"odd_names-{n:03d}")
        by_peer: dict[str, list[tuple[F, bool]]] = {}
        for path, ok in files:
            root = path.split("\\")[0]
            secs = t.secs if ok else t.secs + (0 if "Radio Edit" not in path else -60) + 14 * ("Live" in path)
            f = flac(path, secs, b.r) if path.endswith(".flac") else mp3(path, secs, b.r)
            by_peer.setdefault(root if root.startswith("@@fm") else path, []).append((f, ok))
        for group in by_peer.values():
            b.add([f for f, _ in group], good=[ok for _, ok in group])
        yield b.case("odd_names", t, why)


@category
def versions() -> Iterator[Case]:
    """Every kind of unrequested version, with the same length as the original or not, in the file
    name, only in a folder name, or in another language."""
    keys = ["paranoid", "teenspirit", "hello", "creep", "seven", "mrbrightside", "rollingdeep", "dreams",
            "wonderwall", "halo", "africa", "nothingelse", "glorybox", "somebody"]  # fmt: skip
    n = 0
    for kind in VERSION_SUFFIXES:
        for variant in range(3):
            n += 1
            t = T[keys[(n * 5) % len(keys)]]
            b = Builder(f"versions-{n:03d}")
            same = variant != 1
            b.add([version_file(t, kind, b.r, same_length=same, n=variant)])
            if variant == 2:
                b.add([version_file(t, kind, b.r, same_length=True, n=variant + 1)])
            with_right = variant != 0
            if with_right:
                b.add([good_file(t, b.r)], good=True, slot=False, queue=b.r.randrange(3, 30))
            what = "the right file beside it" if with_right else "nothing else"
            yield b.case("versions", t, f"{kind} version{' of the same length' if same else ''}, {what}")
    for kind in ("live", "live2", "remix", "instrumental", "karaoke", "demo", "acoustic", "cover", "en_vivo",
                 "bootleg"):  # fmt: skip
        n += 1
        t = T[keys[(n * 3) % len(keys)]]
        b = Builder(f"versions-{n:03d}")
        b.add([folder_version_file(t, kind, b.r)], slot=True, queue=0, speed=4_000_000)
        if n % 2:
            b.add([good_file(t, b.r)], good=True, slot=False, queue=12, speed=120_000)
        yield b.case("versions", t, f"{kind.rstrip('2').replace('_', ' ')} marked only in the folder name")
    for i, (kind, suffix) in enumerate(FOREIGN):
        n += 1
        t = T[keys[(i * 7) % len(keys)]]
        b = Builder(f"versions-{n:03d}")
        path = styled(t, "plain", share(b.r), "mp3", title=f"{t.file_title} {suffix}")
        b.add([mp3(path, t.secs + (VERSION_DELTA[kind] if i % 2 else 0), b.r)], slot=True, speed=3_000_000)
        if i % 3 != 2:
            b.add([good_file(t, b.r, fmt="mp3")], good=True, slot=False, queue=4)
        yield b.case("versions", t, f"{kind} version named in another language: {suffix}")


REQUESTED = [
    (Track("Avicii", "Levels - Radio Edit", "Levels", 2011, 1, 199),
     [("@@av\\Avicii - Levels (Radio Edit).mp3", 199, True), ("@@av2\\Avicii\\Levels (Single)\\02 - Levels (Original Mix).flac", 338, False),
      ("@@av3\\Avicii - Levels (Skrillex Remix).mp3", 246, False), ("@@av4\\Avicii - Levels.mp3", 199, True)],
     "asked for the radio edit: a plain 'Levels' of its length is it; the original mix and a remix are not"),
    (Track("Avicii", "Levels - Skrillex Remix", "Levels (Remixes)", 2011, 3, 246),
     [("@@sk\\Avicii - Levels (Skrillex Remix).mp3", 246, True), ("@@sk2\\Avicii - Levels (Radio Edit).mp3", 199, False),
      ("@@sk3\\Avicii - Levels (Cazzette's NYC Mode Radio Mix).mp3", 245, False)],
     "asked for one remix: the radio edit and another remix of the same length are wrong"),
    (Track("Eric Clapton", "Tears in Heaven - Acoustic Live", "Unplugged (Deluxe Edition)", 1992, 4, 279),
     [("@@ec\\Eric Clapton\\1992 - Unplugged\\04 - Tears in Heaven.flac", 279, True),
      ("@@ec2\\Eric Clapton - Tears in Heaven.mp3", 272, False),
      ("@@ec3\\Eric Clapton\\Rush (Soundtrack)\\02 - Tears in Heaven.flac", 272, False)],
     "asked for the unplugged recording: the studio one is wrong"),
    (Track("Oasis", "Wonderwall - Live at Knebworth, 10 August '96", "Knebworth 1996 (Live)", 2021, 12, 275, disc=1, discs=2),
     [("@@ow\\Oasis\\Knebworth 1996 (Live)\\CD1\\12 - Wonderwall.flac", 275, True),
      ("@@ow2\\Oasis - Wonderwall (Live at Maine Road).mp3", 274, False),
      ("@@ow3\\Oasis\\(What's the Story) Morning Glory\\03 - Wonderwall.flac", 258, False)],
     "asked for the Knebworth recording: another live one and the studio one are wrong"),
    (Track("The White Stripes", "Seven Nation Army - The Glitch Mob Remix", "Seven Nation Army (The Glitch Mob Remix)", 2012, 1, 297),
     [("@@ws\\The White Stripes - Seven Nation Army (The Glitch Mob Remix).mp3", 297, True),
      ("@@ws2\\The White Stripes\\Elephant\\01 - Seven Nation Army.flac", 232, False),
      ("@@ws3\\The White Stripes - Seven Nation Army (Benny Benassi Remix).mp3", 295, False)],
     "asked for the Glitch Mob remix"),
    (Track("Radiohead", "Creep - Acoustic", "My Iron Lung", 1994, 8, 259),
     [("@@rc\\Radiohead\\My Iron Lung EP\\08 Creep (Acoustic).flac", 259, True),
      ("@@rc2\\Radiohead - Creep.mp3", 238, False), ("@@rc3\\Radiohead - Creep (Live at KROQ).mp3", 262, False)],
     "asked for the acoustic version: the studio and a live one are wrong"),
    (Track("Beastie Boys", "Sabotage - Instrumental", "Ill Communication (Instrumentals)", 1994, 13, 178),
     [("@@bb\\Beastie Boys - Sabotage (Instrumental).mp3", 178, True),
      ("@@bb2\\Beastie Boys\\Ill Communication\\13 - Sabotage.flac", 178, False)],
     "asked for the instrumental: the vocal take of the same length is wrong"),
    (Track("New Order", "Blue Monday - '88 12\" Version", "Substance", 1987, 2, 428),
     [("@@no\\New Order\\Substance (1987)\\CD1\\02 - Blue Monday '88 (12 Inch Version).flac", 428, True),
      ("@@no2\\New Order - Blue Monday.mp3", 449, False), ("@@no3\\New Order - Blue Monday '88 (7\" Edit).mp3", 249, False)],
     "asked for the 12-inch version"),
    (Track("Nirvana", "About A Girl", "MTV Unplugged In New York", 1994, 1, 217),
     [("@@nu\\Nirvana\\1994 - MTV Unplugged in New York\\01 - About a Girl.flac", 217, True),
      ("@@nu2\\Nirvana - About a Girl (Unplugged).mp3", 218, True),
      ("@@nu3\\Nirvana\\Bleach\\03 - About a Girl.flac", 168, False)],
     "a track of a live album: the live album's files are right, the studio one is not"),
    (Track("Daft Punk", "One More Time - Short Radio Edit", "One More Time", 2000, 2, 227),
     [("@@dp\\Daft Punk - One More Time (Short Radio Edit).mp3", 227, True),
      ("@@dp2\\Daft Punk\\Discovery\\01 - One More Time.flac", 320, False),
      ("@@dp3\\Daft Punk - One More Time (Unplugged).mp3", 229, False)],
     "asked for the short radio edit: the album version and an unplugged take are wrong"),
    (Track("Johnny Cash", "Hurt - Live", "Live at Montreux", 2005, 9, 231),
     [("@@jc\\Johnny Cash\\American IV\\02 - Hurt.flac", 218, False), ("@@jc2\\Johnny Cash - Hurt (Acoustic).mp3", 229, False)],
     "asked for a live recording: there is none"),
    (Track("Adele", "Hello - Live at the NRJ Awards", "Hello (Live)", 2016, 1, 301),
     [("@@ad\\Adele\\25\\01 - Hello.flac", 295, False), ("@@ad2\\Adele - Hello (Live at the Church Studios).mp3", 300, False)],
     "asked for one live recording: the studio take and another live one are wrong"),
    (Track("Portishead", "Glory Box - Live", "Roseland NYC Live", 1998, 11, 344),
     [("@@pr\\Portishead\\Roseland NYC Live (1998)\\11 - Glory Box.flac", 344, True),
      ("@@pr2\\Portishead - Glory Box.mp3", 306, False), ("@@pr3\\Portishead\\Dummy\\11 - Glory Box.flac", 306, False)],
     "asked for the Roseland recording: the folder says live"),
    (Track("Kraftwerk", "Das Model - Remastered", "Die Mensch-Maschine (Remastered)", 1978, 5, 218, name="Das Model"),
     [("@@kw\\Kraftwerk\\1978 - Die Mensch-Maschine\\05 - Das Model.flac", 218, True),
      ("@@kw2\\Kraftwerk - The Model (English Version).mp3", 218, False),
      ("@@kw3\\Kraftwerk - Das Model (Live in Minimum-Maximum).mp3", 240, False)],
     "a remaster suffix asks for nothing: the original-language studio take is right"),
    (Track("Mark Ronson", "Uptown Funk (feat. Bruno Mars) - Live", "Uptown Funk (Live)", 2015, 1, 285, artists=("Mark Ronson", "Bruno Mars")),
     [("@@mr\\Mark Ronson - Uptown Funk (Live) (feat. Bruno Mars).mp3", 285, True),
      ("@@mr2\\Mark Ronson\\Uptown Special\\04 - Uptown Funk (feat. Bruno Mars).flac", 270, False)],
     "a live version with a feat. credit in the middle of the file name"),
    (Track("Massive Attack", "Teardrop - Mad Professor Mix", "No Protection", 1995, 3, 309),
     [("@@ma\\Massive Attack - Teardrop (Mad Professor Mix).mp3", 309, True),
      ("@@ma2\\Massive Attack\\Mezzanine\\03 - Teardrop.flac", 329, False),
      ("@@ma3\\Massive Attack - Teardrop (Scott Hardkiss Remix).mp3", 309, False)],
     "a named mix is a remix and it names its mixer"),
    (Track("The Killers", "Mr. Brightside - Jacques Lu Cont's Thin White Duke Mix", "Mr. Brightside", 2004, 2, 532),
     [("@@tk\\The Killers - Mr. Brightside (Jacques Lu Cont's Thin White Duke Mix).mp3", 532, True),
      ("@@tk2\\The Killers - Mr Brightside (Thin White Duke Remix).flac", 532, True),
      ("@@tk3\\The Killers\\Hot Fuss\\02 - Mr. Brightside.flac", 222, False)],
     "the asked-for remix under its full and its short name"),
    (Track("Sigur Rós", "Hoppípolla - Live", "Heima", 2007, 6, 284),
     [("@@sr\\Sigur Rós\\Takk...\\03 Hoppípolla.flac", 268, False), ("@@sr2\\Sigur Ros - Hoppipolla.mp3", 268, False)],
     "asked for a live recording: only the studio one is shared"),
    (Track("Nine Inch Nails", "Hurt - Quiet", "Things Falling Apart", 2000, 11, 309),
     [("@@ni\\Nine Inch Nails\\The Downward Spiral\\14 - Hurt.flac", 373, False), ("@@ni2\\Nine Inch Nails - Hurt (Quiet).mp3", 309, True)],
     "a named version that is not a known marker still pins the file"),
    (Track("Aphex Twin", "Windowlicker - Acid Edit", "Windowlicker", 1999, 3, 440),
     [("@@ap\\Aphex Twin\\Windowlicker (WAP105)\\03 - Windowlicker (Acid Edit).flac", 440, True),
      ("@@ap2\\Aphex Twin\\Windowlicker (WAP105)\\01 - Windowlicker.flac", 366, False)],
     "asked for an edit named by the artist: the title track is wrong"),
]  # fmt: skip


@category
def requested_version() -> Iterator[Case]:
    """The wanted title asks for a version: files without it are wrong, and so are other versions."""
    for n, (t, files, why) in enumerate(REQUESTED, 1):
        b = Builder(f"requested_version-{n:03d}")
        for path, secs, ok in files:
            f = flac(path, secs, b.r) if path.endswith(".flac") else mp3(path, secs, b.r)
            b.add([f], good=ok)
        yield b.case("requested_version", t, why, versions=False)


@category
def other_acts() -> Iterator[Case]:
    """Songs of the same title by other acts: covers, different songs, soundtrack copies."""
    n = 0
    for key, acts in OTHER_ACTS.items():
        t = T[key]
        for variant in range(2 if len(acts) > 2 else 1):
            n += 1
            b = Builder(f"other_acts-{n:03d}")
            r = b.r
            for act in acts[variant:] if variant else acts[:3]:
                other_track = replace(t, artist=act, secs=t.secs + r.randrange(-40, 60), record=f"{act} Hits")
                b.add([good_file(other_track, r)], slot=True, queue=0, speed=3_500_000)
            if variant == 0 and r.random() < 0.5:
                path = f"{share(r)}\\Music\\{win(t.artist)}\\Misc\\{win(acts[0])} - {win(t.file_title)}.mp3"
                b.add([mp3(path, t.secs + 3, r)])
            right = (n % 3) != 0
            if right:
                b.add([good_file(t, r)], good=True, slot=False, queue=r.randrange(1, 20), speed=300_000)
            why = f"{t.file_title!r} by {', '.join(acts[:3])}" + (
                " and by the wanted act" if right else " only"
            )
            yield b.case("other_acts", t, why)


@category
def truncated_mislabelled() -> Iterator[Case]:
    """Truncated files, lengths and bitrates that lie, FLACs that are MP3s inside, extensions that lie."""
    keys = ["paranoid", "teenspirit", "purplerain", "stairway", "nothingelse", "karma", "hello", "glorybox",
            "teardrop", "femme", "dreams", "seven", "creep"]  # fmt: skip
    kinds = ["preview", "cut", "fake_flac", "liar", "wrong_song", "ext_field", "no_ext_field", "fake_flac_noattr",
             "cut_noattr", "double_length"]  # fmt: skip
    n = 0
    for i, kind in enumerate(kinds):
        for variant in range(3 if kind in ("fake_flac", "liar", "cut", "ext_field") else 2):
            n += 1
            t = T[keys[(i * 3 + variant) % len(keys)]]
            b = Builder(f"truncated_mislabelled-{n:03d}")
            r = b.r
            root = share(r)
            plain = styled(t, r.choice(("plain", "album_dir", "year_dash")), root, "mp3")
            as_flac = plain[:-4] + ".flac"
            why = ""
            good: bool = False
            if kind == "preview":
                f, why = mp3(plain, 30, r), "a 30-second preview under the full name"
            elif kind == "cut":
                f, why = flac(as_flac, t.secs // 2, r), "a file cut off half way"
            elif kind == "cut_noattr":
                f, why = (
                    mp3(plain, t.secs // 4, r, attrs=False),
                    "a cut-off MP3 with no attributes: its size tells",
                )
            elif kind == "fake_flac":
                f = flac(as_flac, t.secs, r, kbps=r.choice((128, 192, 320)) + 3)
                why = "a 'FLAC' the size of an MP3"
            elif kind == "fake_flac_noattr":
                f = flac(as_flac, t.secs, r, kbps=r.choice((192, 320)), attrs=False)
                why = "a 'FLAC' with no attributes, the size of an MP3"
            elif kind == "liar":
                f, why = (
                    mp3(plain, t.secs, r, kbps=320, true_kbps=r.choice((96, 128))),
                    "claims 320 kbps, sized for 128",
                )
            elif kind == "wrong_song":
                f = mp3(plain, t.secs + r.choice((-90, 75, 140)), r)
                why = "the title on another song: the length is far off"
            elif kind == "double_length":
                f = mp3(plain, t.secs, r, vbr=True, length=t.secs * 2)
                why = "a VBR file whose peer reports twice its length: it cannot be trusted"
            elif kind == "ext_field":
                f = flac(as_flac, t.secs, r)
                f.extension = "mp3" if variant == 0 else "FLAC" if variant == 1 else "audio/flac"
                why, good = "the extension field says something else: the file name decides", True
            else:  # no_ext_field
                f = mp3(plain, t.secs, r)
                f.extension = ""
                why, good = "an empty extension field: the file name decides", True
            b.add([f], good=good, slot=True, queue=0, speed=2_500_000)
            if variant != 1 or good:
                b.add(
                    [good_file(t, r, fmt=r.choice(("mp3", "flac")))],
                    good=True,
                    slot=False,
                    queue=7,
                    speed=200_000,
                )
            yield b.case("truncated_mislabelled", t, why)


@category
def missing_attributes() -> Iterator[Case]:
    """Peers that send no length, no bitrate, nothing but a size, or an empty extension."""
    keys = ["paranoid", "karma", "dollparts", "teenspirit", "backinblack", "herecomes", "hello", "creep",
            "seven", "mrbrightside", "sabotage", "rollingdeep", "wonderwall", "halo", "africa", "dreams",
            "glorybox", "beggin", "alors", "onemoretime", "nothingelse"]  # fmt: skip
    for n, key in enumerate(keys, 1):
        t = T[key]
        b = Builder(f"missing_attributes-{n:03d}")
        r = b.r
        root = share(r)
        kind = ("none_flac", "none_mp3", "no_length", "no_bitrate", "vbr_no_bitrate", "no_ext")[n % 6]
        style = r.choice(("year_dash", "album_dir", "plain", "artist_album"))
        if kind == "none_flac":
            f = flac(styled(t, style, root, "flac"), t.secs, r, attrs=False)
        elif kind == "none_mp3":
            f = mp3(styled(t, style, root, "mp3"), t.secs, r, attrs=False)
        elif kind == "no_length":
            f = mp3(styled(t, style, root, "mp3"), t.secs, r)
            f.length = None
        elif kind == "no_bitrate":
            f = mp3(styled(t, style, root, "mp3"), t.secs, r, bitrate=False)
        elif kind == "vbr_no_bitrate":
            f = mp3(styled(t, style, root, "mp3"), t.secs, r, vbr=True, bitrate=False)
        else:
            f = flac(styled(t, style, root, "flac"), t.secs, r, attrs=False)
            f.extension = ""
        b.add([f], good=True, slot=True, queue=0)
        trap = n % 3
        if trap == 0:
            cut = mp3(styled(t, "plain", share(r), "mp3"), t.secs // 4, r, attrs=False)
            b.add([cut], slot=True, queue=0, speed=5_000_000)
        elif trap == 1:
            b.add([version_file(t, "live", r)], slot=True, queue=0)
        else:
            small = flac(styled(t, "plain", share(r), "flac"), t.secs, r, kbps=160, attrs=False)
            b.add([small], slot=True, queue=0, speed=5_000_000)
        trap_name = (
            "a cut-off file without attributes",
            "a live version",
            "an MP3-sized 'FLAC' without attributes",
        )
        yield b.case(
            "missing_attributes", t, f"right file with {kind.replace('_', ' ')}; beside {trap_name[trap]}"
        )


def _disc_layouts(t: Track, root: str, ext: str) -> dict[str, str]:
    a, al, ti, d, n = win(t.artist), win(t.folder_album), win(t.file_title), t.disc, t.no
    return {
        "cd_folder": f"{root}\\{a}\\{t.year} - {al}\\CD{d}\\{n:02d} - {ti}.{ext}",
        "disc_folder": f"{root}\\Music\\{a}\\{al}\\Disc {d}\\{n:02d}. {ti}.{ext}",
        "sibling": f"{root}\\{a} - {al} (Disc {d})\\{n:02d} {ti}.{ext}",
        "prefix": f"{root}\\{a} - {al} [{t.year}]\\{d}-{n:02d} - {ti}.{ext}",
        "compact": f"{root}\\{a}\\{al}\\{d}{n:02d} {ti}.{ext}",
        "subtitled": f"{root}\\{a}\\{al}\\CD{d} - Part {('One', 'Two', 'Three')[d - 1]}\\{n:02d} {ti}.{ext}",
    }


@category
def multi_disc() -> Iterator[Case]:
    """Tracks of multi-disc releases: disc folders, disc-track prefixes, the same number on each disc."""
    n = 0
    for key in ("numb", "brick2", "1979"):
        t = T[key]
        for layout in ("cd_folder", "disc_folder", "sibling", "prefix", "compact", "subtitled")[
            : 6 if key == "numb" else 5
        ]:
            n += 1
            b = Builder(f"multi_disc-{n:03d}")
            r = b.r
            path = _disc_layouts(t, share(r), "flac")[layout]
            b.add([flac(path, t.secs, r)], good=True, slot=False, queue=5)
            # The other disc's track with the same number, from the same folder: another song.
            twin = _disc_layouts(
                replace(t, disc=3 - t.disc, name="Hey You" if key == "numb" else "Goodbye Blue Sky"),
                share(r),
                "flac",
            )[layout]
            b.add([flac(twin, 280, r)], slot=True, queue=0, speed=4_000_000)
            trap = {"numb": ("Comfortably Numb (Live)", "Is There Anybody Out There - The Wall Live", 461),
                    "brick2": ("Another Brick in the Wall (Part 2) (Demo)", "The Wall (Immersion Box Set)", 251),
                    "1979": ("1979 (Vocal Mix)", "Mellon Collie and the Infinite Sadness (Deluxe Edition)", 263)}[key]  # fmt: skip
            trap_path = _disc_layouts(replace(t, name=trap[0], record=trap[1], disc=3), share(r), "flac")[
                layout
            ]
            b.add([flac(trap_path, trap[2], r)], slot=True, queue=0)
            yield b.case(
                "multi_disc", t, f"disc {t.disc} track {t.no} under a {layout.replace('_', ' ')} layout"
            )
    for key, why in (("numb", "a live album with no 'live' in its folder runs much longer"),
                     ("brick2", "Part 1 and Part 3 sit beside Part 2 on the same disc")):  # fmt: skip
        n += 1
        t = T[key]
        b = Builder(f"multi_disc-{n:03d}")
        r = b.r
        root = share(r)
        if key == "numb":
            b.add(
                [flac(f"{root}\\Pink Floyd\\1995 - P.U.L.S.E\\CD2\\10 - Comfortably Numb.flac", 536, r)],
                slot=True,
            )
            b.add(
                [flac(_disc_layouts(t, share(r), "flac")["cd_folder"], t.secs, r)],
                good=True,
                slot=False,
                queue=9,
            )
        else:
            for part, secs in ((1, 190), (3, 78)):
                path = f"{root}\\Pink Floyd\\The Wall\\CD1\\{part + 2:02d} - Another Brick in the Wall, Part {part}.flac"
                b.add([flac(path, secs, r)], slot=True, queue=0)
            b.add([flac(_disc_layouts(t, share(r), "flac")["disc_folder"], t.secs, r)], good=True, slot=False)
        yield b.case("multi_disc", t, why)


COMPILATIONS = [
    ("karma", "@@now\\VA - Now That's What I Call Music! 38 (1997)\\CD1\\07 - Radiohead - Karma Police.mp3", 264, True,
     "the same recording on a Various Artists compilation"),
    ("rhapsody", "@@gh\\Queen\\Greatest Hits (1981)\\01 - Bohemian Rhapsody.flac", 355, True, "the same recording on the artist's best-of"),
    ("seven", "@@mix\\Ministry of Sound - The Annual 2004 (Mixed)\\CD2\\05 - The White Stripes - Seven Nation Army.mp3", 171, False,
     "a DJ-mixed compilation cuts the track short"),
    ("levels", "@@dj\\Various Artists - Ibiza Anthems 2012\\CD1\\03 - Avicii - Levels.mp3", 199, True,
     "a radio edit on a compilation when the radio edit is asked for"),
    ("purplerain", "@@hits\\Prince - The Hits 2\\18 - Purple Rain.mp3", 241, False, "the best-of carries the single edit: four minutes shorter"),
    ("teenspirit", "@@va\\Various\\90s Rock Anthems\\01 Nirvana - Smells Like Teen Spirit.flac", 301, True,
     "a compilation file named 'Artist - Title'"),
    ("getlucky", "@@va2\\VA - Grammy Nominees 2014\\08 - Daft Punk feat. Pharrell Williams - Get Lucky (Radio Edit).mp3", 248, False,
     "the compilation carries the radio edit"),
    ("hello", "@@va3\\Various Artists - Now 92\\CD1\\01-adele-hello.mp3", 295, True, "a scene-named compilation file"),
    ("dreams", "@@va4\\VA - The Best Of Fleetwood Mac & Friends\\Fleetwood Mac - Dreams (Live).mp3", 268, False,
     "a live take on a compilation"),
    ("sweetchild", "@@va5\\Kerrang! The Album\\CD2\\Sweet Child O' Mine.mp3", 356, False,
     "a compilation file with no artist anywhere in its path"),
    ("halo", "@@va6\\Beyonce - I Am... Sasha Fierce (Platinum Edition)\\CD1\\02. Halo.flac", 261, True,
     "the platinum edition of the same album"),
    ("somebody", "@@va7\\VA - Hits 2012\\05. Gotye feat. Kimbra - Somebody That I Used To Know.mp3", 244, True,
     "the compilation credits both artists"),
]  # fmt: skip


@category
def compilations() -> Iterator[Case]:
    """The track on compilations and best-ofs: right when it is the same recording, wrong when it is
    an edit, a mix or a live take."""
    for n, (key, path, secs, ok, why) in enumerate(COMPILATIONS, 1):
        t = T[key] if key != "levels" else REQUESTED[0][0]
        b = Builder(f"compilations-{n:03d}")
        r = b.r
        f = flac(path, secs, r) if path.endswith(".flac") else mp3(path, secs, r)
        b.add([f], good=ok, slot=True, queue=0, speed=4_000_000)
        if n % 2:
            b.add([good_file(t, r)], good=True, slot=False, queue=11)
        yield b.case("compilations", t, why)
    born = Track("Underworld", "Born Slippy .NUXX", "Trainspotting (Music From The Motion Picture)", 1996, 11, 583,
                 album_artist="Various Artists")  # fmt: skip
    b = Builder("compilations-013")
    b.add(
        [flac("@@ts\\VA - Trainspotting OST (1996)\\11 - Underworld - Born Slippy .NUXX.flac", 583, b.r)],
        good=True,
    )
    b.add([mp3("@@ts2\\Underworld - Born Slippy (Short Version).mp3", 225, b.r)], slot=True, queue=0)
    b.add([mp3("@@ts3\\Underworld - Born Slippy.NUXX.mp3", 583, b.r)], good=True, slot=False, queue=3)
    yield b.case("compilations", born, "a soundtrack track wanted from its Various Artists album")
    b = Builder("compilations-014")
    b.add(
        [mp3("@@bf\\Various Artists\\Shrek (Soundtrack)\\Rufus Wainwright - Hallelujah.mp3", 248, b.r)],
        slot=True,
    )
    b.add([flac("@@bf2\\Jeff Buckley\\Grace (1994)\\06 - Hallelujah.flac", 413, b.r)], good=True, slot=False)
    yield b.case("compilations", T["buckley"], "a soundtrack compilation carries another act's take")
    b = Builder("compilations-015")
    b.add([mp3("@@ca\\Unknown Artist\\Greatest Love Songs\\Track 07.mp3", 271, b.r)], slot=True)
    b.add([mp3("@@ca2\\Various Artists\\Love Songs\\07 - I Will Always Love You.mp3", 271, b.r)], slot=True)
    yield b.case("compilations", T["whitney"], "compilation files that never name the artist")


NON_LATIN: list[tuple[str, list[tuple[str, int, bool]], str]] = [
    ("krovi", [("@@ru\\Кино\\1988 - Группа крови\\01 - Группа крови.flac", 285, True),
               ("@@ru2\\Kino - Gruppa krovi.mp3", 285, True),
               ("@@ru3\\Кино - Группа крови (Live).mp3", 301, False),
               ("@@ru4\\Кино\\Звезда по имени Солнце\\01 - Звезда по имени Солнце.flac", 225, False)],
     "Cyrillic files and a transliterated one; a live take and another song of the same act"),
    ("krovi", [("@@ru5\\Kino - Gruppa Krovi (Remastered).flac", 285, True),
               ("@@ru6\\Кино - Группа крови (кавер).mp3", 280, False)],
     "only a transliterated file is right; a cover marked in Russian is not"),
    ("khochesh", [("@@zf\\Zemfira - Hochesh.mp3", 212, True),
                  ("@@zf2\\Земфира\\Прости меня моя любовь (2000)\\04 Хочешь.flac", 212, True),
                  ("@@zf3\\Земфира - Хочешь (акустика).mp3", 205, False)],
     "a transliteration that spells х as h; an acoustic take marked in Russian"),
    ("yoru", [("@@jp\\YOASOBI\\THE BOOK\\02 夜に駆ける.flac", 261, True),
              ("@@jp2\\ＹＯＡＳＯＢＩ－夜に駆ける.mp3", 261, True),
              ("@@jp3\\YOASOBI - 夜に駆ける (Instrumental).flac", 261, False),
              ("@@jp4\\YOASOBI - 夜に駆ける -TV size-.mp3", 89, False)],
     "Japanese titles, a full-width file name, an instrumental and a TV-size edit"),
    ("yoru", [("@@jp5\\YOASOBI - 夜に駆ける (オフボーカル).flac", 261, False),
              ("@@jp6\\夜に駆ける.mp3", 261, False)],
     "an off-vocal take, and a file that never names the artist"),
    ("goodday", [("@@kr\\아이유 (IU)\\Real\\02 좋은 날.flac", 234, True),
                 ("@@kr2\\IU - 좋은날.mp3", 234, True),
                 ("@@kr3\\아이유 - 좋은 날 (Inst.).mp3", 234, False)],
     "Hangul titles with and without the space; an instrumental"),
    ("goodday", [("@@kr4\\아이유 - 좋은 날.mp3", 234, False)],
     "the artist only in Hangul: nothing names 'IU', so it is not trusted"),
    ("qingtian", [("@@cn\\周杰倫 Jay Chou\\葉惠美\\03 晴天.flac", 269, True),
                  ("@@cn2\\周杰倫 - 晴天 (Live).mp3", 290, False),
                  ("@@cn3\\Jay Chou - 晴天.mp3", 269, True)],
     "a two-character Chinese title"),
    ("zorbas", [("@@gr\\Mikis Theodorakis - Zorbas.mp3", 262, True),
                ("@@gr2\\Μίκης Θεοδωράκης\\Zorba the Greek\\01 - Ζορμπάς.flac", 262, True),
                ("@@gr3\\Mikis Theodorakis - Zorbas (Live at Herod Atticus).mp3", 301, False)],
     "Greek in the script and transliterated"),
    ("hoppipolla", [("@@is\\Sigur Ros - Hoppipolla.mp3", 268, True),
                    ("@@is2\\Sigur Rós\\Takk...\\03 Hoppípolla.flac", 268, True),
                    ("@@is3\\Sigur Rós - Hoppípolla (Live at Laugardalshöll).flac", 290, False)],
     "Icelandic accents kept or dropped"),
    ("joga", [("@@bj\\Bjork - Joga.mp3", 305, True), ("@@bj2\\Björk\\Homogenic\\02 - Jóga (Howie B Main Mix).flac", 310, False)],
     "accents dropped; a remix named as a 'main mix'"),
    ("halo", [("@@be\\Beyonce - Halo.mp3", 261, True), ("@@be2\\Beyoncé - Halo (Acoustic Version).mp3", 247, False)],
     "an accent dropped from the artist"),
    ("beggin", [("@@mk\\Maneskin - Beggin.mp3", 211, True), ("@@mk2\\Måneskin - Beggin' (Live at X Factor).mp3", 215, False)],
     "å written a, the apostrophe dropped"),
    ("kickstart", [("@@mc\\Motley Crue\\Dr. Feelgood\\05 Kickstart My Heart.flac", 282, True),
                   ("@@mc2\\Mötley Crüe - Kickstart My Heart (Demo).mp3", 279, False)],
     "umlauts dropped"),
    ("malamente", [("@@ro\\Rosalia - Malamente (Cap.1 Augurio).flac", 150, True),
                   ("@@ro2\\ROSALÍA\\El Mal Querer\\01 - MALAMENTE (Cap.1 - Augurio).mp3", 150, True),
                   ("@@ro3\\Rosalía - Malamente (En Directo).mp3", 166, False)],
     "a chapter subtitle and an accent; a live take marked in Spanish"),
    ("alors", [("@@st\\Stromae\\Cheese\\03 Alors On Danse.flac", 206, True),
               ("@@st2\\Stromae - Alors on danse (Remix) (feat. Kanye West).mp3", 210, False)],
     "French title case; a remix"),
    ("firstlove", [("@@ut\\宇多田ヒカル (Utada Hikaru)\\First Love\\11 First Love.flac", 257, True),
                   ("@@ut2\\Utada Hikaru - First Love (2014 Remastered).mp3", 257, True),
                   ("@@ut3\\宇多田ヒカル - First Love.mp3", 257, False),
                   ("@@ut4\\Utada Hikaru - First Love (Instrumental).flac", 257, False)],
     "the artist written family name first, or only in Japanese"),
    ("model", [("@@kf\\Kraftwerk\\Die Mensch-Maschine\\05 - Das Model.flac", 218, True),
               ("@@kf2\\Kraftwerk - Das Model (Live-Version).mp3", 221, False)],
     "a German live marker"),
    ("femme", [("@@ai\\Air\\Moon Safari\\01 La Femme D'Argent.flac", 430, True),
               ("@@ai2\\Air - La femme d'argent (Version acoustique).mp3", 415, False)],
     "an apostrophe inside a French title; a French acoustic marker"),
    ("yoru", [("@@jp7\\YOASOBI - 夜に駆ける (Live ver.).mp3", 270, False),
              ("@@jp8\\YOASOBI「THE BOOK」\\02. YOASOBI - 夜に駆ける.flac", 261, True)],
     "Japanese corner brackets in a folder; a 'Live ver.'"),
]  # fmt: skip


@category
def non_latin() -> Iterator[Case]:
    """Cyrillic, Greek, Japanese, Korean and Chinese names, transliterations and accents."""
    for n, (key, files, why) in enumerate(NON_LATIN, 1):
        t = T[key]
        b = Builder(f"non_latin-{n:03d}")
        for path, secs, ok in files:
            f = flac(path, secs, b.r) if path.endswith(".flac") else mp3(path, secs, b.r)
            b.add([f], good=ok)
        yield b.case("non_latin", t, why)


@category
def hostile_paths() -> Iterator[Case]:
    """Paths no one should download from, beside ordinary absolute paths that are fine."""
    t = T["paranoid"]
    a, ti, al = "Radiohead", "Paranoid Android", "OK Computer"
    cases: list[tuple[list[tuple[str, bool]], str]] = [
        (
            [
                (f"@@x\\Music\\{a}\\..\\..\\{al}\\02 - {ti}.flac", False),
                (f"@@y\\{a}\\{al}\\02 - {ti}.flac", True),
            ],
            "a '..' segment, beside a clean copy",
        ),
        ([(f"..\\..\\..\\Windows\\System32\\{a} - {ti}.mp3", False)], "a traversal path only"),
        (
            [(f"@@x\\{a}\\{al}\\02 - {ti}\x07.flac", False), (f"@@z\\{a} - {ti}.mp3", True)],
            "a control character",
        ),
        ([(f"@@x\\{a}\\{al}\\02 - {ti}\x00.mp3", False)], "a NUL byte in the name"),
        ([(f"@@x\\{a}\\{al}\\02 - {ti}\n.flac", False)], "a newline in the name"),
        (
            [(f"@@x\\{a}\\{al}\\02 - {ti} \u202ecalf.exe", False), (f"@@w\\{a}\\{al}\\02 {ti}.flac", True)],
            "a right-to-left override hiding an .exe",
        ),
        (
            [(f"@@x\\{a}\\{al}\\02 - {ti}.flac.exe", False), (f"@@x\\{a}\\{al}\\02 - {ti}.mp3.lnk", False)],
            "executables named like audio",
        ),
        ([(f"/home/thom/music/{a}/{al}/02 - {ti}.flac", True)], "a Unix absolute path with forward slashes"),
        ([(f"C:\\Users\\Thom\\Music\\{a}\\{al}\\02 - {ti}.flac", True)], "a Windows drive path"),
        ([(f"\\\\NAS\\music\\{a}\\{al}\\02 - {ti}.mp3", True)], "a UNC path"),
        (
            [(f"@@x\\{'Very Long Folder Name ' * 12}\\{a}\\{al}\\02 - {ti}.flac", True)],
            "a path of 330 characters",
        ),
        (
            [(f"@@x\\{a}\\{al}\\", False), (f"@@x\\{a}\\{al}\\02 - {ti}.mp3 ", False)],
            "no file name, and an extension with a trailing space",
        ),
        ([(f"@@x\\{a}\\{al}\\.\\02 - {ti}.flac", True)], "a harmless '.' segment"),
        (
            [(f"@@x/{a}/..%2f..%2fetc/02 - {ti}.flac", True), (f"@@x\\{a}\\{al}\\..\\02 - {ti}.mp3", False)],
            "an encoded slash is just text; a real '..' is not",
        ),
        (
            [(f"@@\u0000\\{a} - {ti}.mp3", False), (f"@@ok\\{a} - {ti}.mp3", True)],
            "a control character in the share root",
        ),
    ]
    for n, (files, why) in enumerate(cases, 1):
        b = Builder(f"hostile_paths-{n:03d}")
        for path, ok in files:
            f = flac(path, t.secs, b.r) if ".flac" in path else mp3(path, t.secs, b.r)
            b.add([f], good=ok, slot=not ok, queue=0 if not ok else 6, speed=5_000_000 if not ok else 150_000)
        yield b.case("hostile_paths", t, why)


@category
def peer_tiebreak() -> Iterator[Case]:
    """The same file from peers that differ only by free slot, queue length or speed."""
    keys = ["paranoid", "karma", "teenspirit", "hello", "seven", "creep", "dreams", "africa", "halo",
            "glorybox", "wonderwall", "backinblack", "purplerain"]  # fmt: skip
    setups = [  # (slot, queue, speed) per peer; the first wins
        ([(True, 0, 900_000), (False, 0, 5_000_000), (False, 3, 9_000_000)], "only one free upload slot"),
        ([(True, 0, 400_000), (True, 12, 400_000), (True, 45, 400_000)], "queues of 0, 12 and 45"),
        (
            [(True, 0, 6_000_000), (True, 0, 700_000), (True, 0, 40_000)],
            "speeds of 6 MB/s, 700 kB/s and 40 kB/s",
        ),
        ([(True, 0, 300_000), (True, 8, 8_000_000)], "an empty queue beats a faster peer"),
        ([(True, 25, 100_000), (False, 0, 9_000_000)], "a free slot beats an idle peer without one"),
        (
            [(False, 2, 2_000_000), (False, 60, 2_000_000), (False, 30, 2_000_000)],
            "no free slots: the shortest queue",
        ),
    ]
    n = 0
    for i, key in enumerate(keys):
        for j in (0, 1):
            if n >= 25:
                break
            n += 1
            t = T[key]
            peers, why = setups[(i + j * 3) % len(setups)]
            b = Builder(f"peer_tiebreak-{n:03d}")
            r = b.r
            fmt = r.choice(("flac", "mp3"))
            style = r.choice(("year_dash", "album_dir", "artist_album"))
            for m, (slot, queue, speed) in enumerate(peers):
                path = styled(t, style, share(r), "flac" if fmt == "flac" else "mp3")
                f = flac(path, t.secs, r, kbps=880) if fmt == "flac" else mp3(path, t.secs, r)
                f.size = 40_000_000 if fmt == "flac" else t.secs * 40_000 + 120_000
                b.add([f], good=m == 0, slot=slot, queue=queue, speed=speed)
            b.add([version_file(t, "live", r)], slot=True, queue=0, speed=9_000_000)
            yield b.case("peer_tiebreak", t, why)


@category
def quality() -> Iterator[Case]:
    """The quality ladder, the bitrate floor and the allowed formats decide between right files."""
    keys = ["paranoid", "teenspirit", "hello", "seven", "creep", "dreams", "africa", "glorybox", "karma",
            "wonderwall", "halo", "backinblack", "rollingdeep", "sabotage", "teardrop", "mrbrightside"]  # fmt: skip
    # (files as (fmt, kbps, vbr, attrs), index of the winners, preferences, why)
    setups: list[tuple[list[tuple[str, int, bool, bool]], list[int], dict[str, Any] | None, str]] = [
        (
            [("flac", 16, False, True), ("mp3", 320, False, True), ("mp3", 0, True, True)],
            [0],
            None,
            "FLAC over MP3 320 over V0",
        ),
        ([("flac", 24, False, True), ("flac", 16, False, True)], [0], None, "24-bit over 16-bit FLAC"),
        (
            [("mp3", 320, False, True), ("mp3", 0, True, True), ("mp3", 256, False, True)],
            [0],
            None,
            "320 over V0 over 256",
        ),
        ([("mp3", 0, True, True), ("mp3", 192, False, True)], [0], None, "V0 over 192"),
        (
            [("mp3", 96, False, True), ("mp3", 128, False, True)],
            [1],
            None,
            "96 kbps is below the floor, 128 is not",
        ),
        (
            [("mp3", 96, False, True), ("mp3", 112, False, True)],
            [],
            None,
            "everything below the 128 kbps floor",
        ),
        (
            [("flac", 16, False, True), ("mp3", 320, False, True)],
            [1],
            {"formats": ["mp3"]},
            "MP3 only: the FLAC is not allowed",
        ),
        ([("flac", 16, False, True), ("mp3", 320, False, True)], [0], {"formats": ["flac"]}, "FLAC only"),
        ([("mp3", 320, False, True)], [], {"formats": ["flac"]}, "FLAC only, and only an MP3 is shared"),
        (
            [("flac24proof", 24, False, False), ("flac", 16, False, True)],
            [0],
            None,
            "a FLAC without attributes whose size proves 24-bit",
        ),
        (
            [("m4a", 256, False, True), ("mp3", 320, False, True)],
            [1],
            {"formats": ["flac", "mp3", "m4a"]},
            "an allowed format off the ladder ranks below it",
        ),
        (
            [("mp3", 192, False, True), ("mp3", 224, False, True)],
            [],
            {"min_bitrate_kbps": 256},
            "a 256 kbps floor: 192 and 224 are below it",
        ),
        (
            [("flac", 16, False, True), ("mp3", 320, False, True)],
            [0],
            None,
            "the FLAC on a busy peer still wins",
        ),
        (
            [("ogg", 320, False, True), ("wma", 192, False, True)],
            [],
            None,
            "only formats the user did not allow",
        ),
        (
            [("mp3", 0, False, False), ("mp3", 320, False, True)],
            [1],
            None,
            "a known 320 over an MP3 with no attributes",
        ),
        (
            [("flac", 16, False, True), ("flac", 16, False, True)],
            [0],
            None,
            "two FLACs: the free slot decides",
        ),
    ]
    for n, (files, winners, prefs, why) in enumerate(setups, 1):
        t = T[keys[n % len(keys)]]
        b = Builder(f"quality-{n:03d}")
        r = b.r
        for m, (fmt, kbps, vbr, attrs) in enumerate(files):
            ext = "flac" if fmt.startswith("flac") else fmt
            path = styled(t, r.choice(("year_dash", "album_dir", "artist_album")), share(r), ext)
            if fmt == "flac24proof":
                f = flac(path, t.secs, r, depth=24, rate=96000, attrs=False)
            elif fmt == "flac":
                f = flac(path, t.secs, r, depth=kbps, rate=96000 if kbps == 24 else 44100)
            elif fmt == "mp3":
                f = mp3(path, t.secs, r, kbps=kbps or 320, vbr=vbr, attrs=attrs)
            else:
                f = other(path, t.secs, r, kbps)
            busy = m == 0 and "busy" in why
            first_free = "free slot" in why and m == 0
            slot = first_free or (not busy and m > 0 and "free slot" not in why)
            b.add([f], good=m in winners, slot=slot, queue=30 if busy else 0,
                  speed=60_000 if m == 0 and not first_free else 3_000_000)  # fmt: skip
        yield b.case("quality", t, why, preferences=prefs)


@category
def nothing_acceptable() -> Iterator[Case]:
    """Searches where nothing shown may be downloaded."""
    n = 0

    def make(t: Track, files: list[tuple[str, int]], why: str, locked: bool = False) -> Case:
        nonlocal n
        n += 1
        b = Builder(f"nothing_acceptable-{n:03d}")
        for path, secs in files:
            f = flac(path, secs, b.r) if path.endswith(".flac") else mp3(path, secs, b.r)
            if locked:
                b.add([], locked=[f])
            else:
                b.add([f])
        return b.case("nothing_acceptable", t, why)

    p = T["paranoid"]
    yield make(
        p,
        [("@@a\\Radiohead\\OK Computer\\02 - Paranoid Android.flac", 387)] * 1,
        "every copy is locked",
        locked=True,
    )
    yield make(
        p,
        [
            ("@@a\\Radiohead\\OK Computer\\03 - Subterranean Homesick Alien.flac", 267),
            ("@@a\\Radiohead\\OK Computer\\04 - Exit Music (For a Film).flac", 264),
            ("@@b\\Radiohead - OK Computer (1997)\\01. Radiohead - Airbag.mp3", 284),
        ],
        "the album's other songs: the track itself is not shared",
    )
    yield make(
        p,
        [
            ("@@c\\Radiohead\\Live\\1997 Glastonbury\\05 Paranoid Android.mp3", 398),
            ("@@d\\Radiohead - Paranoid Android (Live at the Astoria).mp3", 410),
            ("@@e\\Paranoid Android (Radiohead Cover) - Brad Mehldau.mp3", 1180),
        ],
        "only live takes and a cover",
    )
    yield make(
        p,
        [("@@f\\Downloads\\Paranoid Android.mp3", 387), ("@@g\\Music\\02 - Paranoid Android.flac", 387)],
        "right length, but nothing in the path names the artist",
    )
    yield make(
        p,
        [("@@h\\Radiohead\\OK Computer\\Track 02.mp3", 387), ("@@h\\Radiohead\\OK Computer\\02.flac", 387)],
        "files named only by number",
    )
    yield make(
        p,
        [
            ("@@i\\Radiohead - Paranoid Android.m4a", 387),
            ("@@j\\Radiohead - Paranoid Android.wma", 387),
            ("@@k\\Radiohead - Paranoid Android.ogg", 387),
        ],
        "only formats the user did not allow",
    )
    yield make(
        T["loveless"],
        [
            ("@@l\\My Bloody Valentine\\Loveless\\01 - Only Shallow.flac", 257),
            ("@@l\\My Bloody Valentine\\Loveless\\05 - When You Sleep.flac", 252),
        ],
        "the album is named like nothing wanted; the track is absent",
    )
    yield make(
        T["love"],
        [
            ("@@m\\Kendrick Lamar - LOVESICK.mp3", 213),
            ("@@m2\\Kendrick Lamar\\DAMN\\09 - LUST.flac", 307),
            ("@@m3\\Kendrick Lamar - Love Song (feat. Zacari) (Demo).mp3", 213),
        ],
        "'LOVE.' is not 'LOVESICK', not 'LUST', and not a demo of 'Love Song'",
    )
    yield make(
        T["arrival"],
        [("@@n\\ABBA\\Arrival\\02 - Dancing Queen.flac", 230), ("@@n2\\ABBA - Arrival in Ashford.mp3", 180)],
        "'Arrival' is the album of another song, and 'Arrival in Ashford' is another title",
    )
    yield make(
        T["brick2"],
        [
            ("@@o\\Pink Floyd\\The Wall\\CD1\\03 - Another Brick in the Wall, Part 1.flac", 239),
            ("@@o2\\Pink Floyd - Another Brick in the Wall (Part 3).mp3", 239),
        ],
        "Parts 1 and 3 with the length of Part 2: numbers are identity",
    )
    yield make(
        T["hurtnin"],
        [("@@p\\Johnny Cash\\American IV\\02 - Hurt.flac", 373), ("@@p2\\Leona Lewis - Hurt.mp3", 373)],
        "same title and same length, other acts",
    )
    yield make(
        T["teenspirit"],
        [
            ("@@q\\Nirvana - Smells Like Teen Spirit.mp3", 29),
            ("@@q2\\Nirvana - Smells Like Teen Spirit.flac", 150),
        ],
        "a preview and a half file",
    )
    yield make(
        T["hello"],
        [
            ("@@r\\Adele - Hello (Karaoke Version).mp3", 295),
            ("@@r2\\Adele - Hello (Instrumental).mp3", 295),
            ("@@r3\\Adele - Hello (Piano Version).mp3", 295),
        ],
        "three versions of the same length",
    )
    yield make(
        T["africa"],
        [
            ("@@s\\Karaoke Kings\\Toto Hits\\Africa (In the Style of Toto).mp3", 295),
            ("@@s2\\Weezer\\Teal Album\\02 - Africa.flac", 191),
        ],
        "a karaoke and a cover",
    )
    yield make(
        T["dreams"],
        [
            ("@@t\\Fleetwood Mac\\Rumours Live\\02 - Dreams.flac", 257),
            ("@@t2\\Fleetwood Mac\\Rumours (Super Deluxe)\\Dreams (Take 2).mp3", 257),
        ],
        "a live album folder and an alternate take",
    )
    yield make(
        T["halo"],
        [("@@u\\Beyoncé - Halo (slowed + reverb).mp3", 261), ("@@u2\\Beyonce - Halo (Sped Up).mp3", 261)],
        "slowed and sped-up edits labelled with the original length",
    )
    yield make(
        T["sweetchild"],
        [
            ("@@v\\Guns N' Roses - Sweet Child O' Mine (Radio Edit).mp3", 356),
            ("@@v2\\Guns N' Roses - Sweet Child O' Mine (Extended).mp3", 356),
        ],
        "edits marked in the name even when the length fits",
    )
    n += 1
    yield Case(
        f"nothing_acceptable-{n:03d}",
        "nothing_acceptable",
        T["purplerain"].wanted(),
        [],
        [],
        "no responses at all",
    )
    b = Builder(f"nothing_acceptable-{n + 1:03d}")
    b.add([])
    b.add([], locked=[flac("@@w\\Prince\\Purple Rain\\09 Purple Rain.flac", 521, b.r)])
    yield b.case("nothing_acceptable", T["purplerain"], "responses with no files, or only locked ones")
    n += 1
    yield make(
        T["creep"],
        [("@@x\\TLC\\CrazySexyCool\\Creep.flac", 238), ("@@x2\\Radiohead\\Misc\\TLC - Creep.mp3", 238)],
        "another act's song, one copy filed under the wanted artist's folder",
    )


@category
def title_identity() -> Iterator[Case]:
    """Title containment is not similarity, and numbers are identity."""
    cases = [
        (T["brick2"], [("@@a\\Pink Floyd - Another Brick in the Wall (Part II).flac", True),
                       ("@@b\\Pink Floyd - Another Brick in the Wall, Pt. 1.mp3", False),
                       ("@@c\\Pink Floyd\\The Wall\\Disc 1\\05. Another Brick In The Wall, Part 2.mp3", True)],
         "'Pt. 2' written 'Part II' and 'Part 2'; 'Pt. 1' is another track"),
        (T["karma"], [("@@d\\Radiohead - Karma.mp3", False), ("@@e\\Radiohead\\OK Computer\\06 Karma Police.flac", True)],
         "'Karma' is not 'Karma Police'"),
        (T["creep"], [("@@f\\Radiohead - Creep (Acoustic).mp3", False), ("@@g\\Radiohead - Creeping Up.mp3", False),
                      ("@@h\\Radiohead - Pablo Honey (1993)\\02. Radiohead - Creep.flac", True)],
         "'Creep' beside 'Creeping Up' and an acoustic take"),
        (T["intro"], [("@@i\\The xx - Intro (Kygo Remix).mp3", False), ("@@j\\The xx\\xx\\01 Intro.flac", True),
                      ("@@k\\The xx - Intro (Reprise).mp3", False)], "a one-word title with a remix and a reprise"),
        (T["1979"], [("@@l\\The Smashing Pumpkins - 1979 (Vocal Mix).mp3", False),
                     ("@@m\\Smashing Pumpkins\\Mellon Collie and the Infinite Sadness\\CD2\\05 - 1979.flac", True)],
         "a title that is a year"),
        (T["hello"], [("@@n\\Adele - Hello (Live at the Church Studios).mp3", False), ("@@o\\Adele - Hello Lover.mp3", False),
                      ("@@p\\Adele\\25\\01 Hello.flac", True)], "'Hello' is not 'Hello Lover'"),
        (T["heroes"], [("@@q\\David Bowie - Heroes (German Version).mp3", False),
                       ("@@r\\David Bowie\\Heroes (2017 Remaster)\\03 - Heroes.flac", True),
                       ("@@s\\David Bowie - Heroes (Single Version).mp3", False)],
         "the German version and the single edit of a title in quotes"),
        (T["seven"], [("@@t\\The White Stripes - Seven Nation Army (The Glitch Mob Remix).mp3", False),
                      ("@@u\\The White Stripes - Seven Nation Army.mp3", True)], "a remix beside the original"),
        (T["dancingqueen"], [("@@v\\ABBA - Dancing Queen (Abbacadabra Version).mp3", False),
                             ("@@w\\ABBA\\Arrival\\02 Dancing Queen.flac", True)], "another act's subtitle in brackets"),
        (T["starman"], [("@@x\\David Bowie\\Ziggy Stardust\\04 Starman.flac", True),
                        ("@@y\\David Bowie - Starman (Top of the Pops 1972).mp3", False)],
         "a TV performance named in brackets"),
        (T["mrbrightside"], [("@@z\\The Killers - Mr Brightside.mp3", True), ("@@z2\\The Killers - Mr. Brightside (Demo).mp3", False),
                             ("@@z3\\The Killers - Mr. Brightside Reprise.mp3", False)], "'Mr.' with and without the dot"),
        (T["sabotage"], [("@@sa\\Beastie Boys - Sabotage 2.mp3", False), ("@@sb\\Beastie Boys\\Ill Communication\\13 Sabotage.flac", True)],
         "a number after the title is another track"),
        (T["wuTang"], [("@@wa\\Wu-Tang Clan - C.R.E.A.M. (Cash Rules Everything Around Me).mp3", True),
                       ("@@wb\\Wu-Tang Clan - C.R.E.A.M. Part 2.mp3", False)], "an acronym with its expansion"),
        (T["somebody"], [("@@so\\Gotye - Somebody That I Used to Know (feat. Kimbra).mp3", True),
                         ("@@sp\\Gotye - Somebody That I Used to Know (Tiësto Remix).mp3", False),
                         ("@@sq\\Walk off the Earth - Somebody That I Used to Know.mp3", False)],
         "a feat. credit the wanted title lacks; a remix; a cover by another act"),
        (Track("Bad Company", "Bad Company", "Bad Company", 1974, 3, 290),
         [("@@bc\\Bad Company\\Bad Company (1974)\\03 - Bad Company.flac", True), ("@@bd\\Bad Company - Bad Company.mp3", True),
          ("@@be\\Bad Company\\Straight Shooter\\Bad Company - Shooting Star.mp3", False),
          ("@@bf\\Bad Company - Bad Company (Live at Wembley).mp3", False)],
         "a song named like its act: the act's other songs are not it"),
        (Track("Iron Maiden", "Iron Maiden", "Iron Maiden", 1980, 8, 215),
         [("@@im\\Iron Maiden - Running Free.mp3", False), ("@@in\\Iron Maiden - Iron Maiden (Live After Death).mp3", False)],
         "a song named like its act, shared only as another song and a live take"),
        (T["cohen"], [("@@lc\\Jeff Buckley - Hallelujah (Leonard Cohen).mp3", False),
                      ("@@ld\\Leonard Cohen\\Various Positions\\05 Hallelujah.flac", True)],
         "a cover credited to the song's writer: its length gives it away"),
        (Track("Kenny Loggins", "Danger Zone", "Top Gun - Motion Picture Soundtrack", 1986, 1, 215),
         [("@@tg\\Kenny Loggins - Danger Zone (From the Motion Picture Top Gun).mp3", True),
          ("@@th\\Kenny Loggins - Danger Zone (Extended Version).mp3", False),
          ("@@ti\\Top Gun OST (1986)\\01 - Kenny Loggins - Danger Zone.flac", True)],
         "a soundtrack subtitle in brackets is not another version"),
        (T["rollingdeep"], [("@@ra\\Adele - Rolling in the Deep.mp3", True), ("@@rb\\Adele - Rolling.mp3", False),
                            ("@@rc\\Adele - Rolling in the Deep (Jamie xx Shuffle).mp3", False)],
         "a shortened title and a named rework"),
    ]  # fmt: skip
    for n, (t, files, why) in enumerate(cases, 1):
        b = Builder(f"title_identity-{n:03d}")
        for path, ok in files:
            secs = (
                t.secs if ok or "Demo" in path or "Version)" in path else t.secs + b.r.choice((0, 0, 12, -20))
            )
            secs = {"Jeff Buckley": 413, "Running Free": 196}.get(
                next((k for k in ("Jeff Buckley", "Running Free") if k in path), ""), secs
            )
            if "Single Version" in path:
                secs = 212
            f = flac(path, secs, b.r) if path.endswith(".flac") else mp3(path, secs, b.r)
            b.add([f], good=ok, slot=not ok, queue=0 if not ok else 5)
        yield b.case("title_identity", t, why)


def main() -> None:
    ids: set[str] = set()
    total = 0
    for name, build in CATEGORIES.items():
        cases = [c.json() for c in build()]
        for c in cases:
            assert c["id"] not in ids, c["id"]
            ids.add(c["id"])
        with open(HERE / f"{name}.json", "w", encoding="utf-8") as out:
            json.dump(cases, out, ensure_ascii=False, indent=1)
            out.write("\n")
        total += len(cases)
        print(f"{name}: {len(cases)}")
    print(f"total: {total}")


if __name__ == "__main__":
    main()
