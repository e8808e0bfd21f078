"""The pytest kit a host or plugin author gets from ``pip install``: the README's example runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def readme_kit_example() -> str:
    section = README.split("## Testing a host or a plugin", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, "the README's testing section has no example"
    return match.group(1)


def test_the_readme_example_passes_with_the_fixtures_from_the_entry_point(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_observer=readme_kit_example())
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_a_failing_expectation_in_a_kit_test_fails(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_observer=readme_kit_example().replace('== ["sent"]', '== ["failed"]'))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
