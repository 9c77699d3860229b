"""The option table: converters round-trip, every source is recorded, every error names its cause."""

from __future__ import annotations

import math
import os
import tomllib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harmony import config, naming
from harmony.errors import ConfigError


def values_for(option: config.Option) -> st.SearchStrategy:
    """Valid typed values for an option's converter."""
    conv = option.convert
    if isinstance(conv, config.Boolean):
        return st.booleans()
    if isinstance(conv, config.Integer):
        return st.integers(conv.minimum, conv.maximum)
    if isinstance(conv, config.Size):
        return st.integers(conv.minimum, conv.maximum or 2**50)
    if isinstance(conv, config.Duration):
        low, high = conv.minimum, conv.maximum or 1e6
        whole = st.integers(math.ceil(low), int(high)).map(float)
        fractional = (
            st.floats(low, high, allow_nan=False)
            .map(lambda f: round(f, 3))
            .filter(lambda f: low <= f <= high)
        )
        return whole | fractional
    if isinstance(conv, config.Number):
        return st.floats(conv.minimum, conv.maximum, allow_nan=False, allow_infinity=False)
    if isinstance(conv, config.Choice):
        return st.sampled_from(conv.choices)
    if isinstance(conv, config.Words):
        samples = {
            "search.formats": ["flac", "mp3", "m4a", "ogg", "opus"],
            "search.ladder": ["flac 24", "flac 16/44.1", "mp3 320", "mp3 v0", "flac"],
            "webhooks.urls": [
                "https://hooks.example/harmony",
                "discord+https://discord.com/api/webhooks/1/token",
                "ntfy+https://ntfy.example:8080/topic?auth=x",
                "apprise+http://[::1]:8000/notify/key",
            ],
        }
        return st.lists(st.sampled_from(samples[option.key]), min_size=1, max_size=4).map(tuple)
    if isinstance(conv, config.Url):
        host = st.from_regex(r"[a-z][a-z0-9-]{0,20}(\.[a-z]{2,6})?", fullmatch=True)
        path = st.from_regex(r"(/[A-Za-z0-9._~-]{1,12}){0,3}", fullmatch=True)
        port = st.none() | st.integers(1, 65535)
        scheme = st.sampled_from(["http", "https"])
        return st.builds(
            lambda s, h, p, pa: f"{s}://{h}{'' if p is None else f':{p}'}{pa}", scheme, host, port, path
        )
    if isinstance(conv, config.Mode):
        return st.integers(0, 0o777) | st.integers(0, 0o777).map(lambda mode: f"{mode:04o}")
    if isinstance(conv, config.Template):
        return st.sampled_from(
            [
                naming.DEFAULT_TEMPLATE,
                "{artist}/{album}/{track} - {title}.{ext}",
                "{album} [{year}]/{title}.{ext}",
            ]
        )
    if isinstance(conv, config.Address):
        return st.just("") | st.ip_addresses().map(str)
    if isinstance(conv, config.Path):
        return st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00~"), min_size=1)
    assert isinstance(conv, config.String)
    return st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1)


@pytest.mark.parametrize("option", config.OPTIONS, ids=lambda o: o.key)
@given(data=st.data())
def test_every_converter_round_trips_through_env_and_toml(option: config.Option, data: st.DataObject) -> None:
    value = option.convert(data.draw(values_for(option)))
    # As an environment variable: the rendered string parses back to the same value.
    loaded = config.load(None, {option.env: option.convert.render(value)})
    assert (
        loaded[option.key] == pytest.approx(value)
        if isinstance(value, float)
        else loaded[option.key] == value
    )
    assert loaded.source(option.key) == f"environment variable {option.env}"
    # As TOML: the literal the sample file would contain parses back to the same value.
    document = tomllib.loads(f"[{option.section}]\n{option.name} = {config.toml_literal(option, value)}\n")
    again = option.convert(document[option.section][option.name])
    assert again == pytest.approx(value) if isinstance(value, float) else again == value


