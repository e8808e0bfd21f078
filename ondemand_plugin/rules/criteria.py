"""Send criteria (R6, R8): who can determine the balance, who can be sent to, and why not.

Every refusal has a stable code and a sentence the receptionist can act on.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, time
from typing import TypeVar

import attrs

from ondemand_plugin.boundary.config import SendWindow
from ondemand_plugin.boundary.host import Host
from ondemand_plugin.boundary.model import Entity, Guarantor, Practice, entity_type
from ondemand_plugin.errors import ErrorCode, NotFound, OnDemandError
from ondemand_plugin.rules.addresses import normalize_address, practice_region

MODE_NAMES = {"email": "e-mail", "text": "text", "voice": "call"}
DEFAULT_CONTACT_KIND = {"email": "email", "text": "mobile", "voice": "home"}
NO_BATCHED_STATEMENT = (
    "None of the guarantors has had a batched statement yet, so an On-Demand notification "
    "cannot be sent. It can be sent once a statement batch has included them."
)


@attrs.frozen
class Scope:
    """Everything a dialog for one dashboard subject can choose from."""

    subject: Entity
    guarantors: tuple[Guarantor, ...]  # who may determine the balance, before R6
    recipients: tuple[Entity, ...]

    @property
    def eligible_guarantors(self) -> tuple[Guarantor, ...]:
        """R8: guarantors that never had a batched statement are not listed."""
        return tuple(guarantor for guarantor in self.guarantors if guarantor.had_batched_statement)


@attrs.frozen
class SendOption:
    entity: Entity
    mode: str
    address: str
    refusal: OnDemandError | None
    # The listed guarantors whose balance this person may be sent.
    guarantor_ids: tuple[str, ...]


@attrs.frozen
class Recipient:
    entity: Entity
    mode: str
    address: str  # normalised
    corrected: bool
    contact_kind: str  # the kind of contact a correction replaces, or would add


T = TypeVar("T")

# Whether the plugin itself knows that an address opted out of a mode (a STOP reply, a provider's
# refusal), for one practice: honoured at once, before the host's records catch up.
OptedOut = Callable[[str, str], bool]


def _known(load: Callable[[str], T], ids: tuple[str, ...]) -> tuple[T, ...]:
    """The entities the host still knows; a dangling link cannot be chosen anyway."""
    found: list[T] = []
    for entity_id in ids:
        try:
            found.append(load(entity_id))
        except NotFound:
            continue
    return tuple(found)


def load_scope(host: Host, practice_id: str, subject_type: str, subject_id: str) -> Scope:
    """R2: a patient's scope: it and its guarantors; a guarantor's: it and its patients."""
    if subject_type == "patient":
        patient = host.patient(practice_id, subject_id)
        guarantors = _known(lambda gid: host.guarantor(practice_id, gid), patient.guarantor_ids)
        return Scope(subject=patient, guarantors=guarantors, recipients=(patient, *guarantors))
    guarantor = host.guarantor(practice_id, subject_id)
    patients = _known(lambda pid: host.patient(practice_id, pid), guarantor.patient_ids)
    return Scope(subject=guarantor, guarantors=(guarantor,), recipients=(guarantor, *patients))


def require_batched_statement(scope: Scope) -> None:
    """R6."""
    if not scope.eligible_guarantors:
        raise OnDemandError(NO_BATCHED_STATEMENT, code=ErrorCode.NO_BATCHED_STATEMENT)


def choose_guarantor(scope: Scope, guarantor_id: str) -> Guarantor:
    """R8: the selected guarantor determines the balance."""
    for guarantor in scope.guarantors:
        if guarantor.id == guarantor_id:
            if not guarantor.had_batched_statement:
                raise OnDemandError(
                    f"{guarantor.name} has never had a batched statement, so the balance cannot "
                    "come from this guarantor. Pick a guarantor from the list.",
                    code=ErrorCode.GUARANTOR_NOT_ELIGIBLE,
                    field="guarantor_id",
                )
            return guarantor
    raise OnDemandError(
        "This guarantor is not linked to the patient or guarantor on this dashboard. "
        "Pick a guarantor from the list.",
        code=ErrorCode.GUARANTOR_NOT_ELIGIBLE,
        field="guarantor_id",
    )


def may_receive(guarantor: Guarantor, entity: Entity) -> bool:
    """A guarantor's balance goes only to that guarantor or to a patient they are responsible
    for: never to another guarantor, such as a separated parent."""
    if isinstance(entity, Guarantor):
        return entity.id == guarantor.id
    return entity.id in guarantor.patient_ids or guarantor.id in entity.guarantor_ids


def send_options(scope: Scope, practice: Practice, opted_out: OptedOut) -> list[SendOption]:
    """R8: every contact of every entity in scope, per mode; entities with none are absent."""
    region = practice_region(practice.phone)
    options = []
    for entity in scope.recipients:
        carries = tuple(g.id for g in scope.eligible_guarantors if may_receive(g, entity))
        for contact in entity.contacts:
            for mode in contact.modes:
                refusal = (
                    mode_refusal(entity, mode, practice)
                    or _no_balance_refusal(entity, carries)
                    or _on_file_refusal(entity, mode, contact.value, region, opted_out)
                )
                options.append(SendOption(entity, mode, contact.value, refusal, carries))
    return options


def _no_balance_refusal(entity: Entity, carries: tuple[str, ...]) -> OnDemandError | None:
    if carries:
        return None
    return OnDemandError(
        f"{entity.name or 'This person'} is not a guarantor listed here, nor a patient one of "
        "them is responsible for, so no balance can be sent to them. Pick another Send To.",
        code=ErrorCode.RECIPIENT_NOT_ALLOWED,
        field="send_to.entity",
    )


def _on_file_refusal(
    entity: Entity, mode: str, address: str, region: str, opted_out: OptedOut
) -> OnDemandError | None:
    """Why the address on file cannot be used: it is invalid (Modify corrects it), or opted out."""
    try:
        normalised = normalize_address(address, mode, region)
    except OnDemandError as error:
        return error
    return address_refusal(entity, mode, normalised, opted_out)


def address_refusal(
    entity: Entity, mode: str, address: str, opted_out: OptedOut
) -> OnDemandError | None:
    """Why this normalised address cannot get this mode's messages, or None when it can."""
    if not opted_out(mode, address):
        return None
    where = "address" if mode == "email" else "number"
    return OnDemandError(
        f"{entity.name or 'This person'} opted out of {MODE_NAMES[mode]} messages at this "
        f"{where} (a STOP reply, or the provider reported it). Choose another way to reach them.",
        code=ErrorCode.OPTED_OUT,
        field="send_to.address",
    )


