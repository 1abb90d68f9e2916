"""The walkthroughs run as tests (`--nbmake` in pyproject.toml executes a copy of each notebook).

Each takes about 20 s on 2 CPU cores; one that needs several times that has regressed.
"""

import pytest

NOTEBOOK_TIMEOUT_S = 120


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.suffix == ".ipynb":
            item.add_marker(pytest.mark.timeout(NOTEBOOK_TIMEOUT_S))
