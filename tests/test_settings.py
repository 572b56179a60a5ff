"""Settings: one group per stage, every layout of a config file, flags over the file over the
defaults for every server setting, and bounds on every number."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

from commands.cli import build_parser
from commands.live import live_settings
from errors import LipForensicsError
from stream.settings.layout import GROUPS
from stream.settings.pipeline import Settings, load_settings
from stream.settings.server import ServerSettings, WhipSettings
from tests.live_support import free_port

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "a-long-enough-test-token"

#: every server setting: (name, TOML value in [server], its value, flags, their value)
SERVER_CASES = [
    ("host", '"0.0.0.0"', "0.0.0.0", ["--host", "127.0.0.2"], "127.0.0.2"),
    ("port", "18443", 18443, ["--port", "18444"], 18444),
    ("token", '"file-token-0123456789"', "file-token-0123456789", ["--token", TOKEN], TOKEN),
    ("protect_metrics", "true", True, ["--no-protect-metrics"], False),
    (
        "cors_origins",
        '["https://a.example"]',
        ("https://a.example",),
        ["--cors-origin", "https://b.example", "--cors-origin", "https://c.example"],
        ("https://b.example", "https://c.example"),
    ),
    ("tls_cert", '"a"\ntls_key = "k"', Path("a"), ["--tls-cert", "b"], Path("b")),
    ("tls_key", '"a"\ntls_cert = "c"', Path("a"), ["--tls-key", "b"], Path("b")),
    ("heartbeat", "5.5", 5.5, ["--heartbeat", "7"], 7.0),
    ("idle_timeout", "5", 5, ["--idle-timeout", "7.5"], 7.5),
    ("max_connections", "10", 10, ["--max-connections", "20"], 20),
    ("max_streams", "10", 10, ["--max-streams", "20"], 20),
    ("max_sessions", "2", 2, ["--max-sessions", "3"], 3),
    ("max_tracks", "3", 3, ["--max-tracks", "1"], 1),
    ("max_body", "1000", 1000, ["--max-body", "2000"], 2000),
    ("connect_timeout", "5", 5, ["--connect-timeout", "6"], 6.0),
    ("stall_timeout", "2", 2, ["--stall-timeout", "3.5"], 3.5),
    ("ice_hosts", '["192.0.2.1"]', ("192.0.2.1",), ["--ice-host", "192.0.2.2"], ("192.0.2.2",)),
    ("stun_servers", '["stun:a.example"]', ("stun:a.example",), ["--stun", "stun:b"], ("stun:b",)),
]  # fmt: skip


def serve_settings(config: Path, *flags: str) -> ServerSettings:
    """The server settings ``serve --config config FLAGS`` would use."""
    args = build_parser().parse_args(["serve", "--config", str(config), *flags])
    server = live_settings(args, serve=True).server
    assert server is not None
    return server


def server_value(server: ServerSettings, name: str) -> object:
    """A server setting by name, the WHIP limits included."""
    return getattr(server.whip if hasattr(server.whip, name) else server, name)


def test_the_cases_cover_every_server_setting():
    names = {f.name for f in fields(ServerSettings) if f.name != "whip"}
    names |= {f.name for f in fields(WhipSettings)}
    assert sorted(case[0] for case in SERVER_CASES) == sorted(names)


@pytest.mark.parametrize(("name", "toml", "in_file", "flags", "flagged"), SERVER_CASES)
def test_a_server_table_wins_over_the_defaults_and_flags_over_the_table(
    tmp_path, monkeypatch, name, toml, in_file, flags, flagged
):
    monkeypatch.delenv("LIPFORENSICS_TOKEN", raising=False)
    default = server_value(ServerSettings(token=TOKEN), name)
    assert in_file != default and flagged != in_file  # the case can tell the three apart
    config = tmp_path / "serve.toml"
    token = "" if name == "token" else f'token = "{TOKEN}"\n'
    config.write_text(f"[server]\n{token}{name} = {toml}\n")
    assert server_value(serve_settings(config), name) == in_file
    assert server_value(serve_settings(config, *flags), name) == flagged


@pytest.mark.parametrize("table", ["", "[pipeline]\n"])
def test_the_earlier_layouts_with_host_port_and_token_outside_server_keep_working(tmp_path, table):
    """host, port and token at the top level or under [pipeline], as serve's help once said."""
    config = tmp_path / "old.toml"
    config.write_text(f'{table}stride = 10\nhost = "0.0.0.0"\nport = 18443\ntoken = "{TOKEN}"\n')
    server = serve_settings(config)
    assert (server.host, server.port, server.token) == ("0.0.0.0", 18443, TOKEN)
    assert load_settings(config).faces.stride == 10


def test_a_setting_given_in_two_places_is_one_line_naming_both(tmp_path):
    config = tmp_path / "twice.toml"
    config.write_text(f'port = 1\n[server]\ntoken = "{TOKEN}"\nport = 2\n')
    twice = r"^setting port is set twice in .*: at the top level and in \[server\]$"
    with pytest.raises(LipForensicsError, match=twice):
        serve_settings(config)


