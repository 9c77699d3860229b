"""The CLI through main(argv): exit codes, output, and the commands that touch the database."""

from __future__ import annotations

import io
import json
import re

from harmony import __version__, config
from harmony.__main__ import main
from harmony.db import SCHEMA_VERSION, Database


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out=out)
    return code, out.getvalue()


def test_version() -> None:
    assert run("version") == (0, f"harmony {__version__}\n")


def test_config_sample_and_docs() -> None:
    code, text = run("config", "sample")
    assert code == 0 and text.strip() == config.sample().strip()
    code, text = run("config", "docs")
    assert code == 0 and "| `port` (integer)" in text


def test_check_prints_values_with_sources(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HARMONY_SERVER_PORT", "9100")
    code, text = run("check", "--data-dir", str(tmp_path))
    assert code == 0
    assert "server.port = 9100  (environment variable HARMONY_SERVER_PORT)" in text
    assert f"data.dir = '{tmp_path}'  (flag --data-dir)" in text
    assert text.endswith("configuration ok\n")


def test_check_exits_2_naming_option_value_and_source(monkeypatch, capsys) -> None:
    monkeypatch.setenv("HARMONY_SERVER_PORT", "abc")
    code, _ = run("check")
    err = capsys.readouterr().err
    assert code == 2
    assert "server.port" in err and "'abc'" in err and "environment variable HARMONY_SERVER_PORT" in err


def test_unknown_key_in_config_file_exits_2(tmp_path, capsys) -> None:
    path = tmp_path / "h.toml"
    path.write_text("[server]\nporrt = 1\n")
    assert run("check", "--config", str(path))[0] == 2
    assert "unknown option server.porrt" in capsys.readouterr().err


def test_usage_errors_exit_2(capsys) -> None:
    assert run("nosuchcommand")[0] == 2
    assert run("backup")[0] == 2


def test_migrate_then_backup(tmp_path) -> None:
    code, text = run("migrate", "--data-dir", str(tmp_path))
    assert code == 0 and f"schema version {SCHEMA_VERSION}" in text
    dest = tmp_path / "backup.sqlite3"
    code, text = run("backup", str(dest), "--data-dir", str(tmp_path))
    assert code == 0 and dest.exists()
    copy = Database(str(dest))
    assert copy.user_version() == SCHEMA_VERSION
    copy.close()


def test_backup_without_a_database_fails_clearly(tmp_path, capsys) -> None:
    assert run("backup", str(tmp_path / "b.db"), "--data-dir", str(tmp_path / "empty"))[0] == 1
    assert "no database" in capsys.readouterr().err


def test_apikey_create_list_revoke(tmp_path, capsys) -> None:
    code, text = run("apikey", "create", "--name", "grafana", "--role", "read", "--data-dir", str(tmp_path))
    assert code == 0
    key = re.search(r"hmy_\w+_\S+", text)
    assert key is not None
    code, text = run("apikey", "list", "--data-dir", str(tmp_path))
    assert "grafana" in text and "active" in text and key.group(0) not in text
    key_id = text.split()[0]
    assert run("apikey", "revoke", key_id, "--data-dir", str(tmp_path))[0] == 0
    assert "revoked" in run("apikey", "list", "--data-dir", str(tmp_path))[1]
    assert run("apikey", "revoke", "999", "--data-dir", str(tmp_path))[0] == 1
    assert "no API key with id 999" in capsys.readouterr().err


def test_the_last_admin_key_cannot_be_revoked(tmp_path, capsys) -> None:
    run("apikey", "create", "--name", "root", "--role", "admin", "--data-dir", str(tmp_path))
    assert run("apikey", "revoke", "1", "--data-dir", str(tmp_path))[0] == 1
    assert "last active admin key" in capsys.readouterr().err


def test_a_newer_database_is_refused(tmp_path, capsys) -> None:
    run("migrate", "--data-dir", str(tmp_path))
    db = Database(str(tmp_path / "harmony.sqlite3"))
    db.conn().execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    db.close()
    assert run("migrate", "--data-dir", str(tmp_path))[0] == 1
    assert "newer than this Harmony" in capsys.readouterr().err


# --- hostile findings D6, D8, D12: every failure is one line with the right exit code ----------


def one_line_error(capsys, fragment: str) -> None:
    err = capsys.readouterr().err.strip().splitlines()
    assert err and fragment in err[-1] and not any("Traceback" in line for line in err)


def test_check_refuses_nan_durations(tmp_path, capsys) -> None:
    path = tmp_path / "h.toml"
    path.write_text("[jobs]\nlease = nan\n")
    assert run("check", "--config", str(path))[0] == 2
    one_line_error(capsys, "jobs.lease")


def test_config_files_that_are_not_utf8_or_hold_huge_numbers_exit_2(tmp_path, capsys) -> None:
    path = tmp_path / "h.toml"
    path.write_bytes(b"\xff\xfe[server]\n")
    assert run("check", "--config", str(path))[0] == 2
    one_line_error(capsys, "not UTF-8")
    path.write_text("[jobs]\nlease = 1" + "0" * 400 + "\n")
    assert run("check", "--config", str(path))[0] == 2
    one_line_error(capsys, "jobs.lease")


def test_backup_refuses_the_live_database_and_a_missing_directory(tmp_path, capsys) -> None:
    run("migrate", "--data-dir", str(tmp_path))
    assert run("backup", str(tmp_path / "harmony.sqlite3"), "--data-dir", str(tmp_path))[0] == 1
    one_line_error(capsys, "live database")
    assert run("backup", str(tmp_path / "missing" / "b.db"), "--data-dir", str(tmp_path))[0] == 1
    one_line_error(capsys, "does not exist")


def test_apikey_commands_refuse_bad_ids_and_names_as_usage_errors(tmp_path, capsys) -> None:
    assert run("apikey", "revoke", str(2**70), "--data-dir", str(tmp_path))[0] == 2
    assert "not a key id" in capsys.readouterr().err
    assert run("apikey", "revoke", "١", "--data-dir", str(tmp_path))[0] == 2
    capsys.readouterr()
    bad = b"\xed\xa0\x80".decode("utf-8", "surrogateescape")  # how Python hands over invalid UTF-8 argv
    assert run("apikey", "create", "--name", bad, "--data-dir", str(tmp_path))[0] == 2
    one_line_error(capsys, "name must be valid Unicode")


def test_the_data_directory_and_the_database_are_private(tmp_path) -> None:
    import os
    import stat

    data = tmp_path / "new"
    assert run("migrate", "--data-dir", str(data))[0] == 0
    assert stat.S_IMODE(os.stat(data).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(data / "harmony.sqlite3").st_mode) == 0o600


def test_rank_reads_responses_on_stdin_and_explains_each_verdict(monkeypatch) -> None:
    def shared(name: str, seconds: int) -> dict[str, object]:
        return {"filename": f"@@m\\Aurora Vale\\Low Tide\\{name}", "size": 30_000_000, "length": seconds}

    document = {
        "wanted": {
            "artist": "Aurora Vale",
            "title": "Glass Harbour",
            "album": "Low Tide",
            "duration_ms": 215_000,
        },
        "preferences": {"formats": ["flac"]},
        "responses": [
            {
                "username": "long",
                "hasFreeUploadSlot": True,
                "uploadSpeed": 1,
                "queueLength": 0,
                "files": [shared("03 - Glass Harbour.flac", 251)],
            },
            {
                "username": "right",
                "hasFreeUploadSlot": True,
                "uploadSpeed": 1,
                "queueLength": 0,
                "files": [shared("03 - Glass Harbour.flac", 215), shared("03 - Glass Harbour.mp3", 215)],
            },
        ],
    }
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(document)))
    code, text = run("rank")
    result = json.loads(text)
    assert code == 0 and result["pick"]["username"] == "right"
    refused = {
        (c["username"], c["filename"].rsplit(".", 1)[1]): c["reasons"]
        for c in result["candidates"]
        if not c["accepted"]
    }
    assert any("length" in r for r in refused["long", "flac"]), refused
    assert any("format" in r for r in refused["right", "mp3"]), refused


def test_rank_refuses_malformed_input_naming_the_field(monkeypatch, capsys) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO('{"wanted": {"title": ""}, "responses": []}'))
    assert run("rank")[0] == 2
    assert "wanted.title" in capsys.readouterr().err


def test_the_first_admin_key_file_is_new_0600_and_never_follows_a_planted_link(tmp_path) -> None:
    import os

    from harmony.__main__ import _write_admin_key, admin_key_path

    path = admin_key_path(str(tmp_path))
    target = tmp_path / "elsewhere"
    target.write_text("untouched")
    os.symlink(target, path)  # left by someone else, or a file from an earlier database
    _write_admin_key(path, "hmy_abcdef12_secret")
    assert not os.path.islink(path) and target.read_text() == "untouched"
    assert (tmp_path / "admin-key").read_text() == "hmy_abcdef12_secret\n"
    assert os.stat(path).st_mode & 0o777 == 0o600
    code, text = run("apikey", "create", "--name", "x", "--data-dir", str(tmp_path))
    assert code == 0 and f"the first start's admin key is in {path}" in text
