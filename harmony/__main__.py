"""The `harmony` command: `main(argv)` parses arguments and runs one subcommand.

Exit codes: 0 success, 1 a failure of the environment (a port in use, a full disk, an
unwritable directory: restarting may help once it is fixed), 2 bad configuration or usage
(restarting cannot help; the systemd unit does not restart on it). Every expected failure is
one line on stderr naming the cause and the fix, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import errno
import fcntl
import logging
import os
import resource
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from types import FrameType
from typing import Any, TextIO

import apsw

from . import __version__, auth, config, systemd, zipapp
from . import log as logsetup
from .context import Context, opened, prepare_data_dir
from .db import Database
from .errors import BadInput, ConfigError, HarmonyError
from .web_base import MAX_BODY, MAX_ID

log = logging.getLogger("harmony")

DEMO_DATA_DIR = "./demo-data"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="harmony", description="Harmony music acquisition service.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        config.add_flags(p)
        return p

    command("serve", "Run the service: web server and background work.")
    command("demo", f"Run against the built-in fake Spotify and slskd (data in {DEMO_DATA_DIR}).")
    command("migrate", "Create or upgrade the database, then exit.")
    command("check", "Validate the configuration, print it with sources, and exit.")
    backup = command("backup", "Copy the database to PATH with SQLite's online backup.")
    backup.add_argument("path", help="destination file")
    restore = command(
        "restore",
        "Replace the database by the backup at PATH (stop Harmony first); the current one is kept aside.",
    )
    restore.add_argument("path", help="the backup file")
    apikey = sub.add_parser("apikey", help="Manage API keys.")
    keys = apikey.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = keys.add_parser("create", help="Create a key and print it once.")
    create.add_argument("--name", required=True)
    create.add_argument("--role", choices=auth.ROLES, default="read")
    create.add_argument("--expires", metavar="WHEN", type=_expiry, help=EXPIRES_HELP)
    keys.add_parser("list", help="List keys (never the secrets).")
    rotate = keys.add_parser(
        "rotate", help="Create a key's successor (same name and role) and print it once."
    )
    rotate.add_argument("id", type=_key_id)
    rotate.add_argument(
        "--grace",
        metavar="DURATION",
        type=_duration,
        help="the old key stops working this long from now (0: at once); without it, when revoked",
    )
    rotate.add_argument("--expires", metavar="WHEN", type=_expiry, help=EXPIRES_HELP)
    revoke = keys.add_parser("revoke", help="Revoke a key by id.")
    revoke.add_argument("id", type=_key_id)
    for p in keys.choices.values():
        config.add_flags(p)
    command(
        "rank",
        "Rank slskd search responses for a wanted track, as the service does: JSON on stdin, JSON out.",
    )
    cfg = sub.add_parser("config", help="Print a sample configuration file or its reference.")
    cfg.add_argument("what", choices=("sample", "docs"))
    sub.add_parser("version", help="Print the version.")
    return parser


EXPIRES_HELP = (
    "when the key stops working: a time from now (90d, 12h) or a UTC date (2027-01-31, 2027-01-31T12:00)"
)


def _duration(text: str) -> float:
    try:
        return float(config.Duration()(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None


def _expiry(text: str) -> float:
    """A key's expiry from the command line, as Unix seconds: a duration from now or a UTC date."""
    try:
        return time.time() + float(config.Duration(1)(text))
    except ValueError:
        pass
    try:
        when = datetime.datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither a time from now (90d, 12h) nor a date (2027-01-31T12:00)"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return when.timestamp()


def _key_id(text: str) -> int:
    if not text.isascii() or not text.isdigit() or not 0 < int(text) <= MAX_ID:
        raise argparse.ArgumentTypeError(f"{text!r} is not a key id (a positive integer)")
    return int(text)


