"""The README's plain ``pytest`` runs the PostgreSQL tests wherever a server can be found."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from conftest import DEFAULT_POSTGRES_URLS, located_postgres


def _local_server_answers() -> bool:
    try:
        psycopg.connect(DEFAULT_POSTGRES_URLS[0], connect_timeout=3).close()
    except psycopg.Error:
        return False
    return True


@pytest.mark.skipif(
    not _local_server_answers(), reason="No PostgreSQL server answers at 127.0.0.1:5432."
)
def test_the_local_server_is_found_without_any_variable(tmp_path: Path) -> None:
    with located_postgres({}, tmp_path) as url:
        assert url == DEFAULT_POSTGRES_URLS[0]
        with psycopg.connect(url) as connection:
            assert connection.execute("SELECT 1").fetchone() == (1,)


def test_a_named_server_that_does_not_answer_is_named_in_the_skip(tmp_path: Path) -> None:
    unreachable = {"ONDEMAND_TEST_POSTGRES_URL": "postgresql://nobody@127.0.0.1:9/none"}
    with (
        pytest.MonkeyPatch.context() as patch,
        pytest.raises(pytest.skip.Exception, match="ONDEMAND_TEST_POSTGRES_URL names"),
    ):
        patch.delenv("CI", raising=False)
        with located_postgres(unreachable, tmp_path):
            pass
