"""API keys: where they come from (arguments, file, environment, in that order), file comments, and a check that
accepts exactly the configured keys while comparing with every one of them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from forwardlab.monitor.auth import (
    KEYS_ENV,
    KEYS_FILE_ENV,
    key_is_valid,
    load_api_keys,
    matches_any,
    read_keys_file,
    required_keys,
)
from forwardlab.monitor.errors import ServiceConfigError


@pytest.fixture
def keys_file(tmp_path: Path) -> Path:
    path = tmp_path / "keys.txt"
    path.write_text("# the service's keys\nalpha\n  beta  \n\n   # an indented comment\n#gamma\n")
    return path


@pytest.fixture(autouse=True)
def no_key_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEYS_ENV, raising=False)
    monkeypatch.delenv(KEYS_FILE_ENV, raising=False)


def test_a_keys_file_skips_comments_blank_lines_and_spaces(keys_file: Path) -> None:
    assert read_keys_file(keys_file) == {"alpha", "beta"}


def test_the_first_source_given_wins(keys_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_file = tmp_path / "env-keys.txt"
    env_file.write_text("from-env-file\n")
    monkeypatch.setenv(KEYS_ENV, " one, two ,, ")
    monkeypatch.setenv(KEYS_FILE_ENV, str(env_file))
    assert load_api_keys([" given "], keys_file) == {"given"}
    assert load_api_keys([], keys_file) == frozenset()  # keys given, even none, are the keys
    assert load_api_keys(None, keys_file) == {"alpha", "beta"}
    assert load_api_keys() == {"one", "two"}
    monkeypatch.setenv(KEYS_ENV, "")
    assert load_api_keys() == {"from-env-file"}
    monkeypatch.delenv(KEYS_FILE_ENV)
    assert load_api_keys() == frozenset()


def test_an_unreadable_keys_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ServiceConfigError, match=r"nowhere\.txt: cannot read the API keys file"):
        load_api_keys(None, tmp_path / "nowhere.txt")


def test_required_keys_are_cleaned_bytes_and_none_is_refused() -> None:
    assert sorted(required_keys([" a ", "b", "a", ""])) == [b"a", b"b"]
    with pytest.raises(ServiceConfigError, match=f"no API keys: pass --api-keys-file, or set {KEYS_ENV} or"):
        required_keys([" ", ""])
    with pytest.raises(ServiceConfigError, match="no API keys for the dashboard"):
        required_keys([], serving="the dashboard")


def test_only_a_configured_key_is_valid() -> None:
    keys = required_keys(["key-one-0123", "key-two-4567"])
    assert key_is_valid("key-one-0123", keys) and key_is_valid("key-two-4567", keys)
    for wrong in (None, "", "key-one-012", "key-one-01234", "KEY-ONE-0123", " key-one-0123"):
        assert not key_is_valid(wrong, keys), wrong
    assert not key_is_valid("anything", [])


def test_a_match_does_not_stop_the_comparison() -> None:
    """Every candidate is compared, wherever the match is, so timing does not tell which key (or none) matched."""
    seen: list[bytes] = []

    def candidates() -> Iterator[bytes]:
        for value in (b"first", b"second", b"third"):
            seen.append(value)
            yield value

    assert matches_any(b"first", candidates())
    assert seen == [b"first", b"second", b"third"]
    assert matches_any("tok", ["x", "tok"]) and not matches_any("tok", ["x", "toke"])