# SQLite's own errors at start-up or in a CLI command, as one line each.
_DATABASE_ERRORS: tuple[tuple[type[apsw.Error], str], ...] = (
    (apsw.FullError, "the disk holding the database is full; free some space"),
    (apsw.ReadOnlyError, "the database is read-only; check the permissions and mount of data.dir"),
    (apsw.BusyError, "the database is locked by another process; stop it or wait"),
    (apsw.CantOpenError, "the database file cannot be opened; check data.dir and its permissions"),
    (apsw.CorruptError, "the database file is damaged; restore a backup"),
    (apsw.NotADBError, "data.dir holds a file that is not a Harmony database; restore a backup"),
)


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run the CLI; return the exit code. `out` receives normal output (stdout by default)."""
    out = out or sys.stdout
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits on --help and on usage errors
        return int(exc.code or 0)
    if args.command == "version":
        print(f"harmony {__version__}", file=out)
        return 0
    if args.command == "config":
        print(config.sample() if args.what == "sample" else config.reference(), file=out)
        return 0
    try:
        cfg = config.from_args(args)
        if args.command == "demo":  # a terminal session: readable logs, data beside the checkout
            defaults = {"data.dir": DEMO_DATA_DIR, "log.format": "text"}
            cfg = cfg.replace({k: v for k, v in defaults.items() if cfg.source(k) == "default"}, "demo")
        logsetup.configure(cfg["log.level"], cfg["log.format"])
        # From a zipapp: hold its extraction; a starting server removes other builds' ones.
        zipapp.start(prune=args.command in ("serve", "demo"))
        return COMMANDS[args.command](cfg, args, out)
    except ConfigError as exc:
        print(f"harmony: configuration error: {exc.message}", file=sys.stderr)
        return 2
    except BadInput as exc:
        print(f"harmony: error: {exc.message}", file=sys.stderr)
        return 2
    except HarmonyError as exc:
        print(f"harmony: error: {exc.message}", file=sys.stderr)
        return 1
    except apsw.Error as exc:
        reason = next((text for kind, text in _DATABASE_ERRORS if isinstance(exc, kind)), None)
        print(f"harmony: error: {reason or f'database error: {exc}'}", file=sys.stderr)
        return 1


def _rank(cfg: config.Config, args: argparse.Namespace, out: TextIO) -> int:
    """Read `{"wanted", "preferences"?, "responses"}` from stdin and print the ranking: the same
    code the service runs, with the configured preferences as defaults (see docs/operations.md)."""
    import json

    from . import ranking, search

    try:
        document = json.loads(sys.stdin.read())
        result = ranking.rank_json(document, search.preferences(cfg))
    except (ValueError, RecursionError) as exc:
        raise BadInput(f"rank: {exc}") from None
    print(json.dumps(result, indent=2, ensure_ascii=False), file=out)
    return 0


def _check(cfg: config.Config, args: argparse.Namespace, out: TextIO) -> int:
    for row in cfg.effective():
        print(f"{row['key']} = {row['value']!r}  ({row['source']})", file=out)
    print("configuration ok", file=out)
    return 0


def _migrate(cfg: config.Config, args: argparse.Namespace, out: TextIO) -> int:
    with opened(cfg) as ctx:
        print(f"database {cfg.database_path} at schema version {ctx.db.user_version()}", file=out)
    return 0


def _backup(cfg: config.Config, args: argparse.Namespace, out: TextIO) -> int:
    if not os.path.isfile(cfg.database_path):
        raise HarmonyError(f"no database at {cfg.database_path}")
    db = Database(cfg.database_path)
    try:
        db.backup(args.path)
    finally:
        db.close()
    print(f"backed up {cfg.database_path} to {args.path}", file=out)
    return 0


def _restore(cfg: config.Config, args: argparse.Namespace, out: TextIO) -> int:
    from . import backups

    # The server's own lock: a restore under a running Harmony would pull its database away.
    with _only_server(cfg["data.dir"], busy="stop it before restoring (systemctl stop harmony)"):
        result = backups.restore(args.path, cfg.database_path)
    print(f"restored {args.path} (schema version {result.version}) as {cfg.database_path}", file=out)
    if result.migrated_to != result.version:
        print(f"upgraded it to schema version {result.migrated_to}", file=out)
    if result.aside:
        print(f"the database it replaced is kept as {result.aside}", file=out)
    return 0


def _apikey(cfg: config.Config, args: argparse.Namespace, out: TextIO) -> int:
    with opened(cfg) as ctx:
        if args.action == "create":
            key, row = auth.create_key(ctx.db, args.name, args.role, expires_at=args.expires)
            print(f"created key {row['id']} ({row['role']}): {key}", file=out)
            if row["expires_at"]:
                print(f"it expires on {auth.utc_text(row['expires_at'])}", file=out)
            print("store it now: it is not shown again", file=out)
            first = admin_key_path(cfg["data.dir"])
            if os.path.exists(first):
                print(f"(the first start's admin key is in {first})", file=out)
        elif args.action == "rotate":
            key, row, old = auth.rotate_key(ctx.db, args.id, grace_s=args.grace, expires_at=args.expires)
            print(f"created key {row['id']} ({row['role']}), replacing key {old['id']}: {key}", file=out)
            if row["expires_at"]:
                print(f"it expires on {auth.utc_text(row['expires_at'])}", file=out)
            until = auth.utc_text(old["expires_at"]) if old["expires_at"] else "it is revoked"
            print(f"key {old['id']} keeps working until {until}", file=out)
            print("store the new key now: it is not shown again", file=out)
        elif args.action == "list":
            now = time.time()
            for row in auth.list_keys(ctx.db):
                state = (
                    "revoked" if row["revoked_at"] else "active" if auth.is_active(row, now) else "expired"
                )
                expires = auth.utc_text(row["expires_at"]) if row["expires_at"] else "never"
                used = auth.utc_text(row["last_used_at"]) if row["last_used_at"] else "never"
                print(
                    f"{row['id']:>4}  {row['role']:<8}  hmy_{row['prefix']}_…  {state:<7}  "
                    f"expires {expires:<20}  used {used:<20}  {row['name']}",
                    file=out,
                )
        else:
            row = auth.revoke_key(ctx.db, args.id)
            print(f"revoked key {row['id']} ({row['name']})", file=out)
    return 0


@contextlib.contextmanager
def _only_server(
    data_dir: str, busy: str = "stop it first, or give this one another data.dir"
) -> Iterator[None]:
    """Hold `<data.dir>/harmony.lock` while serving (or restoring): two servers on one database
    would run the same jobs twice. The lock is released by the kernel however the process ends;
    when another process holds it, HarmonyError names its pid and then `busy`."""
    prepare_data_dir(data_dir)
    path = os.path.join(data_dir, "harmony.lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise HarmonyError(
                f"another Harmony (pid {holder}) is already running on data.dir {data_dir}; {busy}"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)


ADMIN_KEY_FILE = "admin-key"


def admin_key_path(data_dir: str) -> str:
    """Where the first start leaves the first admin key: `<data.dir>/admin-key`, mode 0600."""
    return os.path.join(data_dir, ADMIN_KEY_FILE)


def _write_admin_key(path: str, key: str) -> None:
    """Write the key to a new 0600 file; a file left from an earlier database is replaced
    (never followed: O_EXCL refuses a symlink planted in its place)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW
    try:
        try:
            fd = os.open(path, flags, 0o600)
        except FileExistsError:
            os.unlink(path)
            fd = os.open(path, flags, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(key + "\n")
    except OSError as exc:
        raise HarmonyError(
            f"cannot write the first admin key to {path}: {exc.strerror}; create one with "
            "`harmony apikey create --name admin --role admin`"
        ) from None


def _serve(cfg: config.Config, args: argparse.Namespace, out: TextIO) -> int:
    with _only_server(cfg["data.dir"]), opened(cfg) as ctx:
        key = auth.ensure_admin_key(ctx.db)
        if key:
            # Never into the journal: to a file only this user reads, and to a terminal.
            path = admin_key_path(cfg["data.dir"])
            _write_admin_key(path, key)
            log.info("admin_key_created", extra={"fields": {"file": path}})
            if out.isatty():
                print(f"Created the first admin API key (also in {path}): {key}", file=out, flush=True)
            else:
                print(f"Created the first admin API key: it is in {path} (mode 0600)", file=out, flush=True)
        return run_server(ctx, out)


# What the demo follows on its first start: Sigrún Hólm has a single out a few minutes after the
# demo starts (the fakes' clock starts just before midnight, the day before its release date).
DEMO_ARTISTS = (("Sigrún Hólm", None), ("Aurora Vale", "2019-01-01"), ("Mørkeskog", "2020-01-01"))
DEMO_PLAYLIST = "Morning Rotation"
# The demo scans often and its searches end sooner, so a newcomer sees the pipeline move.
DEMO_OPTIONS = {"watchlist.interval": "2m", "playlists.interval": "5m", "search.timeout": "5s"}


def _demo_clock() -> Any:
    """The fakes' clock: three minutes before the next UTC midnight, so tomorrow's release comes
    out while the newcomer watches."""
    from .fakes import FakeClock

    now = time.time()
    return FakeClock(start=now - now % 86400 + 86400 - 180)


def _seed_demo(ctx: Context, fakes: Any, out: TextIO) -> None:
    """On the demo's first start: connect the fake Spotify user, watch three artists and follow
    one playlist, as a newcomer would."""
    if ctx.watcher.list_artists(limit=1):
        return
    state, code = fakes.approve(ctx.spotify.authorize_url("http://127.0.0.1/auth/spotify/callback"))
    ctx.spotify.complete_authorization(state, code)
    today = fakes.clock.today().isoformat()
    for name, since in DEMO_ARTISTS:
        ctx.watcher.add(fakes.catalogue.artist_by_name(name).id, since=since or today)
    playlist = next(p for p in fakes.catalogue.playlists.values() if p.name == DEMO_PLAYLIST)
    ctx.playlists.follow(playlist.id)
    names = ", ".join(name for name, _ in DEMO_ARTISTS)
    print(f"  watching {names}; following the playlist {DEMO_PLAYLIST!r}", file=out)


def _demo(cfg: config.Config, args: argparse.Namespace, out: TextIO) -> int:
    """Start the fake Spotify and slskd, point Harmony at them, and serve."""
    from .fakes import start_fakes

    fakes = start_fakes(os.path.join(cfg["data.dir"], "slskd-downloads"), clock=_demo_clock())
    try:
        port = cfg["server.port"]
        redirect = f"http://{cfg['server.host']}:{port}/auth/spotify/callback" if port else ""
        demo = {k: v for k, v in DEMO_OPTIONS.items() if cfg.source(k) == "default"}
        cfg = cfg.replace({**fakes.harmony_options(redirect), **demo}, "demo")
        with _only_server(cfg["data.dir"]), opened(cfg) as ctx:
            # A fresh key every run (its secret is shown only now); earlier ones are revoked.
            key, created = auth.create_key(ctx.db, "demo admin", "admin")
            for row in auth.list_keys(ctx.db):
                if row["name"] == "demo admin" and row["revoked_at"] is None and row["id"] != created["id"]:
                    auth.revoke_key(ctx.db, row["id"])
            print(f"Harmony demo: data in {cfg['data.dir']}", file=out)
            print(f"  fake Spotify at {fakes.spotify.url}, fake slskd at {fakes.slskd_url}", file=out)
            _seed_demo(ctx, fakes, out)
            print(f"Admin API key: {key}", file=out, flush=True)
            return run_server(ctx, out)
    finally:
        fakes.stop()


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)


