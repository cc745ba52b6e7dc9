"""Configuration: defaults, files in three formats, validation with messages that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from sniffer.config import ConfigError, load_config


def test_defaults_bound_memory() -> None:
    limits = load_config().flow_limits()
    assert (limits.max_flows, limits.max_buffered_bytes, limits.parser.max_header_bytes) == (100_000, 1 << 20, 65536)


@pytest.mark.parametrize(
    ("suffix", "text"),
    [
        (".toml", "[flows]\nmax_flows = 7\n[identity]\ntrusted_proxies = ['10.0.0.0/8']\n"),
        (".yaml", "flows:\n  max_flows: 7\nidentity:\n  trusted_proxies: [10.0.0.0/8]\n"),
        (".json", '{"flows": {"max_flows": 7}, "identity": {"trusted_proxies": ["10.0.0.0/8"]}}'),
    ],
)
def test_config_file_formats(tmp_path: Path, suffix: str, text: str) -> None:
    path = tmp_path / f"apispy{suffix}"
    path.write_text(text)
    config = load_config(str(path))
    assert config.flows.max_flows == 7
    assert config.identity.trusted_proxies == ["10.0.0.0/8"]


def test_overrides_win_over_the_file(tmp_path: Path) -> None:
    path = tmp_path / "apispy.toml"
    path.write_text("[flows]\nmax_flows = 7\n")
    assert load_config(str(path), {"flows": {"max_flows": 9}}).flows.max_flows == 9


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"flow": {}}, "unknown config key flow"),
        ({"flows": {"max_flows": "many"}}, "config key flows.max_flows must be a number, not 'many'"),
        ({"flows": {"max_flows": -1}}, "config key flows.max_flows must not be negative"),
        ({"flows": {"max_flows": 0}}, "config key flows.max_flows must be at least 1"),
        ({"detectors": {"batch_size": 0}}, "config key detectors.batch_size must be from 1 to 1,000,000"),
        ({"detectors": {"batch_size": 10**12}}, "config key detectors.batch_size must be from 1 to 1,000,000"),
        ({"detectors": {"max_batch_body_bytes": 1e30}},
         "config key detectors.max_batch_body_bytes must be at most 4,611,686,018,427,387,904, not 1e+30"),
        ({"flows": {"max_buffered_bytes": 2**70}}, "config key flows.max_buffered_bytes must be at most"),
        ({"flows": 3}, "config key flows must be a section"),
        ({"metrics": {"interval_s": 0}}, "config key metrics.interval_s must be from 0.001 to 1,000,000,000 s"),
        # Under a nanosecond: no interval at all (a division by zero when the first transaction came).
        ({"metrics": {"interval_s": 1e-12}}, "config key metrics.interval_s must be from 0.001 to 1,000,000,000 s"),
        # In nanoseconds, past what the compiled build's C integer holds.
        ({"metrics": {"interval_s": 1e10}}, "config key metrics.interval_s must be from 0.001 to 1,000,000,000 s"),
    ],
)
def test_bad_values_name_the_key(values: dict, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(overrides=values)
    assert str(error.value).startswith(message)


def test_unreadable_config_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("[flows\n")
    with pytest.raises(ConfigError) as error:
        load_config(str(path))
    assert str(error.value).startswith(f"config file {path}: not valid toml:")
    assert "\n" not in str(error.value)


def test_environment_sits_between_the_file_and_the_flags(tmp_path: Path) -> None:
    path = tmp_path / "apispy.toml"
    path.write_text("[influx]\nurl = 'http://file:8086'\nbucket = 'from-file'\norg = 'file-org'\n")
    environment = {"INFLUX_URL": "http://env:8086", "INFLUX_BUCKET": "from-env", "INFLUX_TOKEN": "t"}
    config = load_config(str(path), {"influx": {"bucket": "from-flag"}}, environment)
    assert (config.influx.url, config.influx.bucket, config.influx.org, config.influx.token) == (
        "http://env:8086", "from-flag", "file-org", "t")


def test_list_valued_settings_load_as_lists_and_sections_check_their_values(tmp_path: Path) -> None:
    path = tmp_path / "apispy.toml"
    path.write_text("[detectors.payload]\njwt_expected_words = ['auth', 'sso']\n")
    assert load_config(str(path)).detectors.payload.jwt_expected_words == ("auth", "sso")
    path.write_text("[detectors.shadow]\nmin_count = 0\n")
    with pytest.raises(ConfigError) as error:
        load_config(str(path))
    assert str(error.value).startswith("config section detectors.shadow: ")
