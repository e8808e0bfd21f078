"""R7: the practice's own set of On-Demand templates, managed from the dialog's -MANAGE- entry."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from hookspecs.types import Template, TemplateStore
from ondemand_plugin import compose, contracts
from ondemand_plugin.addresses import normalize_email
from ondemand_plugin.errors import InvalidRequest, OnDemandError

_REQUIRED_ON_CREATE = ("label", "mode", "body")

# A practice's own sender e-mail address (None when it has none), asked of the host.
PracticeSender = Callable[[str], str | None]


def template_to_dict(template: Template) -> dict[str, Any]:
    return attrs.asdict(template)


def new_template_id() -> str:
    return "tpl_" + secrets.token_hex(8)


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower()


def in_practice_domain(sender: str, practice_sender: str | None) -> bool:
    """Whether ``sender`` is in the domain of the practice's own sender, or under it: a
    template may not send in another company's name."""
    if not practice_sender:
        return False
    domain, own = domain_of(sender), domain_of(practice_sender)
    return domain == own or domain.endswith("." + own)


class TemplateManager:
    """Create, change, copy and delete one practice's templates, each checked before it is saved.

    ``practice_sender`` answers a practice's sender address, so that a template's own sender is
    kept to the practice's domain. Without it (the command line has no host to ask) the check is
    left to the send, which does not believe a sender outside the domain.
    """

    def __init__(self, store: TemplateStore, practice_sender: PracticeSender | None = None) -> None:
        self.store = store
        self.practice_sender = practice_sender

    def list(self, practice_id: str) -> list[Template]:
        return self.store.list_templates(practice_id)

    def get(self, practice_id: str, template_id: str) -> Template:
        template = self.store.get_template(practice_id, template_id)
        if template is None:
            raise OnDemandError(
                f"There is no On-Demand template {template_id!r} in this practice. Pick one from "
                "the list, or add one with -MANAGE-.",
                code="template_not_found",
                field="template_id",
            )
        return template

    def create(self, practice_id: str, fields: Mapping[str, Any]) -> Template:
        missing = [name for name in _REQUIRED_ON_CREATE if name not in fields]
        if missing:
            raise InvalidRequest(
                "A new template needs " + ", ".join(missing) + ".", field="template." + missing[0]
            )
        template = self._checked(practice_id, Template(id=new_template_id(), **_input(fields)))
        self.store.save_template(practice_id, template)
        return template

    def update(self, practice_id: str, template_id: str, fields: Mapping[str, Any]) -> Template:
        changed = attrs.evolve(self.get(practice_id, template_id), **_input(fields))
        template = self._checked(practice_id, changed)
        self.store.save_template(practice_id, template)
        return template

    def copy(self, practice_id: str, template_id: str, fields: Mapping[str, Any]) -> Template:
        original = self.get(practice_id, template_id)
        changes = {"label": f"Copy of {original.label}"[:100], **_input(fields)}
        template = self._checked(
            practice_id, attrs.evolve(original, id=new_template_id(), **changes)
        )
        self.store.save_template(practice_id, template)
        return template

    def delete(self, practice_id: str, template_id: str) -> Template:
        template = self.get(practice_id, template_id)
        self.store.delete_template(practice_id, template_id)
        return template

    def _checked(self, practice_id: str, template: Template) -> Template:
        template = _checked(template)
        if template.sender_email and self.practice_sender is not None:
            _check_sender_domain(template.sender_email, self.practice_sender(practice_id))
        return template


def _input(fields: Mapping[str, Any]) -> dict[str, Any]:
    contracts.check("template-input", dict(fields), _input_error)
    return dict(fields)


def _input_error(path: str, problem: str) -> InvalidRequest:
    return InvalidRequest(f"The template's {path} {problem}.", field=f"template.{path}")


def _check_sender_domain(sender: str, practice_sender: str | None) -> None:
    if in_practice_domain(sender, practice_sender):
        return
    if practice_sender is None:
        problem = "the practice has no sender e-mail address, so a template cannot set one"
        fix = "Leave it empty, or ask an administrator to set the practice's sender first."
    else:
        problem = f"it must be an address at {domain_of(practice_sender)}, the practice's domain"
        fix = "Use an address of the practice, or leave it empty to send as the practice."
    raise InvalidRequest(
        f"The template's sender_email is not allowed: {problem}. {fix}",
        field="template.sender_email",
    )


def _checked(template: Template) -> Template:
    """Fields known to the mode, e-mail-only settings dropped for other modes."""
    compose.check_fields(template.body, template.mode, "template.body")
    compose.check_length(template.body, template.mode)
    if template.mode != "email":
        return attrs.evolve(template, sender_email=None, subject=None)
    if template.subject:
        compose.check_fields(template.subject, "email", "template.subject")
    if template.sender_email:
        return attrs.evolve(template, sender_email=normalize_email(template.sender_email))
    return template
