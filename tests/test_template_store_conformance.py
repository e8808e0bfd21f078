"""The built-in template store passes the conformance suite third parties run, on each backend;
and the suite fails a store that mixes up practices or ids, saying how."""

from __future__ import annotations

from collections.abc import Callable

import attrs
import pytest

from hookspecs.types import Template, TemplateStore
from ondemand_plugin.stores import open_store
from ondemand_plugin.testing import TemplateStoreConformance


class TestBuiltInTemplateStore(TemplateStoreConformance):
    """``database_url`` is a fresh database of each backend in turn (SQLite, PostgreSQL,
    MariaDB)."""

    @pytest.fixture(autouse=True)
    def _database(self, database_url: str) -> None:
        self.database_url = database_url

    def make_store(self) -> TemplateStore:
        return open_store(self.database_url)


class MemoryTemplateStore:
    """A third party's store, kept in a dict: the smallest one that passes."""

    def __init__(self) -> None:
        self.templates: dict[tuple[str, str], Template] = {}

    def list_templates(self, practice_id: str) -> list[Template]:
        return [t for (practice, _), t in self.templates.items() if practice == practice_id]

    def get_template(self, practice_id: str, template_id: str) -> Template | None:
        return self.templates.get((practice_id, template_id))

    def save_template(self, practice_id: str, template: Template) -> None:
        self.templates[(practice_id, template.id)] = template

    def delete_template(self, practice_id: str, template_id: str) -> bool:
        return self.templates.pop((practice_id, template_id), None) is not None


class TestMemoryTemplateStore(TemplateStoreConformance):
    def make_store(self) -> TemplateStore:
        return MemoryTemplateStore()


class PrefixMatchingStore(MemoryTemplateStore):
    """Finds a practice's templates by prefix, as ``LIKE 'pr1%'`` would."""

    def list_templates(self, practice_id: str) -> list[Template]:
        return [
            t for (practice, _), t in self.templates.items() if practice.startswith(practice_id)
        ]


class CaseFoldingStore(MemoryTemplateStore):
    """Keys ids without their case, as a case-insensitive column would."""

    def get_template(self, practice_id: str, template_id: str) -> Template | None:
        return next(
            (
                t
                for (p, i), t in self.templates.items()
                if p == practice_id and i.lower() == template_id.lower()
            ),
            None,
        )

    def save_template(self, practice_id: str, template: Template) -> None:
        for key in [
            k for k in self.templates if k[0] == practice_id and k[1].lower() == template.id.lower()
        ]:
            del self.templates[key]
        super().save_template(practice_id, template)


class CopyingStore(MemoryTemplateStore):
    """Appends on every save: insert, never update."""

    def __init__(self) -> None:
        super().__init__()
        self.saved: list[tuple[str, Template]] = []

    def list_templates(self, practice_id: str) -> list[Template]:
        return [t for p, t in self.saved if p == practice_id]

    def save_template(self, practice_id: str, template: Template) -> None:
        self.saved.append((practice_id, template))
        super().save_template(practice_id, template)


class ActiveOnlyStore(MemoryTemplateStore):
    def list_templates(self, practice_id: str) -> list[Template]:
        return [t for t in super().list_templates(practice_id) if t.active]


class DictAnsweringStore(MemoryTemplateStore):
    def get_template(self, practice_id: str, template_id: str) -> Template | None:
        found = super().get_template(practice_id, template_id)
        return attrs.asdict(found) if found else None  # type: ignore[return-value]


class AlwaysDeletingStore(MemoryTemplateStore):
    def delete_template(self, practice_id: str, template_id: str) -> bool:
        super().delete_template(practice_id, template_id)
        return True


BROKEN: list[tuple[type[MemoryTemplateStore], str, str]] = [
    (
        PrefixMatchingStore,
        "test_a_practice_sees_only_its_own_templates",
        "'conformance-pr' lists 'conformance-pr1''s templates",
    ),
    (
        CaseFoldingStore,
        "test_ids_are_kept_exactly_and_ids_differing_in_case_are_two_templates",
        "get_template('tpl_A') answered 'tpl_a'",
    ),
    (
        CopyingStore,
        "test_saving_an_id_again_updates_that_template",
        "list_templates answered 'tpl_reminder' more than once: saving an id again must update",
    ),
    (ActiveOnlyStore, "test_inactive_templates_are_kept_and_listed", "tpl_off"),
    (
        DictAnsweringStore,
        "test_a_saved_template_is_got_back_and_listed_as_it_was_saved",
        "get_template answered a template that is a dict, not a hookspecs.Template",
    ),
    (
        AlwaysDeletingStore,
        "test_delete_answers_whether_it_deleted_and_leaves_the_others",
        "a second delete deleted",
    ),
]


@pytest.mark.parametrize(("store_class", "check", "message"), BROKEN)
def test_the_suite_fails_a_broken_store_saying_what_it_did(
    store_class: Callable[[], TemplateStore], check: str, message: str
) -> None:
    suite = TemplateStoreConformance()
    with pytest.raises(AssertionError) as failure:
        getattr(suite, check)(store_class())
    assert message in str(failure.value)
    # The same check passes a store that does it right.
    getattr(suite, check)(MemoryTemplateStore())