def mode_refusal(entity: Entity, mode: str, practice: Practice) -> OnDemandError | None:
    """Why this entity cannot be reached by this mode, or None when it can."""
    if isinstance(entity, Guarantor) and entity.opt_out.get(mode, False):
        return OnDemandError(
            f"{entity.name} opted out of {MODE_NAMES[mode]} messages. Choose another way to "
            "reach them.",
            code=ErrorCode.OPTED_OUT,
            field="send_to.mode",
        )
    if mode == "email" and not practice.sender_email:
        return _no_sender("sender e-mail address")
    if mode == "text" and not practice.text_from:
        return _no_sender("text origination number")
    return None


def _no_sender(what: str) -> OnDemandError:
    return OnDemandError(
        f"The practice has no {what} set up, so it cannot send this way. Ask an administrator "
        "to add one in the practice settings.",
        code=ErrorCode.SENDER_NOT_CONFIGURED,
        field="send_to.mode",
    )


def choose_recipient(
    scope: Scope,
    practice: Practice,
    guarantor: Guarantor,
    entity_ref: dict[str, str],
    mode: str,
    address: str | None,
    opted_out: OptedOut,
) -> Recipient:
    """R8: the selected Send To contact determines how it is sent; Modify corrects an address."""
    entity = _entity_in_scope(scope, entity_ref)
    if not may_receive(guarantor, entity):
        raise OnDemandError(
            f"{guarantor.name}'s balance can go only to {guarantor.name} or to a patient "
            f"{guarantor.name} is responsible for, not to {entity.name or 'this person'}. "
            "Pick one of them in Send To, or pick the guarantor whose balance it is.",
            code=ErrorCode.RECIPIENT_NOT_ALLOWED,
            field="send_to.entity",
        )
    refusal = mode_refusal(entity, mode, practice)
    if refusal is not None:
        raise refusal
    reachable = [contact for contact in entity.contacts if mode in contact.modes]
    on_file = [contact.value for contact in reachable]
    if address is None or not address.strip():
        if not on_file:
            raise OnDemandError(
                f"{entity.name or 'This person'} has no contact information for a "
                f"{MODE_NAMES[mode]}. Choose another Send To, or add one with Modify.",
                code=ErrorCode.NO_CONTACT,
                field="send_to.address",
            )
        address = on_file[0]
    address = address.strip()
    normalised = normalize_address(address, mode, practice_region(practice.phone))
    refusal = address_refusal(entity, mode, normalised, opted_out)
    if refusal is not None:
        raise refusal
    corrected = address not in on_file and normalised not in on_file
    kind = reachable[0].kind if reachable else DEFAULT_CONTACT_KIND[mode]
    return Recipient(entity, mode, normalised, corrected, contact_kind=kind)


def _entity_in_scope(scope: Scope, entity_ref: dict[str, str]) -> Entity:
    for entity in scope.recipients:
        if entity_type(entity) == entity_ref["type"] and entity.id == entity_ref["id"]:
            return entity
    raise NotFound(
        f"This {entity_ref['type']} is not linked to the patient or guarantor on this dashboard. "
        "Pick someone from the Send To list.",
        field="send_to.entity",
    )


def check_send_window(window: SendWindow | None, practice: Practice, now: datetime) -> None:
    """Messages go out only during the practice's sending hours (TCPA, Regulation F)."""
    refusal = send_window_refusal(window, practice, now)
    if refusal is not None:
        raise refusal


def send_window_refusal(
    window: SendWindow | None, practice: Practice, now: datetime
) -> OnDemandError | None:
    if window is None:
        return None
    local = now.astimezone(practice.timezone)
    if window.contains(local.time().replace(tzinfo=None)):
        return None
    return OnDemandError(
        f"It is {local:%H:%M} at the practice: messages may go out only between "
        f"{window.start:%H:%M} and {_end_text(window)}. Send it during those hours.",
        code=ErrorCode.OUTSIDE_SEND_WINDOW,
    )


def _end_text(window: SendWindow) -> str:
    # A window open to the end of the day is kept as time.max, shown as it was written.
    return "24:00" if window.end == time.max else f"{window.end:%H:%M}"
