"""Preparation of the King County data: the prototype's cleaning, listing dates and split."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from forwardlab.errors import DownloadError
from forwardlab.monitor import data
from forwardlab.monitor.data import (
    DATA_SHA256,
    PreparedData,
    fetch_raw,
    load_raw,
    prepare,
    read_split,
)
from forwardlab.monitor.errors import DataError


def test_counts_and_split_boundaries(prepared: PreparedData, kc_csv: Path, kc_is_real: bool) -> None:
    raw = pd.read_csv(kc_csv, dtype={"id": str})
    s = prepared.summary
    if kc_is_real:  # the published file's own figures; the stand-in market has its own
        assert hashlib.sha256(kc_csv.read_bytes()).hexdigest() == DATA_SHA256
        assert (len(raw), raw["id"].duplicated().sum()) == (21613, 177)
        assert prepared.prod["date_sold"].max() < pd.Timestamp("2015-05-01")  # May 2015 is the partial month
    assert s.rows_raw == len(raw)
    assert s.duplicates_dropped == raw["id"].duplicated().sum()
    deduped = raw.drop_duplicates("id")
    q1, q3 = deduped["price"].quantile([0.25, 0.75])
    assert s.outliers_dropped == (deduped["price"] > q3 + 3 * (q3 - q1)).sum()
    assert s.rows_train + s.rows_prod + s.rows_after_last_full_month == len(deduped) - s.outliers_dropped
    train, prod = prepared.train, prepared.prod
    assert (len(train), len(prod)) == (s.rows_train, s.rows_prod)
    assert train["date_sold"].max() == pd.Timestamp("2014-10-31")
    assert prod["date_sold"].min() == pd.Timestamp("2014-11-01")
    last_month = raw["date"].str[:6].max()
    assert prod["date_sold"].max() < pd.Timestamp(f"{last_month[:4]}-{last_month[4:]}-01")  # the partial month
    assert not pd.concat([train["id"], prod["id"]]).duplicated().any()
    assert train["price"].max() <= s.price_upper_usd and prod["price"].max() <= s.price_upper_usd
    assert train["date_sold"].is_monotonic_increasing and prod["date_sold"].is_monotonic_increasing


def test_listing_dates_are_up_to_59_days_before_the_sale(prepared: PreparedData) -> None:
    both = pd.concat([prepared.train, prepared.prod])
    days = (both["date_sold"] - both["date_listed"]).dt.days
    assert days.min() == 0 and days.max() == 59
    assert days.nunique() == 60


def test_seed_changes_listing_dates_only(kc_csv: Path, prepared: PreparedData) -> None:
    raw = load_raw(kc_csv)
    again = prepare(raw, seed=42)
    pd.testing.assert_frame_equal(again.train, prepared.train)
    other = prepare(raw, seed=7)
    assert other.summary.rows_train == prepared.summary.rows_train
    merged = other.train.merge(prepared.train, on="id", suffixes=("_7", "_42"))
    assert (merged["date_sold_7"] == merged["date_sold_42"]).all()
    assert (merged["date_listed_7"] != merged["date_listed_42"]).mean() > 0.9


def test_written_files_read_back_with_their_types(prepared: PreparedData, data_dir: Path) -> None:
    train = read_split(data_dir, "train")
    pd.testing.assert_frame_equal(train, prepared.train, check_dtype=False)
    assert train["zipcode"].map(type).eq(str).all() and train["id"].str.len().eq(10).all()
    assert train["date_sold"].dtype.kind == "M"
    summary = json.loads((data_dir / "summary.json").read_text())
    assert summary["rows_prod"] == prepared.summary.rows_prod
    assert summary["source_sha256"] == ""  # prepare() on a frame knows no file; prepare_files records it


def test_missing_column_and_missing_file_name_the_input(tmp_path: Path, kc_csv: Path) -> None:
    broken = tmp_path / "broken.csv"
    pd.read_csv(kc_csv, nrows=5).drop(columns=["sqft_lot", "zipcode"]).to_csv(broken, index=False)
    with pytest.raises(DataError, match=r"broken.csv: missing column\(s\) sqft_lot, zipcode"):
        load_raw(broken)
    with pytest.raises(DataError, match=r"nothing\.csv: file does not exist"):
        fetch_raw(tmp_path / "nothing.csv")
    with pytest.raises(DataError, match=r"prod\.csv: file does not exist"):
        read_split(tmp_path, "prod")


@pytest.fixture
def file_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A local HTTP server for tmp_path/www; yields its base URL and the folder."""
    root = tmp_path / "www"
    root.mkdir()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(root), **kwargs)  # type: ignore[arg-type]

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()
    server.server_close()


def test_download_is_verified_and_cached(
    file_server: tuple[str, Path], kc_csv: Path, kc_is_real: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base, root = file_server
    monkeypatch.setenv("FORWARDLAB_HOME", str(tmp_path / "home"))
    published = hashlib.sha256(kc_csv.read_bytes()).hexdigest()
    if not kc_is_real:  # the stand-in market plays the published file, with its own digest
        monkeypatch.setattr(data, "DATA_SHA256", published)
    (root / "kc.csv").write_bytes(kc_csv.read_bytes())
    got = fetch_raw(url=f"{base}/kc.csv")
    assert got == tmp_path / "home" / "monitor" / "kc_house_data.csv"
    assert hashlib.sha256(got.read_bytes()).hexdigest() == data.DATA_SHA256 == published
    (root / "kc.csv").unlink()
    assert fetch_raw(url=f"{base}/kc.csv") == got  # served from the cache, no request needed


def test_tampered_download_is_refused_and_not_cached(
    file_server: tuple[str, Path], kc_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base, root = file_server
    monkeypatch.setenv("FORWARDLAB_HOME", str(tmp_path / "home"))
    original = kc_csv.read_bytes()
    monkeypatch.setattr(data, "DATA_SHA256", hashlib.sha256(original).hexdigest())  # a no-op on the real file
    first_price = original.index(b"\n") + original[original.index(b"\n") :].index(b",", 1) + 2  # in line 2
    tampered = bytearray(original)
    tampered[first_price] = ord("9") if tampered[first_price] != ord("9") else ord("8")
    (root / "kc.csv").write_bytes(bytes(tampered))
    with pytest.raises(DownloadError, match=r"kc.csv: sha256 mismatch: expected [0-9a-f]{64}, got [0-9a-f]{64}"):
        fetch_raw(url=f"{base}/kc.csv")
    assert not list((tmp_path / "home" / "monitor").iterdir())
    with pytest.raises(DownloadError, match=r"missing\.csv: HTTP 404"):
        fetch_raw(url=f"{base}/missing.csv")