def test_each_group_has_its_table_and_a_name_in_another_groups_table_is_named(tmp_path):
    config = tmp_path / "groups.toml"
    config.write_text(
        "[sources]\nframe_queue = 10\n[faces]\nstride = 25\n[engine]\nmax_batch = 8\n"
        '[alerts]\njsonl = "e.jsonl"\n[fleet]\nnode = "edge-1"\nshard = "1/3"\n'
    )
    settings = load_settings(config)
    assert settings.sources.frame_queue == 10 and settings.faces.stride == 25
    assert settings.engine.max_batch == 8 and settings.alerts.jsonl == "e.jsonl"
    assert (settings.fleet.node, settings.fleet.shard) == ("edge-1", "1/3")
    assert settings.server is None  # only serve builds it
    config.write_text("[engine]\nstride = 5\n")
    elsewhere = r"^setting stride belongs in \[faces\], not \[engine\]"
    with pytest.raises(LipForensicsError, match=elsewhere):
        load_settings(config)
    config.write_text("strde = 5\n")
    unknown = r"unknown setting\(s\) in .*: strde \(did you mean stride\?\)$"
    with pytest.raises(LipForensicsError, match=unknown):
        load_settings(config)


def test_every_flag_that_names_a_setting_reaches_its_group():
    """The flags' destinations are the settings' names: none is lost on the way."""
    args = build_parser().parse_args(
        ["run", "x.mp4", "--stride", "25", "--jsonl", "e.jsonl", "--node", "n1", "--shard", "0/2",
         "--backend", "torch", "--give-up-after", "3", "--realtime", "--triton-header", "A: b"]
    )  # fmt: skip
    settings = live_settings(args)
    assert (settings.faces.stride, settings.alerts.jsonl) == (25, "e.jsonl")
    assert (settings.engine.backend, settings.engine.triton_headers) == ("torch", ("A: b",))
    assert (settings.fleet.node, settings.fleet.shard) == ("n1", "0/2")
    assert (settings.sources.give_up_after, settings.sources.realtime) == (3.0, True)


def _numbers() -> list[tuple[str, str]]:
    """(group, name) of every numeric setting."""
    kinds = {**GROUPS, "whip": WhipSettings}
    return [
        (group, f.name)
        for group, kind in kinds.items()
        for f in fields(kind)
        if str(f.type).split(" ")[0] in ("int", "float")
    ]


@pytest.mark.parametrize(("group", "name"), _numbers())
def test_every_number_has_an_upper_bound(group, name):
    """``inference_threads = 100000`` once took 65 MB/s until the machine ran out."""
    with pytest.raises(LipForensicsError, match=rf"^{name} must be .*, got 1000000000000$"):
        Settings.of(**{name: 10**12}, **({"token": TOKEN} if group in ("server", "whip") else {}))


def test_a_window_longer_than_the_networks_clip_is_refused():
    with pytest.raises(LipForensicsError, match=r"^window must be 5..25, got 100000$"):
        Settings.of(window=100000)


def test_a_byte_order_mark_is_skipped(tmp_path):
    config = tmp_path / "bom.toml"
    config.write_bytes(b"\xef\xbb\xbfstride = 10\n")
    assert load_settings(config).faces.stride == 10


@pytest.mark.parametrize("source", ["/dev/zero", "big"])
def test_a_config_file_is_read_up_to_one_mebibyte(tmp_path, source):
    """``--config /dev/zero`` once grew by 65 MB/s and ignored SIGTERM."""
    path = Path(source) if source.startswith("/") else tmp_path / source
    if source == "big":
        path.write_text("# padding\n" * 200_000)
    with pytest.raises(LipForensicsError, match=r"^config file .* is larger than 1 MiB$"):
        load_settings(path)


def test_toml_nested_thousands_deep_is_invalid_toml(tmp_path):
    config = tmp_path / "deep.toml"
    config.write_text("x = " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(LipForensicsError, match=r"^invalid TOML in .*: nested too deeply$"):
        load_settings(config)


def test_serve_listens_on_the_port_of_its_config_file(tmp_path, narrow_weights):
    """The bug: ``[server] port`` was replaced by the pipeline's default 8080."""
    port = free_port()
    config = tmp_path / "serve.toml"
    config.write_text(f'[server]\nport = {port}\ntoken = "{TOKEN}"\n')
    command = [sys.executable, "run_stream.py", "serve", "--config", str(config)]
    command += [
        "--weights",
        str(narrow_weights),
        "--backend",
        "torch",
        "--jsonl",
        str(tmp_path / "e"),
    ]
    environment = {k: v for k, v in os.environ.items() if k != "LIPFORENSICS_TOKEN"}
    process = subprocess.Popen(
        command, cwd=ROOT, env=environment, stderr=subprocess.PIPE, bufsize=0
    )
    try:  # unbuffered: select() must see every line that readline() has not taken
        line = b""
        while (
            not line.startswith(b"serving on") and select.select([process.stderr], [], [], 120)[0]
        ):
            if not (line := process.stderr.readline()):
                break
        assert line.decode().startswith(f"serving on http://127.0.0.1:{port} "), line
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=60)
