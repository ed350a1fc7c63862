"""The configuration schema, its documented template, and `holdnote check-config`."""

from __future__ import annotations

import subprocess
import sys

import pytest

from appliance import config
from appliance.errors import ConfigError

from .conftest import REPO


def test_shipped_file_is_the_documented_defaults():
    shipped = (REPO / "config" / "holdnote.toml").read_text()
    assert shipped == config.render_template(), (
        "config/holdnote.toml is out of date: run "
        "'holdnote check-config --template > config/holdnote.toml'"
    )
    assert config.load(REPO / "config" / "holdnote.toml") == config.Config()


def test_every_key_has_a_description_and_a_default():
    text = config.render_template()
    for section_name in config.Config.model_fields:
        section = getattr(config.Config(), section_name)
        for key, field in type(section).model_fields.items():
            assert field.description, f"{section_name}.{key} has no description"
            assert field.description in text
            assert key in text


def test_unknown_key_is_named_with_its_path(tmp_path):
    path = tmp_path / "holdnote.toml"
    path.write_text("[audio]\nsample_rat = 16000\n")
    with pytest.raises(ConfigError) as caught:
        config.load(path)
    assert caught.value.problems == [
        "audio.sample_rat: unknown key (check the spelling against config/holdnote.toml)"
    ]


def test_unknown_section_is_rejected():
    with pytest.raises(ConfigError, match="gpu: unknown key"):
        config.from_dict({"gpu": {"enabled": True}})


@pytest.mark.parametrize(
    "data, path",
    [
        ({"audio": {"sample_rate": 4000}}, "audio.sample_rate"),
        ({"audio": {"channels": 3}}, "audio.channels"),
        ({"gpio": {"record_button_pin": 40}}, "gpio.record_button_pin"),
        ({"notes": {"template": "SOAPY"}}, "notes.template"),
        ({"transcription": {"night_start": "24:10"}}, "transcription.night_start"),
        ({"web": {"allowed_networks": ["10.0.0.0/33"]}}, "web.allowed_networks"),
        ({"security": {"scrypt_work_factor": 30}}, "security.scrypt_work_factor"),
        ({"web": {"port": "eighty"}}, "web.port"),
    ],
)
def test_out_of_range_values_name_the_key(data, path):
    with pytest.raises(ConfigError) as caught:
        config.from_dict(data)
    assert len(caught.value.problems) == 1
    assert caught.value.problems[0].startswith(path + ":")


@pytest.mark.parametrize(
    "data, path, reason",
    [
        ({"web": {"allowed_networks": ["0.0.0.0/0"]}}, "web.allowed_networks", "every address"),
        ({"web": {"allowed_networks": ["::/0"]}}, "web.allowed_networks", "every address"),
        ({"web": {"allowed_networks": ["10.0.0.0/24", "8.8.8.0/24"]}}, "web.allowed_networks",
         "'8.8.8.0/24' includes public internet addresses"),
        ({"web": {"allowed_networks": ["192.168.0.0/15"]}}, "web.allowed_networks",
         "public internet addresses"),
        ({"web": {"allowed_networks": ["2001:db8::/32"]}}, "web.allowed_networks",
         "public internet addresses"),
        ({"recorder": {"stop_free_mb": 1024}}, "recorder.stop_free_mb",
         "not below recorder.min_free_mb (1024 MB)"),
        ({"recorder": {"min_free_mb": 100, "stop_free_mb": 300}}, "recorder.stop_free_mb",
         "not below recorder.min_free_mb (100 MB)"),
        ({"web": {"bind": "localhost"}}, "web.bind", "not an IP address"),
        ({"web": {"bind": "0.0.0.0:8443"}}, "web.bind", "not an IP address"),
        ({"paths": {"recorder_socket": "/run/" + "r" * 100 + ".sock"}}, "paths.recorder_socket",
         "at most 107"),
        ({"paths": {"data_dir": "var/lib/holdnote"}}, "paths.data_dir", "relative path"),
        ({"paths": {"data_dir": "./data"}}, "paths.data_dir", "relative path"),
    ],
)
def test_settings_that_would_misbehave_are_refused_with_key_and_reason(data, path, reason):
    with pytest.raises(ConfigError) as caught:
        config.from_dict(data)
    assert len(caught.value.problems) == 1, caught.value.problems
    problem = caught.value.problems[0]
    assert problem.startswith(path + ": ") and reason in problem, problem
    assert "Value error" not in problem


