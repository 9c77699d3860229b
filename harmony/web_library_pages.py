"""The library's pages: album artists, albums with their cover art, tracks, search, the scan and
backfill.

GET    /ui/library                    ?q=&cursor=                   album artists; the scan; backfill runs
GET    /ui/library/albums             ?q=&artist=&cursor=           albums, with their covers
GET    /ui/library/tracks             ?q=&artist=&album=&cursor=    files
GET    /ui/library/cover              ?artist=&album=               an album's cover image
POST   /ui/library/scan               start a library scan
POST   /ui/library/backfill           start a backfill run (form: write_tags, retry_unmatched)

The library's JSON API is `web_library.py` (and backfill's `web_backfill.py`); these pages call
the same functions: `library.list_artists`, `list_albums` and `list_tracks`, `Library.start` and
`current`, `Backfiller.start` and `backfill.list_runs`. They are a module of their own only
because the API modules are another engineer's while they are being finished.

A cover is the album folder's `cover.jpg` (what the import writes), else the picture embedded
in the album's first file, else a neutral placeholder; either way it is read only from a path
inside the library root (`importer.library_file`, and the real path after links), sniffed as
JPEG or PNG, and sent with an ETag so the browser asks again cheaply.
"""

from __future__ import annotations

import os
import posixpath
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import bottle
from bottle import HTTPResponse, request

from . import backfill, library
from .errors import BadInput
from .importer import library_file
from .tags import BadCover, cover_art, read_tags
from .web_base import (
    DEFAULT_PAGE,
    STATIC_DIR,
    action,
    encode_cursor,
    form_text,
    page_params,
    render,
    str_param,
)

if TYPE_CHECKING:
    from .context import Context

COVER_FILE = "cover.jpg"  # the name the import gives an album's cover
COVER_LIMIT = 16 * 1024 * 1024  # a cover.jpg larger than this is not read: the placeholder shows
MAX_NAME = 500  # album artists and albums come from tags, so they may be long
RUNS_SHOWN = 5  # backfill runs on the library page
COVER_CACHE = "private, max-age=3600"  # an ETag makes asking again cheap
PLACEHOLDER = os.path.join(STATIC_DIR, "cover.svg")
VIEWS = (("artists", "/ui/library", "Artists"), ("albums", "/ui/library/albums", "Albums"),
         ("tracks", "/ui/library/tracks", "Tracks"))  # fmt: skip


def link(path: str, **values: str | None) -> str:
    """`path` with these query values; unlike `web_base.url`, an empty name is kept (files
    without an album tag make an album named ""), only None is left out."""
    query = urlencode({name: value for name, value in values.items() if value is not None})
    return f"{path}?{query}" if query else path


def cover_url(album_artist: str, album: str) -> str:
    return link("/ui/library/cover", artist=album_artist, album=album)


def name_param(name: str) -> str | None:
    """An album artist or album from the query: None when absent, else the text as sent (an empty
    album is a real album: files without an album tag)."""
    if name not in request.query:
        return None
    raw = request.query.getunicode(name)
    if raw is None or len(raw) > MAX_NAME or not raw.isprintable():
        raise BadInput(
            f"query parameter {name} must be at most {MAX_NAME} printable characters", parameter=name
        )
    return raw


def inside(root: str, relative: str) -> str | None:
    """The real path of `relative` under the library `root`, or None if it is not there or lies
    outside the root (by its name, or through a link)."""
    try:
        path = library_file(root, relative)
    except ValueError:
        return None
    real_root, real = os.path.realpath(root), os.path.realpath(path)
    if real == real_root or os.path.commonpath([real_root, real]) != real_root:
        return None
    return real


