"""A seeded, fictional music catalogue for the fake Spotify and the fake Soulseek peers.

Pure data, no I/O. `build(seed, today)` returns the same catalogue for the same arguments:
- 20 main artists (non-ASCII names, one with "/", one with ":", one whose albums carry bracketed
  editions) with albums, singles, EPs (album_type "single"), own compilations and appearances on
  Various Artists compilations (whose tracks reuse the original ISRCs under new ids, as on Spotify);
- at least one multi-disc album; release dates with year, month and day precision;
- future releases dated after `today`, which the fake Spotify hides until its clock reaches them;
- a long tail of minor artists that fills a 5,200-track playlist, the user's playlists
  (owned, collaborative, followed-only, empty, Spotify's own with an id starting `37i9`) and
  saved tracks;
- market duplicates: two releases of one artist listed again under other ids for other markets,
  as Spotify lists a release once per set of markets when no market is given;
- a playlist of odd entries: podcast episodes, a removed (null) entry, a legacy-shaped entry,
  entries with no `added_at`, a local file with artist and album names.

Everything after the first playlists comes from its own random stream, so the older data (and
the fake peers' shares, built from it) stays the same for a seed.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
USER_ID = "harmonylistener"
VARIOUS_ARTISTS_ID = "0LyfQWJT6nXafLPZqxe9Of"  # Spotify's real "Various Artists" id
BIG_PLAYLIST_SIZE = 5200
SPOTIFY_USER_ID = "spotify"
EDITORIAL_PREFIX = "37i9dQZF1"  # Spotify's own playlists have ids like 37i9dQZF1DXcBWIGoYBM5M
MARKETS = ("US", "GB", "SE", "DE", "FR", "JP")
DUPLICATED_ARTIST = "Halcyon Rooms"
ODD_PLAYLIST = "Odds and Ends"

MAIN_ARTISTS = (
    "Aurora Vale",
    "Mørkeskog",
    "Éléonore Vasquez",
    "Sigrún Hólm",
    "Los Años Luz",
    "Ночной Город",
    "夜光 Yakō",
    "Lo/Fi Saints",
    "Mx: Orbit",
    "The Velvet Hours",
    "Dr. Quasar & the Tides",
    "Kite Theory",
    "Björn Ekwall",
    "Saffron Drift",
    "Nova Ashgrove",
    "The Paper Lanterns",
    "Ciudad Perdida",
    "Halcyon Rooms",
    "Orla Mac Giolla",
    "Zeta Reticuli Band",
)
BRACKETED_ARTIST = "The Velvet Hours"
GENRES = ("indie pop", "dream pop", "post-rock", "synthwave", "folk", "electronica", "shoegaze", "jazz")

_ADJECTIVES = (
    "Silver", "Quiet", "Electric", "Golden", "Hollow", "Paper", "Velvet", "Northern", "Broken", "Distant",
    "Crimson", "Secret", "Last", "Endless", "Frozen", "Wild", "Gentle", "Neon", "Lonely", "Bright",
)  # fmt: skip
_NOUNS = (
    "Morning", "River", "Lights", "Harbour", "Garden", "Signal", "Heart", "Window", "Tide", "Summer",
    "Machine", "Echo", "Forest", "Letters", "Horizon", "Comet", "Station", "Mirror", "Season", "Parade",
)  # fmt: skip
_SINGLE_WORDS = (
    "Home", "Gravity", "Sunday", "Café Noir", "Señales", "Nightfall", "Lanterns", "Overture", "Ørken",
)  # fmt: skip
_ISRC_COUNTRIES = ("GB", "US", "SE", "FR", "DE", "NO", "JP", "ES", "IS", "IE")


@dataclass(frozen=True)
class Artist:
    id: str
    name: str
    genres: tuple[str, ...] = ()
    main: bool = False


@dataclass(frozen=True)
class Track:
    """A recording on one album. `artist_ids[0]` is the primary artist."""

    id: str
    name: str
    artist_ids: tuple[str, ...]
    album_id: str
    duration_ms: int
    track_number: int
    disc_number: int
    isrc: str
    explicit: bool = False


@dataclass
class Album:
    """`release_date` is "YYYY", "YYYY-MM" or "YYYY-MM-DD" as `release_date_precision` says."""

    id: str
    name: str
    album_type: str  # album | single | compilation
    artist_ids: tuple[str, ...]
    release_date: str
    release_date_precision: str
    upc: str
    label: str
    track_ids: list[str] = field(default_factory=list)
    future: bool = False
    markets: tuple[str, ...] = ()  # where it is available; () means everywhere
    duplicate_of: str | None = None  # the release this one repeats for other markets

    def available_in(self, market: str | None) -> bool:
        return market is None or not self.markets or market in self.markets

    @property
    def released_on(self) -> dt.date:
        """The first day the release date could mean (1 January for a bare year)."""
        parts = [int(p) for p in self.release_date.split("-")] + [1, 1]
        return dt.date(parts[0], parts[1], parts[2])


@dataclass
class PlaylistEntry:
    """One playlist row. `kind` is `track` (`track_id`), `local` (a local file: `local_name`,
    `local_artist`, `local_album`), `episode` (a podcast episode named `local_name`), `null` (an
    entry whose item Spotify no longer has) or `legacy` (a track shaped as before 2026: `track`
    and no `item`). `added_at` and `added_by` are None on very old playlists."""

    track_id: str | None
    added_at: str | None
    added_by: str | None
    local_name: str = ""
    kind: str = "track"
    local_artist: str = ""
    local_album: str = ""


@dataclass
class Playlist:
    id: str
    name: str
    description: str
    owner_id: str
    owner_name: str
    public: bool
    collaborative: bool
    entries: list[PlaylistEntry]
    version: int = 1

    @property
    def snapshot_id(self) -> str:
        """Opaque, and different after every edit (`version` is bumped by edits)."""
        return f"{self.version:08x}{self.id}"[:32]


@dataclass
class Catalogue:
    seed: int
    today: dt.date
    artists: dict[str, Artist]
    albums: dict[str, Album]
    tracks: dict[str, Track]
    playlists: dict[str, Playlist]
    followed: list[str]  # artist ids the user follows, in follow order
    saved: list[tuple[str, str]]  # (track id, added_at), newest first
    main_artist_ids: list[str]

    def artist_by_name(self, name: str) -> Artist:
        return next(a for a in self.artists.values() if a.name == name)

    def artist_albums(self, artist_id: str) -> list[tuple[Album, str]]:
        """(album, album_group) pairs for an artist, newest first, including appearances."""
        out = []
        for album in self.albums.values():
            if artist_id in album.artist_ids:
                out.append((album, album.album_type))
            elif album.album_type == "compilation" and any(
                artist_id in self.tracks[t].artist_ids for t in album.track_ids
            ):
                out.append((album, "appears_on"))
        out.sort(key=lambda pair: (pair[0].released_on, pair[0].id), reverse=True)
        return out

    def album_tracks(self, album: Album) -> list[Track]:
        return [self.tracks[t] for t in album.track_ids]


def build(seed: int = 1, today: dt.date | None = None) -> Catalogue:
    """Build the catalogue; deterministic for (`seed`, `today`). `today` dates the future releases."""
    return _Builder(seed, today or dt.date(2026, 6, 1)).run()


def spotify_id(rng: random.Random) -> str:
    """A random 22-character base-62 id, like Spotify's."""
    n = rng.getrandbits(131)
    chars = []
    for _ in range(22):
        n, r = divmod(n, 62)
        chars.append(BASE62[r])
    return "".join(chars)


