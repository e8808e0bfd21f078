"""The README's plain ``pytest`` runs the MariaDB tests wherever a server answers."""

from __future__ import annotations

import pytest
from conftest import DEFAULT_MARIADB_URL, located_mariadb

UNREACHABLE = {"ONDEMAND_TEST_MARIADB_URL": "mysql://nobody@127.0.0.1:9/none"}


def test_the_local_server_is_found_without_any_variable() -> None:
    assert located_mariadb({}) == DEFAULT_MARIADB_URL


def test_a_named_server_that_does_not_answer_is_named_in_the_skip() -> None:
    with pytest.raises(pytest.skip.Exception, match=r"No MariaDB server answers at 127\.0\.0\.1:9"):
        located_mariadb(UNREACHABLE)


def test_under_ci_a_server_that_does_not_answer_fails_the_run() -> None:
    with pytest.raises(pytest.fail.Exception, match="Under CI the MariaDB tests must run"):
        located_mariadb({**UNREACHABLE, "CI": "true"})
