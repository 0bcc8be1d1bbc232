"""The settings model: types, bounds, layering (environment > TOML > defaults), secrets, and
messages that name the variable."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from lookalike.settings import Settings, SettingsError, load_settings


def _toml(tmp_path: Path, text: str) -> dict[str, str]:
    path = tmp_path / "lookalike.toml"
    path.write_text(text)
    return {"LOOKALIKE_CONFIG": str(path)}


def test_defaults() -> None:
    s = load_settings(environ={})
    assert s.max_depth == 6 and s.crawl_ttl_hours == 168
    assert s.image_hosts == ("iiif.wellcomecollection.org",)
    assert s.neo4j_password is None and s.api_token is None


@pytest.mark.parametrize(
    ("var", "value", "message"),
    [
        (
            "LOOKALIKE_MAX_DEPTH",
            "-3",
            "LOOKALIKE_MAX_DEPTH must be a whole number from 0 to 50 (got '-3')",
        ),
        (
            "LOOKALIKE_CRAWL_BATCH",
            "101",
            "LOOKALIKE_CRAWL_BATCH must be a whole number from 1 to 100",
        ),
        ("LOOKALIKE_RATE_LIMIT", "0", "LOOKALIKE_RATE_LIMIT must be a number greater than 0"),
        ("LOOKALIKE_HTTP_TIMEOUT", "soon", "LOOKALIKE_HTTP_TIMEOUT must be a number"),
        ("LOOKALIKE_LEGACY_SIMILAR", "perhaps", "LOOKALIKE_LEGACY_SIMILAR must be true or false"),
        ("LOOKALIKE_API_MAX_NODES", "1.5", "LOOKALIKE_API_MAX_NODES must be a whole number"),
    ],
)
def test_a_bad_value_is_refused_naming_the_variable(var: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(environ={var: value})
    assert message in str(err.value)


def test_fractional_hours_work_from_the_environment_and_the_file(tmp_path: Path) -> None:
    assert load_settings(environ={"LOOKALIKE_CRAWL_TTL_HOURS": "0.5"}).crawl_ttl_hours == 0.5
    env = _toml(tmp_path, "crawl_ttl_hours = 0.5\n")
    assert load_settings(environ=env).crawl_ttl_hours == 0.5


def test_a_whole_number_setting_refuses_a_fraction_in_the_file(tmp_path: Path) -> None:
    env = _toml(tmp_path, "crawl_batch = 16.5\n")
    with pytest.raises(
        SettingsError,
        match=r"LOOKALIKE_CRAWL_BATCH must be a whole number .*"
        r"lookalike\.toml",
    ):
        load_settings(environ=env)


def test_environment_over_file_over_defaults(tmp_path: Path) -> None:
    env = _toml(tmp_path, 'rate_limit = 2\nimage_hosts = ["a.example", "b.example"]\n')
    s = load_settings(environ=env)
    assert s.rate_limit == 2 and s.image_hosts == ("a.example", "b.example")
    s = load_settings(
        environ={
            **env,
            "LOOKALIKE_RATE_LIMIT": "7.5",
            "LOOKALIKE_IMAGE_HOSTS": "c.example, d.example,",
        }
    )
    assert s.rate_limit == 7.5 and s.image_hosts == ("c.example", "d.example")
    assert load_settings(environ=env, rate_limit=9).rate_limit == 9


def test_unknown_keys_in_the_file_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"unknown settings in .*: crawl_depht"):
        load_settings(environ=_toml(tmp_path, "crawl_depht = 3\n"))
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings(environ={"LOOKALIKE_CONFIG": str(tmp_path / "missing.toml")})
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_settings(environ=_toml(tmp_path, "rate_limit = \n"))


def test_an_empty_variable_means_unset_for_optional_settings() -> None:
    s = load_settings(environ={"NEO4J_URI": "", "LOOKALIKE_API_TOKEN": ""})
    assert s.neo4j_uri is None and s.api_token is None


def test_secrets_never_print_and_survive_pickling() -> None:
    s = load_settings(
        environ={
            "NEO4J_URI": "bolt://db:7687",
            "NEO4J_PASSWORD": "pw-8d1f",
            "LOOKALIKE_API_TOKEN": "tok-93ab",
        }
    )
    for text in (repr(s), str(s), repr(s.graph()), str(s.model_dump())):
        assert "pw-8d1f" not in text and "tok-93ab" not in text
    assert s.graph().password == "pw-8d1f"
    copy = pickle.loads(pickle.dumps(s))
    assert copy == s and copy.api_token is not None
    assert copy.api_token.get_secret_value() == "tok-93ab"


def test_a_bad_secret_is_refused_without_echoing_it(tmp_path: Path) -> None:
    env = _toml(tmp_path, "api_token = 12345\n")
    with pytest.raises(SettingsError) as err:
        load_settings(environ=env)
    assert "LOOKALIKE_API_TOKEN" in str(err.value) and "12345" not in str(err.value)


def test_settings_are_frozen_and_replace_checks_the_new_values() -> None:
    s = load_settings(environ={})
    with pytest.raises(ValueError):
        s.max_depth = 3  # type: ignore[misc]
    assert s.replace(max_depth=2).max_depth == 2 and s.max_depth == 6
    with pytest.raises(SettingsError, match="LOOKALIKE_MAX_DEPTH"):
        s.replace(max_depth=-1)


def test_paths_expand_the_home_folder() -> None:
    s = load_settings(environ={"LOOKALIKE_STATE_DIR": "~/lookalike-state"})
    assert s.state_dir == Path.home() / "lookalike-state"
    assert isinstance(Settings.model_fields["state_dir"].description, str)
