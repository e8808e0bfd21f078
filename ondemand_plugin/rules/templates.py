"""R7: the practice's own set of On-Demand templates, managed from the dialog's -MANAGE- entry."""

from __future__ import annotations

import builtins
import hashlib
import secrets
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from hookspecs.types import Template, TemplateStore
from ondemand_plugin.boundary import contracts
from ondemand_plugin.boundary.extensions import report_label
from ondemand_plugin.errors import ErrorCode, InvalidRequest, OnDemandError, PluginError
from ondemand_plugin.rules import composing
from ondemand_plugin.rules.addresses import domain_of, in_practice_domain, normalize_email

_REQUIRED_ON_CREATE = ("label", "mode", "body")

# What a practice starts with when its add-on is first switched on: one template per mode, which
# staff then edit, copy or delete. Each reads as whole sentences at $0.00 or a credit too (R5):
# the sentence that offers the pay link is then "No payment is due at this time.", and the call
# offers the practice's phone for questions rather than for paying.
STARTER_TEMPLATES: tuple[dict[str, Any], ...] = (
    {
        "label": "Balance by text",
        "mode": "text",
        "body": "Hi {{GuarantorFirstName}}, this is {{PracticeName}}. Your balance is "
        "{{BalanceDue}}. Pay securely: {{QuickPayLink}} Reply STOP to opt out.",
    },
    {
        "label": "Balance by e-mail",
        "mode": "email",
        "subject": "Your balance at {{PracticeName}}",
        "body": "Dear {{GuarantorFullName}},\n\nYour balance at {{PracticeName}} is "
        "{{BalanceDue}}.\nYou can pay it securely here: {{QuickPayLink}}\n\nQuestions? Call us "
        "at {{PracticePhone}}.\n\n{{PracticeName}}",
    },
    {
        "label": "Balance by phone call",
        "mode": "voice",
        "body": "Hello {{GuarantorFirstName}}, this is {{PracticeName}} calling about your "
        "account. Your balance is {{BalanceDue}}. If you have any questions, please call us at "
        "{{PracticePhone}}. Thank you.",
    },
)

# A practice's own sender e-mail address (None when it has none), asked of the host.
PracticeSender = Callable[[str], str | None]


def template_to_dict(template: Template) -> dict[str, Any]:
    return attrs.asdict(template)


def new_template_id() -> str:
    return "tpl_" + secrets.token_hex(8)


def starter_id(practice_id: str, mode: str) -> str:
    """A starter's id: always the same for a practice and a mode, so that a first switch on cut
    short and made again knows the starters it added already. The practice is in it for a
    store that keys templates by id alone."""
    return "tpl_" + hashlib.sha256(f"{practice_id}\n{mode}".encode()).hexdigest()[:16]


@attrs.frozen
class TemplateOffer:
    """The templates a dialog can offer, and a notice for staff when some could not be."""

    templates: list[Template]
    notice: str | None = None


class _StoreFailed(PluginError):
    """A third party's template store raised, or answered something that is not a list."""

    def __init__(self, provider: str, problem: str) -> None:
        super().__init__(
            f"The template store {provider} failed: {problem}. Type the message instead of "
            "picking a template, and have the store fixed.",
            field="template_store",
        )
        self.problem = problem