def test_sources_are_layered_and_recorded(tmp_path) -> None:
    path = tmp_path / "harmony.toml"
    path.write_text('[server]\nport = 9000\nhost = "0.0.0.0"\n[log]\nlevel = "debug"\n')
    cfg = config.load(
        str(path), {"HARMONY_SERVER_PORT": "9001", "HARMONY_LOG_LEVEL": "error"}, {"log.level": "warning"}
    )
    assert cfg["server.host"] == "0.0.0.0" and cfg.source("server.host") == f"file {path}"
    assert (
        cfg["server.port"] == 9001 and cfg.source("server.port") == "environment variable HARMONY_SERVER_PORT"
    )
    assert cfg["log.level"] == "warning" and cfg.source("log.level") == "flag --log-level"
    assert cfg["server.threads"] == 8 and cfg.source("server.threads") == "default"


@pytest.mark.parametrize(
    ("env", "flags", "toml", "fragments"),
    [
        (
            {"HARMONY_SERVER_PORT": "abc"},
            {},
            None,
            ["server.port", "'abc'", "environment variable HARMONY_SERVER_PORT"],
        ),
        (
            {},
            {"server.port": "70000"},
            None,
            ["server.port", "'70000'", "flag --server-port", "at most 65535"],
        ),
        ({}, {}, "[server]\nport = true\n", ["server.port", "True", "file "]),
        ({}, {}, '[upstream]\nread_timeout = "soon"\n', ["upstream.read_timeout", "'soon'", "file "]),
        ({"HARMONY_LOG_LEVEL": "loud"}, {}, None, ["log.level", "'loud'", "HARMONY_LOG_LEVEL", "one of"]),
        ({"HARMONY_SLSKD_URL": "ftp://x"}, {}, None, ["slskd.url", "'ftp://x'", "HARMONY_SLSKD_URL"]),
    ],
)
def test_bad_values_name_option_value_and_source(tmp_path, env, flags, toml, fragments) -> None:
    path = None
    if toml:
        path = tmp_path / "c.toml"
        path.write_text(toml)
    with pytest.raises(ConfigError) as info:
        config.load(str(path) if path else None, env, flags)
    for fragment in fragments:
        assert fragment in info.value.message


def test_secret_values_are_not_echoed_in_errors() -> None:
    with pytest.raises(ConfigError) as info:
        config.load(None, {"HARMONY_SLSKD_API_KEY": "bad\x00secret"})
    assert "secret" not in info.value.message and "slskd.api_key" in info.value.message


@pytest.mark.parametrize(
    ("toml", "fragment"),
    [
        ("[server]\nprot = 1\n", "unknown option server.prot"),
        ("[nosuch]\nx = 1\n", "unknown option nosuch.x"),
        ("port = 1\n", "unknown key 'port'"),
        ("[server\n", "not valid TOML"),
    ],
)
def test_unknown_keys_and_bad_files_name_the_key_and_file(tmp_path, toml, fragment) -> None:
    path = tmp_path / "c.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as info:
        config.load(str(path), {})
    assert fragment in info.value.message and str(path) in info.value.message


def test_unknown_environment_variable_in_a_known_section_is_an_error() -> None:
    with pytest.raises(ConfigError, match="HARMONY_SERVER_PROT"):
        config.load(None, {"HARMONY_SERVER_PROT": "1"})
    # Variables outside Harmony's sections are someone else's.
    assert config.load(None, {"HARMONY_UNRELATED_THING": "x"})["server.port"] == 8337


def test_missing_config_file_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        config.load(str(tmp_path / "absent.toml"), {})


