"""The built-in drift scenarios: a synthetic market (`market`) with one known change each, and a control.

Every scenario shares the market's seed, so they differ only in the change: the no-drift control is the
same houses and prices as the others before their onset. Onset is 2015-03-01, the fifth production month,
leaving four clean windows in which any alert is a false alarm; gradual changes reach full strength over six
months. `synthetic` names the default scenario, the one `make demo` replays.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from forwardlab.monitor.errors import DataError
from forwardlab.monitor.market import ROWS_PER_MONTH, Change, generate_market

ONSET = pd.Timestamp("2015-03-01")
RAMP_MONTHS = 6.0
MARKET_SEED = 7
DEFAULT_SCENARIO = "covariate-shift-sudden"
SYNTHETIC = "synthetic"  # --data synthetic: the default scenario


@dataclass(frozen=True)
class Scenario:
    """A named market: its change (none for the control) and what a monitor should notice."""

    name: str
    description: str
    changes: tuple[Change, ...] = ()
    expected: str = "nothing"

    @property
    def onset(self) -> pd.Timestamp | None:
        return min((c.onset for c in self.changes), default=None)

    def sales(self, *, rows_per_month: int = ROWS_PER_MONTH, seed: int = MARKET_SEED) -> pd.DataFrame:
        """The scenario's raw sales, in kc_house_data.csv's columns."""
        return generate_market(self.changes, rows_per_month=rows_per_month, seed=seed)


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("no-drift", "control: a stationary market"),
        Scenario(
            "covariate-shift-sudden",
            "houses 30% larger from the onset on (prices follow the same pricing)",
            (Change("larger-houses", 0.3, ONSET),),
            "feature drift (sqft_living, sqft_above, bedrooms, bathrooms)",
        ),
        Scenario(
            "covariate-shift-gradual",
            "houses growing to 30% larger over six months",
            (Change("larger-houses", 0.3, ONSET, RAMP_MONTHS),),
            "feature drift, later and weaker at first",
        ),
        Scenario(
            "new-zipcodes",
            "25% of sales in six zip codes the model never saw",
            (Change("new-zipcodes", 0.25, ONSET),),
            "zipcode drift",
        ),
        Scenario(
            "price-inflation-sudden",
            "prices 25% higher for the same houses (concept drift)",
            (Change("price-inflation", 0.25, ONSET),),
            "target drift and MAE up, no feature drift",
        ),
        Scenario(
            "price-inflation-gradual",
            "prices rising to 25% higher over six months (concept drift)",
            (Change("price-inflation", 0.25, ONSET, RAMP_MONTHS),),
            "target drift and MAE up, later",
        ),
        Scenario(
            "correlation-change",
            "bedrooms and bathrooms follow living area less closely: only the joint distribution changes, "
            "every column's stays",
            (Change("rooms-decoupled", 0.7, ONSET),),
            "multivariate drift; per-column tests see nothing (MAE up once labels come: the model reads size "
            "partly from room counts)",
        ),
    )
}


def get_scenario(name: str) -> Scenario:
    """A scenario by name (`synthetic`: the default one); an unknown name is a `DataError` listing the known."""
    key = DEFAULT_SCENARIO if name == SYNTHETIC else name
    try:
        return SCENARIOS[key]
    except KeyError:
        raise DataError(f"scenario {name!r}: unknown (known: {SYNTHETIC}, {', '.join(SCENARIOS)})") from None


def is_scenario(name: str) -> bool:
    return name == SYNTHETIC or name in SCENARIOS