class TemplateManager:
    """Create, change, copy and delete one practice's templates, each checked before it is saved.

    ``provider`` names a third party's store (its plugin and distribution): what that store
    raises or answers is checked, so that a broken store is named, and the templates that break
    the contract are left out rather than breaking the dialog.

    ``practice_sender`` answers a practice's sender address, so that a template's own sender is
    kept to the practice's domain. Without it (the command line has no host to ask) the check is
    left to the send, which does not believe a sender outside the domain.
    """

    def __init__(
        self,
        store: TemplateStore,
        provider: str | None = None,
        *,
        practice_sender: PracticeSender | None = None,
    ) -> None:
        self.store = store
        self.provider = provider
        self.practice_sender = practice_sender

    def list(self, practice_id: str) -> list[Template]:
        return self._listed(practice_id)[0]

    def offer(self, practice_id: str) -> TemplateOffer:
        """What the send dialog offers: a failing store leaves typed text to send."""
        try:
            templates, skipped = self._listed(practice_id)
        except _StoreFailed as failure:
            report_label(str(self.provider), f"its template store failed: {failure.problem}")
            return TemplateOffer(
                [],
                f"The templates could not be read from the template store {self.provider}: "
                "type the message, or try again later.",
            )
        if not skipped:
            return TemplateOffer(templates)
        return TemplateOffer(
            templates,
            f"{skipped} template(s) from the template store {self.provider} are left out, "
            "because they break the template contract; its maintainer must fix them.",
        )

    def get(self, practice_id: str, template_id: str) -> Template:
        template: Template | None = self._call("get_template", practice_id, template_id)
        problem = None if template is None else self._problem(template)
        if problem is None and template is not None and template.id != template_id:
            problem = "has another id than the one asked for"
        if problem is not None:
            raise PluginError(
                f"The template store {self.provider} answered a template that {problem}, so it "
                "cannot be used. Type the message instead, and have the store fixed.",
                field="template_id",
            )
        if template is None:
            raise OnDemandError(
                f"There is no On-Demand template {template_id!r} in this practice. Pick one from "
                "the list, or add one with -MANAGE-.",
                code=ErrorCode.TEMPLATE_NOT_FOUND,
                field="template_id",
            )
        return template

    def create(self, practice_id: str, fields: Mapping[str, Any]) -> Template:
        missing = [name for name in _REQUIRED_ON_CREATE if name not in fields]
        if missing:
            raise InvalidRequest(
                "A new template needs " + ", ".join(missing) + ".", field="template." + missing[0]
            )
        return self._add(practice_id, new_template_id(), fields)

    def update(self, practice_id: str, template_id: str, fields: Mapping[str, Any]) -> Template:
        changed = attrs.evolve(self.get(practice_id, template_id), **_input(fields))
        template = self._checked(practice_id, changed)
        self._call("save_template", practice_id, template)
        return template

    def copy(self, practice_id: str, template_id: str, fields: Mapping[str, Any]) -> Template:
        original = self.get(practice_id, template_id)
        changes = {"label": f"Copy of {original.label}"[:100], **_input(fields)}
        template = self._checked(
            practice_id, attrs.evolve(original, id=new_template_id(), **changes)
        )
        self._call("save_template", practice_id, template)
        return template

    def delete(self, practice_id: str, template_id: str) -> Template:
        template = self.get(practice_id, template_id)
        self._call("delete_template", practice_id, template_id)
        return template

    def add_starters(self, practice_id: str) -> builtins.list[Template]:
        """The starter templates of a practice whose add-on is switched on for the first time,
        those it has already (from a first switch on cut short) and those added now. A practice
        with templates of its own gets none, and keeps its templates as they are."""
        try:
            have = {template.id: template for template in self.list(practice_id)}
            starters = [starter_id(practice_id, fields["mode"]) for fields in STARTER_TEMPLATES]
            if set(have) - set(starters):
                return []
            return [
                have.get(template_id) or self._add(practice_id, template_id, fields)
                for template_id, fields in zip(starters, STARTER_TEMPLATES, strict=True)
            ]
        except _StoreFailed as failure:
            raise PluginError(
                f"The template store {self.provider} failed: {failure.problem}, so the starter "
                "templates could not all be added.",
                field="template_store",
            ) from failure

    def _add(self, practice_id: str, template_id: str, fields: Mapping[str, Any]) -> Template:
        template = self._checked(practice_id, Template(id=template_id, **_input(fields)))
        self._call("save_template", practice_id, template)
        return template

    def _listed(self, practice_id: str) -> tuple[builtins.list[Template], int]:
        """The valid templates, and how many were left out."""
        answer = self._call("list_templates", practice_id)
        if self.provider is None:
            return answer, 0
        if not isinstance(answer, list | tuple):
            raise _StoreFailed(
                self.provider,
                f"its list_templates answered a {type(answer).__name__}, not a list of templates",
            )
        valid = []
        for template in answer:
            problem = self._problem(template)
            if problem is None:
                valid.append(template)
            else:
                report_label(
                    self.provider, f"its template store answered a template that {problem}"
                )
        return valid, len(answer) - len(valid)

    def _problem(self, template: object) -> str | None:
        if self.provider is None:
            return None
        return template_problem(template)

    def _call(self, method: str, *args: Any) -> Any:
        if self.provider is None:
            return getattr(self.store, method)(*args)
        try:
            return getattr(self.store, method)(*args)
        except Exception as error:
            # Only the type: a store's error could quote a template's text.
            raise _StoreFailed(
                self.provider, f"its {method} raised {type(error).__name__}"
            ) from error

    def _checked(self, practice_id: str, template: Template) -> Template:
        template = _checked(template)
        if template.sender_email and self.practice_sender is not None:
            _check_sender_domain(template.sender_email, self.practice_sender(practice_id))
        return template


def template_problem(template: object) -> str | None:
    """What makes a third party's answer not a valid template, if anything."""
    if not isinstance(template, Template):
        return f"is a {type(template).__name__}, not a hookspecs.Template"
    error = contracts.first_error("template", attrs.asdict(template))
    if error is None:
        return None
    path, problem = contracts.describe(error)
    return f"breaks contracts/template.json: {path} {problem}"


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
    composing.check_fields(template.body, template.mode, "template.body")
    composing.check_length(template.body, template.mode)
    if template.mode != "email":
        return attrs.evolve(template, sender_email=None, subject=None)
    if template.subject:
        composing.check_fields(template.subject, "email", "template.subject")
    if template.sender_email:
        return attrs.evolve(template, sender_email=normalize_email(template.sender_email))
    return template
