"""The house-price model: the prototype's pipeline, trained by grid search, saved with its metadata.

Pipeline: numeric features mean-imputed, standardized then min-max scaled; categorical features
most-frequent-imputed and one-hot encoded (unknown categories ignored); Ridge regression on
log10(price), inverted on output. Alpha is chosen from 0.1..0.9 by 5-fold CV on mean absolute error.

An artifact is a folder `MODEL_DIR/VERSION/` holding `model.pkl` and `metadata.json`; `MODEL_DIR/LATEST`
names the newest. The version is a hash of what determines the fitted model (data, features, alphas,
library versions), so retraining on the same inputs gives the same version. The pickle is our own
artifact, written by `save_model`; `load_model` checks its sha256 and the metadata before unpickling.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sklearn
from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, StandardScaler

from forwardlab.fileio import atomic_path, write_text_atomic
from forwardlab.monitor.errors import ModelError
from forwardlab.monitor.features import HOUSE

DEFAULT_ALPHAS = tuple(round(a, 1) for a in np.arange(0.1, 1.0, 0.1))
CV_FOLDS = 5
FORMAT_VERSION = 1
MODEL_FILE, METADATA_FILE, LATEST_FILE = "model.pkl", "metadata.json", "LATEST"


@dataclass(frozen=True)
class ModelMetadata:
    """Everything needed to trust a loaded artifact and to say where its predictions came from."""

    format_version: int
    version: str
    trained_at: str
    numeric_features: list[str]
    categorical_features: list[str]
    feature_types: dict[str, str]
    target: str
    train_rows: int
    train_sold_from: str
    train_sold_to: str
    data_sha256: str
    alphas: list[float]
    cv_folds: int
    best_alpha: float
    cv_mae_usd: float
    libraries: dict[str, str]
    model_sha256: str = ""


@dataclass
class PriceModel:
    """A fitted pipeline with its metadata; `predict` takes feature records and returns prices in USD."""

    pipeline: Pipeline
    metadata: ModelMetadata

    @property
    def version(self) -> str:
        return self.metadata.version

    def predict(self, records: Sequence[Mapping[str, Any]] | pd.DataFrame) -> np.ndarray:
        frame = records if isinstance(records, pd.DataFrame) else HOUSE.frame(records)
        return np.asarray(self.pipeline.predict(frame[list(HOUSE.names)]), dtype=float)


def build_pipeline() -> Pipeline:
    numeric = Pipeline(
        [
            ("impute", SimpleImputer(strategy="mean")),
            ("standardize", StandardScaler()),
            ("scale", MinMaxScaler()),
        ]
    )
    categorical = Pipeline(
        [
            ("impute", SimpleImputer(strategy="most_frequent")),
            ("one-hot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
        ]
    )
    preprocess = ColumnTransformer(
        [
            ("numerical", numeric, list(HOUSE.numerical)),
            ("categorical", categorical, list(HOUSE.categorical)),
        ]
    )
    regressor = TransformedTargetRegressor(regressor=Ridge(), func=np.log10, inverse_func=_exp10)
    return Pipeline([("preprocess", preprocess), ("model", regressor)])


def _exp10(x: np.ndarray) -> np.ndarray:
    return np.power(10.0, x)


def data_sha256(train: pd.DataFrame) -> str:
    """A hash of the training rows the model sees (features and target), independent of file format."""
    columns = [*HOUSE.names, HOUSE.target]
    row_hashes = pd.util.hash_pandas_object(train[columns], index=False).to_numpy()
    return hashlib.sha256(row_hashes.tobytes()).hexdigest()


def library_versions() -> dict[str, str]:
    return {"scikit-learn": sklearn.__version__, "numpy": np.__version__, "pandas": pd.__version__}


def train(train_df: pd.DataFrame, *, alphas: Sequence[float] = DEFAULT_ALPHAS, n_jobs: int = 1) -> PriceModel:
    """Grid-search alpha by 5-fold CV (MAE), refit on all rows, and describe the result."""
    missing = [c for c in (*HOUSE.names, HOUSE.target, "date_sold") if c not in train_df.columns]
    if missing:
        raise ModelError(f"training data: missing column(s) {', '.join(missing)}")
    if len(train_df) < CV_FOLDS * 2:
        raise ModelError(f"training data: {len(train_df)} rows, need at least {CV_FOLDS * 2}")
    search = GridSearchCV(
        build_pipeline(),
        param_grid={"model__regressor__alpha": list(alphas)},
        cv=CV_FOLDS,
        scoring="neg_mean_absolute_error",
        n_jobs=n_jobs,
    )
    search.fit(train_df[list(HOUSE.names)], train_df[HOUSE.target])
    sold = pd.to_datetime(train_df["date_sold"])
    data_hash, alpha_grid = data_sha256(train_df), [float(a) for a in alphas]
    identity = [list(HOUSE.names), data_hash, alpha_grid, library_versions()]
    version = "price-ridge-" + hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12]
    metadata = ModelMetadata(
        format_version=FORMAT_VERSION,
        version=version,
        trained_at=datetime.now(UTC).isoformat(timespec="seconds"),
        numeric_features=list(HOUSE.numerical),
        categorical_features=list(HOUSE.categorical),
        feature_types=HOUSE.types,
        target=HOUSE.target,
        train_rows=len(train_df),
        train_sold_from=str(sold.min().date()),
        train_sold_to=str(sold.max().date()),
        data_sha256=data_hash,
        alphas=alpha_grid,
        cv_folds=CV_FOLDS,
        best_alpha=float(search.best_params_["model__regressor__alpha"]),
        cv_mae_usd=float(-search.best_score_),
        libraries=library_versions(),
    )
    return PriceModel(search.best_estimator_, metadata)


def save_model(model: PriceModel, model_dir: str | Path) -> Path:
    """Write `model_dir/VERSION/{model.pkl,metadata.json}` and point `model_dir/LATEST` at it.

    The pickle goes first and the metadata (holding the pickle's sha256) last, each atomically, so a
    folder with metadata always has the complete model it describes.
    """
    root = Path(model_dir)
    folder = root / model.version
    payload = pickle.dumps(model.pipeline, protocol=pickle.HIGHEST_PROTOCOL)
    with atomic_path(folder / MODEL_FILE) as tmp:
        tmp.write_bytes(payload)
    meta = asdict(model.metadata) | {"model_sha256": hashlib.sha256(payload).hexdigest()}
    write_text_atomic(folder / METADATA_FILE, json.dumps(meta, indent=2) + "\n")
    write_text_atomic(root / LATEST_FILE, model.version + "\n")
    return folder


def resolve_model_dir(path: str | Path) -> Path:
    """A version folder as given, or the one a model root's LATEST names."""
    path = Path(path)
    if (path / METADATA_FILE).is_file():
        return path
    latest = path / LATEST_FILE
    if latest.is_file():
        return path / latest.read_text(encoding="utf-8").strip()
    raise ModelError(
        f"{path}: not a model folder (no {METADATA_FILE} or {LATEST_FILE}); run `forwardlab monitor train`"
    )


def load_model(path: str | Path) -> PriceModel:
    """Load an artifact after checking its metadata: format, features, library versions, pickle hash."""
    folder = resolve_model_dir(path)
    meta_path, model_path = folder / METADATA_FILE, folder / MODEL_FILE
    try:
        raw = json.loads(meta_path.read_text(encoding="utf-8"))
        metadata = ModelMetadata(**raw)
    except FileNotFoundError:
        raise ModelError(f"{meta_path}: file does not exist") from None
    except (ValueError, TypeError) as exc:
        raise ModelError(f"{meta_path}: not valid model metadata: {exc}") from exc
    if metadata.format_version != FORMAT_VERSION:
        raise ModelError(f"{meta_path}: format version {metadata.format_version}, this code reads {FORMAT_VERSION}")
    if (tuple(metadata.numeric_features), tuple(metadata.categorical_features)) != (
        HOUSE.numerical,
        HOUSE.categorical,
    ):
        raise ModelError(
            f"{meta_path}: features {metadata.numeric_features + metadata.categorical_features} "
            f"differ from this code's {list(HOUSE.names)}"
        )
    trained_with = metadata.libraries.get("scikit-learn", "?")
    if _major_minor(trained_with) != _major_minor(sklearn.__version__):
        raise ModelError(
            f"{folder}: trained with scikit-learn {trained_with}, this is {sklearn.__version__}; retrain it"
        )
    try:
        payload = model_path.read_bytes()
    except FileNotFoundError:
        raise ModelError(f"{model_path}: file does not exist") from None
    if hashlib.sha256(payload).hexdigest() != metadata.model_sha256:
        raise ModelError(f"{model_path}: sha256 does not match {METADATA_FILE}; the file is damaged or replaced")
    pipeline = pickle.loads(payload)
    return PriceModel(pipeline, metadata)


def _major_minor(version: str) -> tuple[str, ...]:
    return tuple(version.split(".")[:2])