def test_sample_is_valid_toml_and_uncommented_gives_the_defaults(tmp_path) -> None:
    text = config.sample()
    uncommented = "\n".join(
        line[2:] if line.startswith("# ") and "=" in line else line for line in text.splitlines()
    )
    path = tmp_path / "sample.toml"
    path.write_text(uncommented)
    cfg = config.load(str(path), {})
    for option in config.OPTIONS:
        assert cfg[option.key] == option.convert(option.default), option.key
        assert cfg.source(option.key) == f"file {path}"


def test_effective_masks_secrets() -> None:
    cfg = config.load(None, {"HARMONY_SLSKD_API_KEY": "s3cret-key-value"})
    rows = {row["key"]: row for row in cfg.effective()}
    assert rows["slskd.api_key"]["value"] == "********"
    assert rows["spotify.client_secret"]["value"] == ""
    assert "s3cret" not in repr(cfg.effective())


@given(st.integers(0, 10**6), st.sampled_from(["ms", "s", "m", "h", "d", ""]))
def test_duration_units(count: int, unit: str) -> None:
    seconds = config.Duration(maximum=None)(f"{count}{unit}")
    assert seconds == pytest.approx(count * config.Duration.UNITS[unit or "s"])


# --- hostile values (the converters hold at load time, so `harmony check` catches them) ---------


@pytest.mark.parametrize(
    "key",
    [option.key for option in config.OPTIONS if isinstance(option.convert, config.Duration | config.Number)],
)
@pytest.mark.parametrize("literal", ["nan", "inf", "-inf", "1" + "0" * 400])
def test_no_number_option_accepts_non_finite_or_huge_values(tmp_path, key: str, literal: str) -> None:
    section, name = key.split(".")
    path = tmp_path / "c.toml"
    path.write_text(f"[{section}]\n{name} = {literal}\n")
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        config.load(str(path), {})


@pytest.mark.parametrize("text", ["٣", "１０", "1e3x", " ", "0x50"])
def test_numbers_are_ascii_digits_only(text: str) -> None:
    for key in ("server.port", "upstream.read_timeout", "data.min_free", "spotify.rate"):
        with pytest.raises(ConfigError):
            config.load(None, {config.BY_KEY[key].env: text})


def test_a_config_file_that_is_not_utf8_is_a_config_error(tmp_path) -> None:
    path = tmp_path / "c.toml"
    path.write_bytes(b"\xff\xfe[server]\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        config.load(str(path), {})


def test_url_credentials_are_masked_in_effective_and_errors() -> None:
    cfg = config.load(None, {"HARMONY_SLSKD_URL": "http://admin:hunter2@127.0.0.1:5030/x?token=abc"})
    shown = {row["key"]: row["value"] for row in cfg.effective()}["slskd.url"]
    assert "hunter2" not in shown and "admin" not in shown and "abc" not in shown
    assert shown.startswith("http://********@127.0.0.1:5030/x")
    with pytest.raises(ConfigError) as info:
        config.load(None, {"HARMONY_SLSKD_URL": "ftp://admin:hunter2@host"})
    assert "hunter2" not in info.value.message


@given(st.integers(0, 2**50), st.sampled_from(["", "k", "K", "M", "MB", "MiB", "g", "G", "T"]))
def test_size_units(count: int, unit: str) -> None:
    value = config.Size()(f"{count}{unit}")
    assert value == count * config.Size.UNITS[unit[:1].lower()]
    assert config.Size()(config.Size().render(value)) == value


# --- live settings: a source between the file and the environment ------------------------------


def test_stored_settings_sit_between_the_file_and_the_environment(tmp_path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[log]\nlevel = "warning"\n')
    from_file = config.load(str(path), {})
    changed, problems = from_file.with_stored({"log.level": "debug"})
    assert not problems
    assert changed["log.level"] == "debug" and changed.source("log.level") == config.STORED_SOURCE
    from_env = config.load(str(path), {"HARMONY_LOG_LEVEL": "error"})
    kept, _ = from_env.with_stored({"log.level": "debug"})
    assert (
        kept["log.level"] == "error" and kept.source("log.level") == "environment variable HARMONY_LOG_LEVEL"
    )


def test_stored_values_that_no_longer_apply_are_skipped_not_fatal() -> None:
    cfg, problems = config.load(None, {}).with_stored(
        {"log.level": "shout", "server.port": 1, "gone.option": 3}
    )
    assert cfg["log.level"] == "info" and cfg["server.port"] == 8337
    assert set(problems) == {"log.level", "server.port", "gone.option"}


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"HARMONY_LIBRARY_TEMPLATE": "{artist}/{bogus}.{ext}"}, "library.template"),
        ({"HARMONY_LIBRARY_TEMPLATE": "../{title}.{ext}"}, "library.template"),
        ({"HARMONY_LIBRARY_FILE_MODE": "999"}, "library.file_mode"),
        ({"HARMONY_LIBRARY_DIR_MODE": "rwxr-xr-x"}, "library.dir_mode"),
    ],
)
def test_bad_library_templates_and_modes_are_refused_naming_the_option(
    env: dict[str, str], fragment: str
) -> None:
    with pytest.raises(ConfigError, match=fragment):
        config.load(None, env)


