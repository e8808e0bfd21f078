"""The README's examples of the host and template store conformance suites run as a third party
would run them, and the suites fail what breaks the contract."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def example(heading: str) -> str:
    section = README.split(heading, 1)[1].split("\n### ", 1)[0].split("\n## ", 1)[0]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, f"the README's {heading!r} section has no example"
    return match.group(1)


HOST = example("### A host's adapter: `HostConformance`")
STORE = example("### A template store: `TemplateStoreConformance`")
CHECKS = 11


def test_the_readmes_host_passes_the_host_conformance_suite(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_adapter=HOST)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=CHECKS)


def test_the_host_suite_fails_a_host_whose_links_disagree(pytester: pytest.Pytester) -> None:
    broken = HOST.replace(
        "return demo_host()  #",
        "host = demo_host()\n        host.guarantors['demo']['g-tom']['patient_ids'] = []\n"
        "        return host  #",
    )
    assert broken != HOST
    pytester.makepyfile(test_adapter=broken)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=CHECKS - 1, failed=1)
    result.stdout.fnmatch_lines(
        ["*pm_guarantor(practice_id='demo', guarantor_id='g-tom'): patient_ids lacks 'p-lily'*"]
    )


def test_the_readmes_store_passes_the_template_store_suite(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_store=STORE)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=CHECKS)


def test_the_store_suite_fails_a_store_that_ignores_the_practice(
    pytester: pytest.Pytester,
) -> None:
    careless = (
        STORE.replace(
            "self.templates[(practice_id, template.id)]", "self.templates[('all', template.id)]"
        )
        .replace("if practice == practice_id]", "]")
        .replace(
            "self.templates.get((practice_id, template_id))",
            "self.templates.get(('all', template_id))",
        )
        .replace(
            "self.templates.pop((practice_id, template_id), None)",
            "self.templates.pop(('all', template_id), None)",
        )
    )
    assert careless != STORE
    pytester.makepyfile(test_store=careless)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=CHECKS - 3, failed=3)
    result.stdout.fnmatch_lines(["*'conformance-pr10' lists 'conformance-pr1''s templates*"])
