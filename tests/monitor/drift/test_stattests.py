"""Each drift test names the Evidently test it reproduces; a name the installed Evidently lacks is refused
loudly, naming the test, before any window's report is attempted."""

from __future__ import annotations

import subprocess
import sys

import pytest
from evidently.legacy.calculations.stattests.registry import get_registered_stattest
from evidently.legacy.core import ColumnType

from forwardlab.monitor.drift.stats import ColumnPair
from forwardlab.monitor.drift.stattests import STATTESTS, ChiSquare, StatTest, check_in_evidently, register
from forwardlab.monitor.errors import StatTestError

COLUMN_TYPES = {"numerical": ColumnType.Numerical, "categorical": ColumnType.Categorical}


@pytest.mark.parametrize("key", sorted(STATTESTS))
def test_every_registered_test_is_evidentlys_by_name_kind_and_display_name(key: str) -> None:
    test = STATTESTS[key]
    assert "evidently_name" in type(test).__dict__  # declared by the test itself, not inherited
    for kind in test.kinds:
        theirs = get_registered_stattest(test.evidently_name, COLUMN_TYPES[kind])
        assert theirs.name == test.evidently_name
        assert theirs.display_name == test.display_name  # what results record is what Evidently's pages print


def test_the_registry_passes_the_evidently_check() -> None:
    assert set(STATTESTS) == {"ks", "chisquare", "z", "wasserstein", "jensenshannon", "psi"}
    check_in_evidently()


class _Unknown(StatTest):
    key, evidently_name, display_name, default_threshold = "unknown", "no_such_evidently_test", "Unknown", 0.1
    kinds = frozenset({"numerical"})

    def _score(self, pair: ColumnPair) -> float:
        return 0.0


class _NumericalChiSquare(ChiSquare):
    key, evidently_name = "chisquare-numbers", "chisquare"
    kinds = frozenset({"numerical", "categorical"})


def test_a_name_evidently_lacks_is_refused_naming_the_test() -> None:
    with pytest.raises(StatTestError, match="unknown names Evidently test 'no_such_evidently_test', which Evidently"):
        check_in_evidently([STATTESTS["psi"], _Unknown()])


def test_a_kind_evidentlys_test_does_not_take_is_refused() -> None:
    with pytest.raises(StatTestError, match="chisquare-numbers takes numerical columns, Evidently's 'chisquare' does"):
        check_in_evidently([_NumericalChiSquare()])


def test_registration_needs_an_explicit_evidently_name_and_a_new_key() -> None:
    class Inherited(ChiSquare):  # a new key, but Evidently's name only by inheritance
        key = "chisquare-copy"

    class Again(ChiSquare):
        evidently_name = "chisquare"

    before = dict(STATTESTS)
    with pytest.raises(StatTestError, match="Inherited: declare evidently_name"):
        register(Inherited)
    with pytest.raises(StatTestError, match="key 'chisquare' is already ChiSquare's"):
        register(Again)
    assert before == STATTESTS


def test_rendering_reports_refuses_to_start_when_evidently_lacks_a_test() -> None:
    """Importing `reports` (what a run with reports, and `drift --html`, do first) checks every registered test."""
    script = (
        "from forwardlab.monitor.drift.stattests import register\n"
        "from tests.monitor.drift.test_stattests import _Unknown\n"
        "register(_Unknown)\n"
        "import forwardlab.monitor.reports\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "StatTestError: drift tests Evidently cannot run: unknown names Evidently test" in done.stderr