def test_modes_read_as_octal_text_and_a_decimal_number_that_looks_octal_is_refused(tmp_path) -> None:
    assert config.load(None, {"HARMONY_LIBRARY_FILE_MODE": "640"})["library.file_mode"] == 0o640
    path = tmp_path / "h.toml"
    path.write_text('[library]\nfile_mode = "0o600"\ndir_mode = 493\n')
    cfg = config.load(str(path), {})
    assert (cfg["library.file_mode"], cfg["library.dir_mode"]) == (0o600, 0o755)
    path.write_text("[library]\nfile_mode = 644\n")
    with pytest.raises(ConfigError, match="file_mode"):
        config.load(str(path), {})


# --- secrets from files (systemd credentials, container secrets) ---------------------------------


def test_every_secret_has_a_file_companion_in_every_source(tmp_path) -> None:
    secrets = [option for option in config.OPTIONS if option.secret]
    assert {o.key for o in secrets} >= {
        "spotify.client_secret",
        "slskd.api_key",
        "webhooks.secret",
        "webhooks.urls",
    }
    (tmp_path / "spotify").write_text("from-toml-file\n")
    (tmp_path / "slskd").write_text("from-env-file\r\n")
    (tmp_path / "hmac").write_text("from-flag-file\n\n")  # only one trailing newline is dropped
    (tmp_path / "urls").write_text("https://a.example/hook\nntfy+https://b.example/t\n")
    toml = tmp_path / "harmony.toml"
    toml.write_text(f'[spotify]\nclient_secret_file = "{tmp_path / "spotify"}"\n')
    env = {
        "HARMONY_SLSKD_API_KEY_FILE": str(tmp_path / "slskd"),
        "HARMONY_WEBHOOKS_URLS_FILE": "urls",
        "CREDENTIALS_DIRECTORY": str(tmp_path),
    }
    cfg = config.load(str(toml), env, {"webhooks.secret_file": str(tmp_path / "hmac")})
    assert cfg["spotify.client_secret"] == "from-toml-file"
    assert cfg.source("spotify.client_secret") == f"file {toml} ({tmp_path / 'spotify'})"
    assert cfg["slskd.api_key"] == "from-env-file"
    assert (
        cfg.source("slskd.api_key")
        == f"environment variable HARMONY_SLSKD_API_KEY_FILE ({tmp_path / 'slskd'})"
    )
    assert cfg["webhooks.secret"] == "from-flag-file\n"
    assert cfg.source("webhooks.secret").startswith("flag --webhooks-secret-file (")
    # A relative name is a credential: looked up in $CREDENTIALS_DIRECTORY; one URL a line.
    assert cfg["webhooks.urls"] == ("https://a.example/hook", "ntfy+https://b.example/t")
    shown = repr(cfg.effective())
    for text in ("from-toml-file", "from-env-file", "from-flag-file", "a.example"):
        assert text not in shown
    assert str(tmp_path / "slskd") in shown  # /env names the file the value came from