def test_private_networks_addresses_and_limits_are_accepted():
    cfg = config.from_dict({
        "web": {"allowed_networks": ["100.64.0.0/10", "10.8.0.0/24", "fd12:3456::/48"],
                "bind": "::"},
        "recorder": {"min_free_mb": 300, "stop_free_mb": 299},
        "paths": {"recorder_socket": "/run/" + "r" * (config.MAX_SOCKET_PATH_BYTES - 5)},
    })
    assert len(bytes(cfg.paths.recorder_socket)) == 107
    assert config.from_dict({"web": {"bind": "192.168.1.20"}}).web.bind == "192.168.1.20"


def test_check_config_names_every_refused_setting(tmp_path):
    path = tmp_path / "holdnote.toml"
    path.write_text('[paths]\ndata_dir = "data"\n[recorder]\nstop_free_mb = 2048\n'
                    '[web]\nbind = "my-pi"\nallowed_networks = ["0.0.0.0/0"]\n')
    result = run_cli("check-config", str(path))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    for key in ("paths.data_dir", "recorder.stop_free_mb", "web.bind", "web.allowed_networks"):
        assert f"  {key}: " in result.stderr
    service = run_cli("--config", str(path), "keys", "status")
    assert service.returncode == 2 and str(path) in service.stderr and "web.bind" in service.stderr


def test_a_file_that_is_not_utf8_is_one_error_naming_the_line(tmp_path):
    path = tmp_path / "holdnote.toml"
    path.write_bytes(b'[speakers]\nclinician_name = "Dr. M\xfcller"\n')
    with pytest.raises(ConfigError, match=r"not UTF-8 text \(byte 0xfc on line 2\)"):
        config.load(path)
    path.write_bytes(b"\xef\xbb\xbf[speakers]\ncount = 3\n")  # a byte-order mark is fine
    assert config.load(path).speakers.count == 3


def test_every_problem_is_reported_at_once():
    with pytest.raises(ConfigError) as caught:
        config.from_dict({"audio": {"channels": 9}, "web": {"idle_minutes": 0}})
    assert {p.split(":")[0] for p in caught.value.problems} == {"audio.channels", "web.idle_minutes"}


def test_partial_file_keeps_other_defaults(tmp_path):
    path = tmp_path / "holdnote.toml"
    path.write_text('[notes]\ntemplate = "DAP"\n[web]\nallowed_networks = ["100.64.0.0/10"]\n')
    loaded = config.load(path)
    assert loaded.notes.template == "DAP"
    assert loaded.web.allowed_networks == ["100.64.0.0/10"]
    assert loaded.audio == config.Audio()


def test_malformed_toml_is_one_clear_error(tmp_path):
    path = tmp_path / "holdnote.toml"
    path.write_text("[audio\nchannels = 1\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        config.load(path)


def test_named_missing_file_is_an_error_but_default_location_is_not(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="no such configuration file"):
        config.load(tmp_path / "absent.toml")
    monkeypatch.delenv(config.ENV_VAR, raising=False)
    monkeypatch.setattr(config, "DEFAULT_PATH", tmp_path / "absent.toml")
    assert config.load() == config.Config()


def test_environment_variable_overrides_the_path(tmp_path, monkeypatch):
    path = tmp_path / "custom.toml"
    path.write_text("[speakers]\ncount = 3\n")
    monkeypatch.setenv(config.ENV_VAR, str(path))
    assert config.load().speakers.count == 3


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "appliance.app.cli", *args],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=60,
    )


def test_check_config_exit_codes(tmp_path):
    good = tmp_path / "good.toml"
    good.write_text("[audio]\nchannels = 2\n")
    bad = tmp_path / "bad.toml"
    bad.write_text("[audio]\nchannels = 5\nmystery = 1\n")
    ok = run_cli("check-config", str(good))
    assert ok.returncode == 0, ok.stderr
    assert "OK" in ok.stdout
    failed = run_cli("check-config", str(bad))
    assert failed.returncode == 2
    assert "audio.channels" in failed.stderr
    assert "audio.mystery: unknown key" in failed.stderr


def test_check_config_reads_holdnote_config(tmp_path):
    import os

    bad = tmp_path / "bad.toml"
    bad.write_text("[web]\nport = 0\n")
    result = run_cli("check-config", env={**os.environ, config.ENV_VAR: str(bad)})
    assert result.returncode == 2
    assert "web.port" in result.stderr


def test_speaker_count_is_one_to_six_or_auto(tmp_path):
    path = tmp_path / "holdnote.toml"
    path.write_text('[speakers]\ncount = "auto"\n')
    assert config.load(path).speakers.count == "auto"
    for bad in ("0", "7", '"several"'):
        path.write_text(f"[speakers]\ncount = {bad}\n")
        with pytest.raises(ConfigError, match="speakers.count"):
            config.load(path)
