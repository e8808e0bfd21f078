"""The template store conformance suite: does a store honour the contract the plugin relies on?

The author of an ``ondemand_template_store`` subclasses ``TemplateStoreConformance`` in a test
module and says how to make the store (an empty one, each time); pytest runs every check below
against it::

    class TestCmsTemplateStore(TemplateStoreConformance):
        @pytest.fixture(autouse=True)
        def _cms(self, tmp_path):
            self.cms_url = start_test_cms(tmp_path)

        def make_store(self):
            return CmsTemplateStore(self.cms_url)

Checked: the four methods of ``hookspecs.TemplateStore``; a template saved is got back as it was
saved, every field, under its id exactly (ids differing only in case are two templates); saving
an id again updates it (insert or update, never a second copy); inactive templates are listed
too (the plugin, not the store, leaves them out of the send dialog); delete answers whether it
deleted; and each practice sees only its own: a store must refuse to show, change or delete a
template of another practice, even one whose practice id is a prefix or differs in case.
Everything it answers is a ``hookspecs.Template`` that follows ``contracts/template.json``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from hookspecs.types import Template, TemplateStore
from ondemand_plugin.boundary.extensions import TEMPLATE_STORE_METHODS
from ondemand_plugin.rules.templates import template_problem

PRACTICE = "conformance-pr1"
# Practices whose ids a careless store could confuse with PRACTICE's.
NEIGHBOURS = ("conformance-pr10", "Conformance-PR1", "conformance-pr")


def sample_template(template_id: str = "tpl_reminder", **changes: Any) -> Template:
    """A text template; ``changes`` replace its fields."""
    fields: dict[str, Any] = {
        "id": template_id,
        "label": "Balance reminder",
        "mode": "text",
        "body": "Hi {{PatientFirstName}}, your balance is {{BalanceDue}}: {{QuickPayLink}}",
        "active": True,
        "sender_email": None,
        "subject": None,
    }
    fields.update(changes)
    return Template(**fields)


def email_template(template_id: str = "tpl_email") -> Template:
    return sample_template(
        template_id,
        label="Statement by e-mail",
        mode="email",
        body="<p>Dear {{GuarantorFirstName}},</p><p>You owe {{BalanceDue}}. Merci — 谢谢.</p>",
        sender_email="billing@maplestreet.example.com",
        subject="Your balance with {{PracticeName}}",
    )


class TemplateStoreConformance:
    """Subclass as ``Test...`` and implement ``make_store``."""

    def make_store(self) -> TemplateStore:
        raise NotImplementedError("Return a new, empty instance of the template store under test.")

    def close_store(self, store: TemplateStore) -> None:
        """Called after each check; closes a store that has ``close()``."""
        close = getattr(store, "close", None)
        if callable(close):
            close()

    @pytest.fixture
    def store(self) -> Iterator[TemplateStore]:
        made = self.make_store()
        yield made
        self.close_store(made)

    # The checks

    def test_the_store_has_the_four_methods(self, store: TemplateStore) -> None:
        missing = [name for name in TEMPLATE_STORE_METHODS if not callable(getattr(store, name, 0))]
        assert not missing, f"the store has no {', '.join(missing)} method"
        assert isinstance(store, TemplateStore)

    def test_a_practice_without_templates_lists_none(self, store: TemplateStore) -> None:
        assert listed(store, PRACTICE) == []
        assert store.get_template(PRACTICE, "tpl_reminder") is None

    def test_a_saved_template_is_got_back_and_listed_as_it_was_saved(
        self, store: TemplateStore
    ) -> None:
        for template in (sample_template(), email_template()):
            store.save_template(PRACTICE, template)
            assert got(store, PRACTICE, template.id) == template
        assert sorted(listed(store, PRACTICE), key=lambda t: t.id) == [
            email_template(),
            sample_template(),
        ]

    def test_the_longest_body_is_kept_exactly(self, store: TemplateStore) -> None:
        body = ("Línea {{BalanceDue}} \u2014 \U0001f4b3\n" * 1000)[:20000]
        store.save_template(PRACTICE, sample_template(body=body))
        kept = got(store, PRACTICE, "tpl_reminder")
        assert kept is not None and kept.body == body, "the body came back changed"

    def test_ids_are_kept_exactly_and_ids_differing_in_case_are_two_templates(
        self, store: TemplateStore
    ) -> None:
        ids = ["tpl_A", "tpl_a", "a.b:c@d-e_f", "7" + "x" * 63]
        for number, template_id in enumerate(ids):
            store.save_template(PRACTICE, sample_template(template_id, label=f"Label {number}"))
        for number, template_id in enumerate(ids):
            kept = got(store, PRACTICE, template_id)
            assert kept is not None, f"the template {template_id!r} is not got back by its id"
            assert kept.label == f"Label {number}", f"{template_id!r} answers another template"
        assert sorted(t.id for t in listed(store, PRACTICE)) == sorted(ids)

    def test_saving_an_id_again_updates_that_template(self, store: TemplateStore) -> None:
        store.save_template(PRACTICE, sample_template())
        changed = email_template("tpl_reminder")
        store.save_template(PRACTICE, changed)
        assert got(store, PRACTICE, "tpl_reminder") == changed
        assert listed(store, PRACTICE) == [changed], "saving an id again must not add a copy"

    def test_inactive_templates_are_kept_and_listed(self, store: TemplateStore) -> None:
        store.save_template(PRACTICE, sample_template("tpl_on"))
        store.save_template(PRACTICE, sample_template("tpl_off", active=False))
        states = {template.id: template.active for template in listed(store, PRACTICE)}
        assert states == {"tpl_on": True, "tpl_off": False}
        store.save_template(PRACTICE, sample_template("tpl_off", active=True))
        kept = got(store, PRACTICE, "tpl_off")
        assert kept is not None and kept.active, "switching a template back on was not saved"

    def test_delete_answers_whether_it_deleted_and_leaves_the_others(
        self, store: TemplateStore
    ) -> None:
        store.save_template(PRACTICE, sample_template("tpl_1"))
        store.save_template(PRACTICE, sample_template("tpl_2"))
        assert store.delete_template(PRACTICE, "tpl_1") is True
        assert store.get_template(PRACTICE, "tpl_1") is None
        assert store.delete_template(PRACTICE, "tpl_1") is False, "a second delete deleted"
        assert store.delete_template(PRACTICE, "tpl_never") is False
        assert [t.id for t in listed(store, PRACTICE)] == ["tpl_2"]

    def test_a_practice_sees_only_its_own_templates(self, store: TemplateStore) -> None:
        ours = sample_template("tpl_shared", label="Ours")
        store.save_template(PRACTICE, ours)
        for neighbour in NEIGHBOURS:
            assert listed(store, neighbour) == [], f"{neighbour!r} lists {PRACTICE!r}'s templates"
            assert store.get_template(neighbour, "tpl_shared") is None, (
                f"{neighbour!r} gets {PRACTICE!r}'s template by its id"
            )

    def test_a_store_refuses_to_delete_another_practices_template(
        self, store: TemplateStore
    ) -> None:
        ours = sample_template("tpl_shared", label="Ours")
        store.save_template(PRACTICE, ours)
        for neighbour in NEIGHBOURS:
            assert store.delete_template(neighbour, "tpl_shared") is False, (
                f"{neighbour!r} deleted {PRACTICE!r}'s template"
            )
        assert got(store, PRACTICE, "tpl_shared") == ours

    def test_a_store_refuses_to_change_another_practices_template_with_the_same_id(
        self, store: TemplateStore
    ) -> None:
        ours = sample_template("tpl_shared", label="Ours")
        store.save_template(PRACTICE, ours)
        theirs = sample_template("tpl_shared", label="Theirs", body="Pay now")
        store.save_template(NEIGHBOURS[0], theirs)
        assert got(store, PRACTICE, "tpl_shared") == ours, "another practice's save changed ours"
        assert got(store, NEIGHBOURS[0], "tpl_shared") == theirs
        assert listed(store, PRACTICE) == [ours]
        store.delete_template(NEIGHBOURS[0], "tpl_shared")
        assert got(store, PRACTICE, "tpl_shared") == ours, "another practice's delete took ours"


def got(store: TemplateStore, practice_id: str, template_id: str) -> Template | None:
    """``get_template``'s answer, checked to be a valid template or None."""
    answer = store.get_template(practice_id, template_id)
    if answer is not None:
        problem = template_problem(answer)
        assert problem is None, f"get_template answered a template that {problem}"
        assert answer.id == template_id, f"get_template({template_id!r}) answered {answer.id!r}"
    return answer


def listed(store: TemplateStore, practice_id: str) -> list[Template]:
    """``list_templates``' answer, checked to be a list of valid templates with distinct ids."""
    answer = store.list_templates(practice_id)
    assert isinstance(answer, list), f"list_templates answered a {type(answer).__name__}"
    for template in answer:
        problem = template_problem(template)
        assert problem is None, f"list_templates answered a template that {problem}"
    ids = [template.id for template in answer]
    twice = sorted({template_id for template_id in ids if ids.count(template_id) > 1})
    assert not twice, (
        f"list_templates answered {', '.join(map(repr, twice))} more than once: saving an id "
        "again must update its template, not add a copy"
    )
    return answer


__all__ = ["TemplateStoreConformance", "email_template", "sample_template"]