def test_a_file_companion_overrides_a_lower_source_and_clashes_within_one(tmp_path) -> None:
    (tmp_path / "key").write_text("from-file")
    toml = tmp_path / "harmony.toml"
    toml.write_text('[slskd]\napi_key = "from-toml"\n')
    cfg = config.load(str(toml), {"HARMONY_SLSKD_API_KEY_FILE": str(tmp_path / "key")})
    assert cfg["slskd.api_key"] == "from-file"
    cfg = config.load(str(toml), {}, {"slskd.api_key_file": str(tmp_path / "key")})
    assert cfg["slskd.api_key"] == "from-file"
    env = {"HARMONY_SLSKD_API_KEY": "x", "HARMONY_SLSKD_API_KEY_FILE": str(tmp_path / "key")}
    with pytest.raises(ConfigError) as info:
        config.load(None, env)
    assert "slskd.api_key is set twice" in info.value.message
    toml.write_text(f'[slskd]\napi_key = "x"\napi_key_file = "{tmp_path / "key"}"\n')
    with pytest.raises(ConfigError):
        config.load(str(toml), {})
    # Only secrets have companions: a non-secret option's `_file` key is unknown.
    with pytest.raises(ConfigError, match="unknown environment variable HARMONY_SERVER_HOST_FILE"):
        config.load(None, {"HARMONY_SERVER_HOST_FILE": str(tmp_path / "key")})


@pytest.mark.parametrize(
    ("setup", "fragment"),
    [
        ("missing", "No such file or directory"),
        ("unreadable", "Permission denied"),
        ("directory", "Is a directory"),
        ("binary", "not UTF-8 text"),
        ("huge", "larger than 64 KiB"),
        ("bad value", "must not contain NUL"),
    ],
)
def test_a_secret_file_that_cannot_be_used_names_the_option_and_file_never_the_content(
    tmp_path, setup: str, fragment: str
) -> None:
    path = tmp_path / "secret"
    content = b"hunter2-secret-content"
    if setup == "unreadable":
        if os.geteuid() == 0:
            pytest.skip("root reads any file")
        path.write_bytes(content)
        path.chmod(0)
    elif setup == "directory":
        path.mkdir()
    elif setup == "binary":
        path.write_bytes(content + b"\xff")
    elif setup == "huge":
        path.write_bytes(content * 4000)
    elif setup == "bad value":
        path.write_bytes(content + b"\x00")
    with pytest.raises(ConfigError) as info:
        config.load(None, {"HARMONY_SLSKD_API_KEY_FILE": str(path)})
    message = info.value.message
    assert "slskd.api_key" in message and fragment in message
    assert "hunter2" not in message and "hunter2" not in repr(info.value.details)
    if setup != "bad value":
        assert str(path) in message and "HARMONY_SLSKD_API_KEY_FILE" in message


def test_a_relative_secret_file_without_credentials_directory_says_where_it_looked(tmp_path) -> None:
    with pytest.raises(ConfigError) as info:
        config.load(None, {"HARMONY_SPOTIFY_CLIENT_SECRET_FILE": "spotify_client_secret"})
    assert "CREDENTIALS_DIRECTORY" in info.value.message and "spotify.client_secret" in info.value.message


def test_secret_file_flags_reach_the_loader(tmp_path) -> None:
    import argparse

    (tmp_path / "key").write_text("flag-secret\n")
    parser = argparse.ArgumentParser()
    config.add_flags(parser)
    args = parser.parse_args(["--slskd-api-key-file", str(tmp_path / "key")])
    cfg = config.from_args(args, env={})
    assert cfg["slskd.api_key"] == "flag-secret"
    assert cfg.source("slskd.api_key") == f"flag --slskd-api-key-file ({tmp_path / 'key'})"