def register(app: bottle.Bottle, ctx: Context) -> None:
    db, shelf = ctx.db, ctx.library

    def scan_view() -> dict[str, Any] | None:
        scan = shelf.current()
        return scan.to_dict(shelf.clock()) if scan else None

    def view(name: str, **values: Any) -> str:
        return render(
            f"library_{name}" if name != "artists" else "library",
            title={"artists": "Library", "albums": "Albums", "tracks": "Tracks"}[name],
            section="library",
            view=name,
            views=VIEWS,
            cover_url=cover_url,
            link=link,
            **values,
        )

    def artists_page() -> str:
        limit, after = page_params((str,))
        q = str_param("q", 200)
        rows = library.list_artists(db, after=after, limit=limit + 1, q=q)
        more = len(rows) > limit
        rows = rows[:limit]
        config = ctx.config
        scan = scan_view()
        runs = backfill.list_runs(db, limit=RUNS_SHOWN)
        return view(
            "artists",
            rows=rows,
            q=q,
            artist=None,
            album=None,
            indexed=library.count_tracks(db),
            scan=scan,
            library_dir=config.library_dir,
            runs=runs,
            backfill_running=any(run.state == "running" for run in runs),
            spotify_configured=ctx.spotify.configured,
            write_tags_default=bool(config["backfill.write_tags"]),
            params={"q": q, "limit": limit if limit != DEFAULT_PAGE else None},
            next_cursor=encode_cursor((rows[-1]["name"],)) if more and rows else None,
            paged=after is not None,
        )

    def albums_page() -> str:
        limit, after = page_params((str, str))
        q, artist = str_param("q", 200), name_param("artist")
        rows = library.list_albums(db, after=after, limit=limit + 1, q=q, artist=artist)
        more = len(rows) > limit
        rows = rows[:limit]
        return view(
            "albums",
            rows=rows,
            q=q,
            artist=artist,
            album=None,
            params={"q": q, "artist": artist, "limit": limit if limit != DEFAULT_PAGE else None},
            next_cursor=encode_cursor((rows[-1]["album_artist"], rows[-1]["album"]))
            if more and rows
            else None,
            paged=after is not None,
        )

    def tracks_page() -> str:
        limit, after = page_params((str,))
        q, artist, album = str_param("q", 200), name_param("artist"), name_param("album")
        rows = library.list_tracks(db, after=after, limit=limit + 1, q=q, artist=artist, album=album)
        more = len(rows) > limit
        rows = rows[:limit]
        return view(
            "tracks",
            rows=rows,
            q=q,
            artist=artist,
            album=album,
            params={
                "q": q,
                "artist": artist,
                "album": album,
                "limit": limit if limit != DEFAULT_PAGE else None,
            },
            next_cursor=encode_cursor((rows[-1].path,)) if more and rows else None,
            paged=after is not None,
        )

    def cover() -> HTTPResponse:
        artist, album = name_param("artist"), name_param("album")
        if artist is None or album is None:
            raise BadInput("query parameters artist and album are required", parameter="artist")
        first = library.list_tracks(db, artist=artist, album=album, limit=1)
        root = ctx.config.library_dir
        if first:
            folder = posixpath.dirname(first[0].path)
            for found in (
                image_file(root, posixpath.join(folder, COVER_FILE) if folder else COVER_FILE),
                embedded(root, first[0].path),
            ):
                if found is not None:
                    return image(*found)
        return placeholder()

    def image_file(root: str, relative: str) -> tuple[bytes, str, str] | None:
        path = inside(root, relative)
        if path is None:
            return None
        try:
            stat = os.stat(path)
            if not os.path.isfile(path) or stat.st_size > COVER_LIMIT:
                return None
            tag = f'"f{stat.st_size:x}-{stat.st_mtime_ns:x}"'
            if request.environ.get("HTTP_IF_NONE_MATCH") == tag:
                return b"", "", tag
            with open(path, "rb") as handle:
                art = cover_art(handle.read(COVER_LIMIT + 1), max_bytes=COVER_LIMIT)
        except (OSError, BadCover):
            return None
        return art.data, art.mime, tag

    def embedded(root: str, relative: str) -> tuple[bytes, str, str] | None:
        path = inside(root, relative)
        if path is None:
            return None
        try:
            stat = os.stat(path)
            tag = f'"e{stat.st_size:x}-{stat.st_mtime_ns:x}"'
            if request.environ.get("HTTP_IF_NONE_MATCH") == tag:
                return b"", "", tag
            art = read_tags(path).cover
        except Exception:  # an unreadable or damaged file has no cover to show; the scan reports it
            return None
        return (art.data, art.mime, tag) if art else None

    def image(data: bytes, mime: str, tag: str) -> HTTPResponse:
        headers = {"ETag": tag, "Cache-Control": COVER_CACHE, "X-Content-Type-Options": "nosniff"}
        if not mime:  # the browser's copy is current
            return HTTPResponse("", 304, **headers)
        return HTTPResponse(data, 200, **{**headers, "Content-Type": mime})

    def placeholder() -> HTTPResponse:
        with open(PLACEHOLDER, "rb") as handle:
            data = handle.read()
        # Not cached for long: the album's cover may arrive with its next import.
        headers = {"Content-Type": "image/svg+xml", "Cache-Control": "private, max-age=300"}
        return HTTPResponse(data, 200, **{**headers, "X-Content-Type-Options": "nosniff"})

    def scan_now() -> Any:
        def act() -> str:
            scan = shelf.start()
            return f"Library scan {scan.id} started; this page shows its progress."

        return action("/ui/library", act)

    def backfill_now() -> Any:
        def act() -> str:
            run = ctx.backfill.start(
                write_tags=bool(form_text("write_tags", 5)),
                retry_unmatched=bool(form_text("retry_unmatched", 5)),
            )
            return f"Backfill run {run.id} started: {run.total} track(s) without Spotify ids to look up."

        return action("/ui/library", act)

    app.route("/ui/library", "GET", artists_page, role="read")
    app.route("/ui/library/albums", "GET", albums_page, role="read")
    app.route("/ui/library/tracks", "GET", tracks_page, role="read")
    app.route("/ui/library/cover", "GET", cover, role="read")
    app.route("/ui/library/scan", "POST", scan_now, role="operator")
    app.route("/ui/library/backfill", "POST", backfill_now, role="operator")
