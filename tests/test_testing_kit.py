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


def readme_channel_example() -> tuple[str, str]:
    """The README's channel module and its conformance test."""
    section = README.split("## Write a channel", 1)[1].split("\n## ", 1)[0]
    channel, test = re.findall(r"```python\n(.*?)```", section, re.DOTALL)
    return channel, test


def test_the_readmes_channel_passes_the_conformance_suite(pytester: pytest.Pytester) -> None:
    channel, test = readme_channel_example()
    pytester.makepyfile(pigeon_channel=channel, test_pigeon=test)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=16, skipped=1)


def test_the_conformance_suite_fails_a_channel_that_leaks_its_token(
    pytester: pytest.Pytester,
) -> None:
    channel, test = readme_channel_example()
    leaky = channel.replace(
        'return "PigeonChannel()"', "return repr(self._client.headers['Authorization'])"
    )
    assert leaky != channel
    pytester.makepyfile(pigeon_channel=leaky, test_pigeon=test)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=15, failed=1, skipped=1)
    result.stdout.fnmatch_lines(["*a secret shows in a log line, an error or a repr*"])


def test_the_conformance_suite_fails_a_channel_that_retries_a_refusal(
    pytester: pytest.Pytester,
) -> None:
    channel, test = readme_channel_example()
    sloppy = channel.replace("raise PermanentDeliveryError(", "raise TransientDeliveryError(")
    assert sloppy != channel
    pytester.makepyfile(pigeon_channel=sloppy, test_pigeon=test)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=14, failed=2, skipped=1)


def test_a_failing_expectation_in_a_kit_test_fails(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_observer=readme_kit_example().replace('== ["sent"]', '== ["failed"]'))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