def _install_signals(stopping: threading.Event) -> None:
    """SIGTERM, SIGINT, SIGHUP and SIGQUIT stop gracefully; a second one exits at once.

    The handler only sets the event: the serving loop sees it and drains (see `serve`).
    """

    def first(signum: int, frame: FrameType | None) -> None:
        for sig in STOP_SIGNALS:
            signal.signal(sig, second)
        log.info("stopping", extra={"fields": {"reason": signal.Signals(signum).name}})
        stopping.set()

    def second(signum: int, frame: FrameType | None) -> None:
        os._exit(128 + signum)

    for sig in STOP_SIGNALS:
        signal.signal(sig, first)


def _raise_fd_limit(wanted: int) -> None:
    """Every open connection holds a file descriptor; lift the soft limit toward the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def _proxy(address: str) -> dict[str, Any]:
    """waitress's settings for `server.trusted_proxy`: from that address only, the client's
    address and scheme are read from X-Forwarded-For and X-Forwarded-Proto."""
    if not address:
        return {}
    return {
        "trusted_proxy": address,
        "trusted_proxy_count": 1,
        "trusted_proxy_headers": {"x-forwarded-for", "x-forwarded-proto"},
    }


def create_server(ctx: Context) -> Any:
    """A waitress server for the app, or a one-line HarmonyError/ConfigError saying why not.

    Idle keep-alive connections are closed after `server.idle_timeout`, up to
    `server.connection_limit` are held at once (poll, not select, so more than 1,024 work),
    and a body over the API's limit is refused before it is read.
    """
    import waitress

    from .web import Channel, make_app

    cfg = ctx.config
    host, port = cfg["server.host"], cfg["server.port"]
    _raise_fd_limit(cfg["server.connection_limit"] + 256)
    try:
        server = waitress.create_server(
            make_app(ctx),
            host=host,
            port=port,
            threads=cfg["server.threads"],
            ident="harmony",
            clear_untrusted_proxy_headers=True,
            **_proxy(cfg["server.trusted_proxy"]),
            channel_timeout=cfg["server.idle_timeout"],
            cleanup_interval=max(1.0, min(30.0, cfg["server.idle_timeout"] / 2)),
            connection_limit=cfg["server.connection_limit"],
            max_request_body_size=MAX_BODY + 64 * 1024,
            asyncore_use_poll=True,
            # Event streams: send each write at once (waitress otherwise holds back writes
            # under 18 KB while the response runs), and read ahead while a response streams,
            # so a client that closes its stream is noticed (`waitress.client_disconnected`)
            # and its thread freed.
            send_bytes=1,
            channel_request_lookahead=1,
        )
    except ValueError:
        raise ConfigError(f"option server.host: cannot listen on {host!r}: not a known address") from None
    except OSError as exc:
        where = f"{host}:{port}"
        if exc.errno == errno.EADDRINUSE:
            raise HarmonyError(
                f"port {where} is already in use (server.port); stop the other process or choose another port"
            ) from None
        if exc.errno == errno.EACCES:
            raise ConfigError(
                f"option server.port: {port} needs privileges this user lacks; use a port above 1023 "
                "(behind a reverse proxy if need be)"
            ) from None
        if exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
            raise ConfigError(f"option server.host: {host!r} is not an address of this machine") from None
        raise HarmonyError(f"cannot listen on {where}: {exc.strerror}") from None
    server.channel_class = Channel
    dispatcher = server.task_dispatcher
    ctx.metrics.http_queue_depth.set_function(lambda: len(dispatcher.queue))
    return server


def serve(
    server: Any, stopping: threading.Event, drain_s: float, tick: Callable[[], None] = lambda: None
) -> None:
    """Run the server's loop until `stopping` is set, calling `tick` at least every half second
    (the systemd watchdog), then drain: stop accepting, let queued and running requests finish
    for at most `drain_s` seconds, and close every connection."""
    dispatcher = server.task_dispatcher
    loop = server.asyncore.loop
    while not stopping.is_set():
        loop(timeout=0.5, map=server._map, use_poll=True, count=1)
        tick()
    systemd.notify("STOPPING=1\nSTATUS=Stopping: finishing requests and background work")
    server.accepting = False
    deadline = time.monotonic() + drain_s
    while time.monotonic() < deadline:
        busy = dispatcher.queue or dispatcher.active_count > 0
        writing = any(getattr(ch, "total_outbufs_len", 0) for ch in list(server._map.values()))
        if not busy and not writing:
            break
        loop(timeout=0.05, map=server._map, use_poll=True, count=1)
    dispatcher.shutdown(cancel_pending=True, timeout=1)


def run_server(ctx: Context, out: TextIO) -> int:
    """Serve until a stop signal, then drain and stop background work; the caller closes the
    context."""
    server = create_server(ctx)
    url = f"http://{server.effective_host}:{server.effective_port}"
    stopping = ctx.stopping  # the context's own: open event streams end on it too
    _install_signals(stopping)
    ctx.start_background()
    status = f"Listening on {url}"
    # Pings only while the timer wheel and the job workers run (the /ready `background` check).
    watchdog = systemd.Watchdog(ctx.background_alive, systemd.watchdog_interval(), status)
    try:
        log.info("listening", extra={"fields": {"url": url, "version": __version__}})
        print(f"Harmony {__version__} listening on {url} (UI: {url}/ui/)", file=out, flush=True)
        systemd.notify(f"READY=1\nSTATUS={status}")
        serve(server, stopping, ctx.config["server.shutdown_timeout"], watchdog.tick)
    finally:
        ctx.stop_background()
        server.close()
        log.info("stopped")
    return 0


COMMANDS: dict[str, Callable[[config.Config, argparse.Namespace, TextIO], int]] = {
    "serve": _serve,
    "demo": _demo,
    "migrate": _migrate,
    "check": _check,
    "rank": _rank,
    "backup": _backup,
    "restore": _restore,
    "apikey": _apikey,
}

if __name__ == "__main__":
    sys.exit(main())
