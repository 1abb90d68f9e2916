"""The price model: the prototype's pipeline and grid search, and artifacts that refuse to load wrong."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import sklearn

from forwardlab.monitor.data import PreparedData
from forwardlab.monitor.errors import ModelError
from forwardlab.monitor.features import HOUSE
from forwardlab.monitor.model import (
    DEFAULT_ALPHAS,
    LATEST_FILE,
    METADATA_FILE,
    MODEL_FILE,
    PriceModel,
    load_model,
    resolve_model_dir,
)
from tests.monitor.conftest import STAND_IN_INFLATION, house


def test_metadata_describes_the_training(model: PriceModel, prepared: PreparedData) -> None:
    meta = model.metadata
    assert meta.best_alpha in DEFAULT_ALPHAS and len(meta.alphas) == 9 and meta.cv_folds == 5
    assert meta.train_rows == len(prepared.train)
    assert (meta.train_sold_from, meta.train_sold_to) == ("2014-05-02", "2014-10-31")
    assert meta.numeric_features == ["sqft_living", "sqft_lot", "sqft_above"]
    assert meta.feature_types["zipcode"] == "str" and meta.libraries["scikit-learn"] == sklearn.__version__
    assert 40_000 < meta.cv_mae_usd < 120_000
    assert meta.version.startswith("price-ridge-")


def test_predicts_production_prices_about_as_well_as_cv_says(
    model: PriceModel, prepared: PreparedData, kc_is_real: bool
) -> None:
    prod = prepared.prod
    if not kc_is_real:  # the stand-in market's prices jump later: judge the months before
        prod = prod[prod["date_sold"] < STAND_IN_INFLATION]
    prices = model.predict(prod)
    mae = np.mean(np.abs(prices - prod["price"]))
    assert mae < 1.25 * model.metadata.cv_mae_usd
    assert (prices > 0).all()


def test_one_record_at_a_time_equals_the_batch(model: PriceModel, prepared: PreparedData) -> None:
    records = prepared.prod[list(HOUSE.names)].head(20).to_dict("records")
    batch = model.predict(records)
    singles = np.array([model.predict([r])[0] for r in records])
    np.testing.assert_allclose(singles, batch, rtol=1e-12)


def test_unknown_categories_are_ignored_not_errors(model: PriceModel) -> None:
    known, unknown = model.predict([house(), house(zipcode="00000", bedrooms=40)])
    assert np.isfinite(unknown) and unknown > 0 and unknown != known


def test_saved_model_loads_and_predicts_the_same(model: PriceModel, model_dir: Path) -> None:
    loaded = load_model(model_dir)  # the root: LATEST names the version
    assert loaded.metadata.version == model.version
    assert resolve_model_dir(model_dir) == model_dir / model.version
    assert (model_dir / LATEST_FILE).read_text().strip() == model.version
    records = [house(), house(sqft_living=3000, zipcode="98004", waterfront=1)]
    np.testing.assert_array_equal(loaded.predict(records), model.predict(records))


@pytest.fixture
def artifact(model_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the saved version folder, to damage."""
    copy = tmp_path / "artifact"
    shutil.copytree(resolve_model_dir(model_dir), copy)
    return copy


def _edit_metadata(folder: Path, **changes: object) -> None:
    path = folder / METADATA_FILE
    path.write_text(json.dumps(json.loads(path.read_text()) | changes))


def test_damaged_pickle_is_refused(artifact: Path) -> None:
    payload = bytearray((artifact / MODEL_FILE).read_bytes())
    payload[len(payload) // 2] ^= 0xFF
    (artifact / MODEL_FILE).write_bytes(bytes(payload))
    with pytest.raises(ModelError, match=r"model\.pkl: sha256 does not match"):
        load_model(artifact)


def test_other_library_version_is_refused(artifact: Path) -> None:
    _edit_metadata(artifact, libraries={"scikit-learn": "0.24.2"})
    with pytest.raises(ModelError, match=r"trained with scikit-learn 0.24.2, this is .*retrain"):
        load_model(artifact)


def test_other_features_are_refused(artifact: Path) -> None:
    _edit_metadata(artifact, numeric_features=["sqft_living", "grade"])
    with pytest.raises(ModelError, match=r"features .* differ from this code"):
        load_model(artifact)


def test_not_a_model_folder(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not a model folder"):
        load_model(tmp_path)