class _Builder:
    def __init__(self, seed: int, today: dt.date) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        self.today = today
        self.artists: dict[str, Artist] = {}
        self.albums: dict[str, Album] = {}
        self.tracks: dict[str, Track] = {}
        self.isrc_serial = 0
        self.used_titles: set[str] = set()

    def run(self) -> Catalogue:
        rng = self.rng
        self.artists[VARIOUS_ARTISTS_ID] = Artist(VARIOUS_ARTISTS_ID, "Various Artists")
        main = [self._artist(name, main=True) for name in MAIN_ARTISTS]
        for index, artist in enumerate(main):
            self._discography(artist, index)
        self._compilations(main)
        self._future_releases(main)
        tail = [self._artist(self._tail_name(i)) for i in range(130)]
        for artist in tail:
            for _ in range(2):
                year = rng.randint(2000, 2024)
                self._album(
                    artist, "album", self._title(), (year, rng.randint(1, 12), rng.randint(1, 28)), 20
                )
        catalogue = Catalogue(
            seed=self.seed,
            today=self.today,
            artists=self.artists,
            albums=self.albums,
            tracks=self.tracks,
            playlists={},
            followed=[a.id for a in main[:14]],
            saved=[],
            main_artist_ids=[a.id for a in main],
        )
        self._library(catalogue, main, tail)
        extra = _Builder(self.seed * 7331 + 11, self.today)  # a separate stream: the data above stays
        extra.artists, extra.albums, extra.tracks = self.artists, self.albums, self.tracks
        extra.isrc_serial = self.isrc_serial
        extra._market_duplicates(catalogue)
        extra._odd_playlist(catalogue)
        return catalogue

    # -- artists and releases -------------------------------------------------------------------

    def _artist(self, name: str, *, main: bool = False) -> Artist:
        genres = tuple(self.rng.sample(GENRES, 2)) if main else (self.rng.choice(GENRES),)
        artist = Artist(spotify_id(self.rng), name, genres, main)
        self.artists[artist.id] = artist
        return artist

    def _tail_name(self, i: int) -> str:
        return f"{_ADJECTIVES[i % 20]} {_NOUNS[(i * 7) % 20]}{'' if i < 20 else f' {i // 20 + 1}'}"

    def _discography(self, artist: Artist, index: int) -> None:
        rng = self.rng
        first_year = rng.randint(1996, 2012)
        years = sorted(rng.sample(range(first_year, 2026), 6))
        for n in range(rng.randint(2, 4)):
            year = years[n]
            # Older albums carry coarser dates, as on Spotify.
            date = (year,) if year < 2003 else (year, rng.randint(1, 12)) if n % 2 else self._day(year)
            title = self._title()
            discs = 2 if (index == 3 and n == 0) else 1
            album = self._album(artist, "album", title, date, rng.randint(8, 13), discs=discs)
            if artist.name == BRACKETED_ARTIST:
                deluxe = self._album(
                    artist, "album", f"{title} (Deluxe Edition)", self._day(year + 1), 0, discs=2
                )
                # The deluxe edition repeats the album as disc 1 (same ISRCs) and adds a bonus disc.
                self._copy_tracks(album, deluxe, disc=1)
                self._add_tracks(deluxe, artist, rng.randint(4, 6), disc=2, suffix=" - Demo")
        for _ in range(rng.randint(1, 3)):
            self._album(
                artist, "single", self._title(single=True), self._day(rng.choice(years)), rng.randint(1, 2)
            )
        self._album(artist, "single", f"{self._title()} EP", self._day(rng.choice(years)), rng.randint(4, 6))
        if index % 4 == 0:
            hits = self._album(artist, "compilation", "Greatest Hits", self._day(2024), 0)
            sources = [t for a in self.albums.values() if a.artist_ids == (artist.id,) for t in a.track_ids]
            for track_id in sources[:: max(1, len(sources) // 10)][:10]:
                self._copy_track(self.tracks[track_id], hits)
        if artist.name == BRACKETED_ARTIST:
            self._album(artist, "album", "Live at the Roundhouse [Live]", self._day(2019), 9)

    def _compilations(self, main: list[Artist]) -> None:
        various = self.artists[VARIOUS_ARTISTS_ID]
        for n, name in enumerate(("Summer Sessions 2019", "Nordic Nights", "Indie Anthems, Vol. 3")):
            comp = self._album(various, "compilation", name, self._day(2019 + n), 0)
            for artist in self.rng.sample(main, 8):
                own = [t for a in self.albums.values() if a.artist_ids == (artist.id,) for t in a.track_ids]
                self._copy_track(self.tracks[self.rng.choice(own)], comp)

    def _future_releases(self, main: list[Artist]) -> None:
        for days, kind, count in ((1, "single", 1), (3, "album", 10), (10, "single", 5), (40, "album", 11)):
            artist = main[(days * 3) % len(main)]
            date = self.today + dt.timedelta(days=days)
            title = self._title(single=kind == "single") + (" EP" if count == 5 else "")
            album = self._album(artist, kind, title, (date.year, date.month, date.day), count)
            album.future = True

    def _day(self, year: int) -> tuple[int, int, int]:
        return (year, self.rng.randint(1, 12), self.rng.randint(1, 28))

    def _album(
        self, artist: Artist, kind: str, name: str, date: tuple[int, ...], count: int, *, discs: int = 1
    ) -> Album:
        rng = self.rng
        precision = ("year", "month", "day")[len(date) - 1]
        album = Album(
            id=spotify_id(rng),
            name=name,
            album_type=kind,
            artist_ids=(artist.id,),
            release_date="-".join(f"{p:04d}" if i == 0 else f"{p:02d}" for i, p in enumerate(date)),
            release_date_precision=precision,
            upc=f"{rng.randrange(10**11, 10**12)}{rng.randrange(10)}",
            label=f"{rng.choice(_NOUNS)} Records",
        )
        self.albums[album.id] = album
        per_disc = -(-count // discs) if count else 0
        for disc in range(1, discs + 1):
            self._add_tracks(album, artist, min(per_disc, count - per_disc * (disc - 1)), disc=disc)
        return album

    def _add_tracks(self, album: Album, artist: Artist, count: int, *, disc: int, suffix: str = "") -> None:
        rng = self.rng
        year = album.released_on.year
        for number in range(1, count + 1):
            title = album.name if album.album_type == "single" and count == 1 else self._title(single=True)
            artist_ids: tuple[str, ...] = (artist.id,)
            if rng.random() < 0.08:
                guests = [a for a in self.artists.values() if a.main and a.id != artist.id]
                guest = rng.choice(guests) if guests else artist
                if guest.id != artist.id:
                    artist_ids = (artist.id, guest.id)
                    title = f"{title} (feat. {guest.name})"
            self.isrc_serial += 1
            isrc = f"{rng.choice(_ISRC_COUNTRIES)}{rng.choice('ABCDEFGHJK')}{rng.randrange(10, 99)}"
            isrc += f"{year % 100:02d}{self.isrc_serial:05d}"
            track = Track(
                id=spotify_id(rng),
                name=title + suffix,
                artist_ids=artist_ids,
                album_id=album.id,
                duration_ms=rng.randint(95_000, 420_000),
                track_number=number,
                disc_number=disc,
                isrc=isrc,
                explicit=rng.random() < 0.1,
            )
            self.tracks[track.id] = track
            album.track_ids.append(track.id)

    def _copy_tracks(self, source: Album, target: Album, *, disc: int) -> None:
        for track_id in source.track_ids:
            self._copy_track(self.tracks[track_id], target, disc=disc)

    def _copy_track(self, track: Track, album: Album, *, disc: int = 1) -> None:
        """Put a recording on another album: new id, same ISRC, as Spotify relinks re-releases."""
        number = sum(1 for t in album.track_ids if self.tracks[t].disc_number == disc) + 1
        copy = Track(
            id=spotify_id(self.rng),
            name=track.name,
            artist_ids=track.artist_ids,
            album_id=album.id,
            duration_ms=track.duration_ms,
            track_number=number,
            disc_number=disc,
            isrc=track.isrc,
            explicit=track.explicit,
        )
        self.tracks[copy.id] = copy
        album.track_ids.append(copy.id)

    def _title(self, *, single: bool = False) -> str:
        rng = self.rng
        for _ in range(50):
            roll = rng.random()
            if roll < 0.15:
                title = rng.choice(_SINGLE_WORDS)
            elif roll < 0.3:
                title = f"{rng.choice(_NOUNS)} of {rng.choice(_NOUNS).rstrip('s')}s"
            else:
                title = f"{rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)}"
            # Repeated titles across artists are realistic (and a matching trap), within one are not.
            if single or title not in self.used_titles:
                self.used_titles.add(title)
                return title
        return title

    # -- the user's library ---------------------------------------------------------------------

    def _library(self, catalogue: Catalogue, main: list[Artist], tail: list[Artist]) -> None:
        rng = self.rng
        main_ids = {a.id for a in main}
        past = [
            t.id
            for t in self.tracks.values()
            if t.artist_ids[0] in main_ids and not self.albums[t.album_id].future
        ]
        tail_ids = {a.id for a in tail}
        tail_tracks = [t.id for t in self.tracks.values() if t.artist_ids[0] in tail_ids]

        def entries(track_ids: list[str], added_by: str = USER_ID) -> list[PlaylistEntry]:
            return [PlaylistEntry(t, self._stamp(i), added_by) for i, t in enumerate(track_ids)]

        morning = entries(rng.sample(past, 34))
        demo = PlaylistEntry(
            None, self._stamp(40), USER_ID, "my demo take.mp3", "local", "Me", "Garage Demos"
        )
        morning.insert(7, demo)
        everything = rng.sample(tail_tracks, len(tail_tracks))[: BIG_PLAYLIST_SIZE - 100]
        everything += rng.sample(past, 100)
        me = "Harmony Listener"
        playlists = [
            ("Morning Rotation", "Songs for slow starts.", USER_ID, me, True, False, morning),
            ("Everything Ever", "", USER_ID, me, False, False, entries(everything)),
            ("Nothing Yet", "", USER_ID, me, False, False, []),
            (
                "Road Trip (shared)",
                "",
                "roadfriend",
                "Road Friend",
                False,
                True,
                entries(rng.sample(past, 25)),
            ),
            (
                "Editorial Picks",
                "Chosen by the editors.",
                SPOTIFY_USER_ID,
                "Spotify",
                True,
                False,
                entries(past[:30]),
            ),
        ]
        for name, description, owner, owner_name, public, collab, rows in playlists:
            playlist_id = spotify_id(rng)
            if owner == SPOTIFY_USER_ID:
                playlist_id = EDITORIAL_PREFIX + playlist_id[len(EDITORIAL_PREFIX) :]
            playlist = Playlist(playlist_id, name, description, owner, owner_name, public, collab, rows)
            catalogue.playlists[playlist.id] = playlist
        saved = rng.sample(past, 80)
        catalogue.saved = [(t, self._stamp(1000 - i)) for i, t in enumerate(saved)]

    def _market_duplicates(self, catalogue: Catalogue) -> None:
        """Two albums of one artist also listed under new ids for another market (Japan)."""
        artist = catalogue.artist_by_name(DUPLICATED_ARTIST)
        originals = [
            a for a in self.albums.values() if a.artist_ids == (artist.id,) and a.album_type == "album"
        ]
        for original in originals[:2]:
            original.markets = tuple(m for m in MARKETS if m != "JP")
            copy = Album(
                id=spotify_id(self.rng),
                name=original.name,
                album_type=original.album_type,
                artist_ids=original.artist_ids,
                release_date=original.release_date,
                release_date_precision=original.release_date_precision,
                upc=original.upc,
                label=original.label,
                markets=("JP",),
                duplicate_of=original.id,
            )
            self.albums[copy.id] = copy
            for track_id in original.track_ids:
                self._copy_track(self.tracks[track_id], copy, disc=self.tracks[track_id].disc_number)

    def _odd_playlist(self, catalogue: Catalogue) -> None:
        """A playlist of the entries a client must not choke on (see `PlaylistEntry`)."""
        tracks = [t.id for t in self.tracks.values() if not self.albums[t.album_id].future]
        picks = self.rng.sample(tracks, 4)
        rows = [
            PlaylistEntry(picks[0], self._stamp(1), USER_ID),
            PlaylistEntry(None, self._stamp(2), USER_ID, "Episode 12: The Long Night", "episode"),
            PlaylistEntry(None, self._stamp(3), USER_ID, kind="null"),
            PlaylistEntry(picks[1], self._stamp(4), USER_ID, kind="legacy"),
            PlaylistEntry(picks[2], None, None),
            PlaylistEntry(None, self._stamp(5), USER_ID, "basement jam.flac", "local", "Home Band", "Tapes"),
            PlaylistEntry(picks[3], self._stamp(6), USER_ID),
        ]
        playlist = Playlist(
            spotify_id(self.rng), ODD_PLAYLIST, "", USER_ID, "Harmony Listener", False, False, rows
        )
        catalogue.playlists[playlist.id] = playlist

    def _stamp(self, n: int) -> str:
        offset = dt.timedelta(hours=7 * n, seconds=self.rng.randrange(3600))
        moment = dt.datetime(2024, 1, 1, tzinfo=dt.UTC) + offset
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
