"""The `harmony` command: `main(argv)` parses arguments and runs one subcommand.

Exit codes: 0 success, 1 runtime failure, 2 bad configuration or usage.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any, TextIO

from . import __version__, auth, config
from . import log as logsetup
from .context import Context, opened
from .db import Database
from .errors import ConfigError, HarmonyError

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
    apikey = sub.add_parser("apikey", help="Manage API keys.")
    keys = apikey.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = keys.add_parser("create", help="Create a key and print it once.")
    create.add_argument("--name", required=True)
    create.add_argument("--role", choices=auth.ROLES, default="read")
    keys.add_parser("list", help="List keys (never the secrets).")
    revoke = keys.add_parser("revoke", help="Revoke a key by id.")
    revoke.add_argument("id", type=int)
    for p in keys.choices.values():
        config.add_flags(p)
    cfg = sub.add_parser("config", help="Print a sample configuration file or its reference.")
    cfg.add_argument("what", choices=("sample", "docs"))
    sub.add_parser("version", help="Print the version.")
    return parser


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
        return COMMANDS[args.command](cfg, args, out)
    except ConfigError as exc:
        print(f"harmony: configuration error: {exc.message}", file=sys.stderr)
        return 2
    except HarmonyError as exc:
        print(f"harmony: error: {exc.message}", file=sys.stderr)
        return 1


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
    if not os.path.exists(cfg.database_path):
        raise HarmonyError(f"no database at {cfg.database_path}")
    db = Database(cfg.database_path)
    try:
        db.backup(args.path)
    finally:
        db.close()
    print(f"backed up {cfg.database_path} to {args.path}", file=out)
    return 0


def _apikey(cfg: config.Config, args: argparse.Namespace, out: TextIO) -> int:
    with opened(cfg) as ctx:
        if args.action == "create":
            key, row = auth.create_key(ctx.db, args.name, args.role)
            print(f"created key {row['id']} ({row['role']}): {key}", file=out)
            print("store it now: it is not shown again", file=out)
        elif args.action == "list":
            for row in auth.list_keys(ctx.db):
                state = "revoked" if row["revoked_at"] else "active"
                print(
                    f"{row['id']:>4}  {row['role']:<8}  hmy_{row['prefix']}_…  {state:<7}  {row['name']}",
                    file=out,
                )
        else:
            row = auth.revoke_key(ctx.db, args.id)
            print(f"revoked key {row['id']} ({row['name']})", file=out)
    return 0


def _serve(cfg: config.Config, args: argparse.Namespace, out: TextIO) -> int:
    with opened(cfg) as ctx:
        key = auth.ensure_admin_key(ctx.db)
        if key:
            print(f"Created the first admin API key (shown once, store it now): {key}", file=out, flush=True)
        return run_server(ctx, out)


def _demo(cfg: config.Config, args: argparse.Namespace, out: TextIO) -> int:
    """Start the fake Spotify and slskd, point Harmony at them, and serve."""
    from .fakes import start_fakes

    fakes = start_fakes(os.path.join(cfg["data.dir"], "slskd-downloads"))
    try:
        port = cfg["server.port"]
        redirect = f"http://{cfg['server.host']}:{port}/auth/spotify/callback" if port else ""
        cfg = cfg.replace(fakes.harmony_options(redirect), "demo")
        with opened(cfg) as ctx:
            # A fresh key every run (its secret is shown only now); earlier ones are revoked.
            key, created = auth.create_key(ctx.db, "demo admin", "admin")
            for row in auth.list_keys(ctx.db):
                if row["name"] == "demo admin" and row["revoked_at"] is None and row["id"] != created["id"]:
                    auth.revoke_key(ctx.db, row["id"])
            print(f"Harmony demo: data in {cfg['data.dir']}", file=out)
            print(f"  fake Spotify at {fakes.spotify.url}, fake slskd at {fakes.slskd_url}", file=out)
            print(f"Admin API key: {key}", file=out, flush=True)
            return run_server(ctx, out)
    finally:
        fakes.stop()


def _install_signals(on_first: Callable[[], None]) -> None:
    """SIGTERM/SIGINT: the first stops gracefully, a second one exits at once."""

    def first(signum: int, frame: FrameType | None) -> None:
        signal.signal(signal.SIGTERM, second)
        signal.signal(signal.SIGINT, second)
        on_first()
        raise SystemExit(0)  # waitress's run() catches this and shuts its dispatcher down

    def second(signum: int, frame: FrameType | None) -> None:
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, first)
    signal.signal(signal.SIGINT, first)


def run_server(ctx: Context, out: TextIO) -> int:
    """Serve until SIGTERM/SIGINT, then stop background work; the caller closes the context."""
    import waitress

    from .web import make_app

    app = make_app(ctx)
    server: Any = waitress.create_server(
        app,
        host=ctx.config["server.host"],
        port=ctx.config["server.port"],
        threads=ctx.config["server.threads"],
        ident="harmony",
        clear_untrusted_proxy_headers=True,
    )
    url = f"http://{server.effective_host}:{server.effective_port}"
    _install_signals(lambda: log.info("stopping", extra={"fields": {"reason": "signal"}}))
    ctx.start_background()
    try:
        log.info("listening", extra={"fields": {"url": url, "version": __version__}})
        print(f"Harmony {__version__} listening on {url} (UI: {url}/ui/)", file=out, flush=True)
        server.run()
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
    "backup": _backup,
    "apikey": _apikey,
}

if __name__ == "__main__":
    sys.exit(main())
