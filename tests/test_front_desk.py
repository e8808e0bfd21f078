"""The front desk's privacy and double presses: whose balance may go to whom, addresses on file
that cannot be used, repeats of one request, what logs may say, and host data that would break an
e-mail's headers or show a balance other than to the cent."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pluggy
import pytest
from conftest import CONTEXT, Build, assert_valid, enable_addon, host_on

from hookspecs import hookimpl
from hookspecs.types import DeliveryReceipt, OutboundMessage, PermanentDeliveryError, Template
from ondemand_plugin import MANAGE_ACTION_ID, SEND_ACTION_ID
from ondemand_plugin.channels.outbox import read_outbox
from ondemand_plugin.channels.smtp import compose_email
from ondemand_plugin.errors import OnDemandError
from ondemand_plugin.logsafe import sanitised
from ondemand_plugin.rules.opt_outs import OptOuts
from ondemand_plugin.testing import ReferenceHost, build_plugin_manager
from ondemand_plugin.testing.conformance import sample_message

LILY = {"type": "patient", "id": "p-lily"}
MEI = {"type": "guarantor", "id": "g-mei"}
TOM = {"type": "guarantor", "id": "g-tom"}
LINE_BREAKS = ("\r", "\n", "\x85", "\u2028", "\u2029")


@pytest.fixture
def ondemand_host(database_url: str, tmp_path: Path) -> ReferenceHost:
    """The demo host, with the plugin on each backend in turn."""
    return host_on(database_url, tmp_path)


@pytest.fixture
def pm(ondemand_host: ReferenceHost) -> Iterator[pluggy.PluginManager]:
    manager = build_plugin_manager(ondemand_host)
    enable_addon(manager)
    yield manager
    manager.hook.pm_unconfigure(plugin_manager=manager)


def open_dialog(pm: pluggy.PluginManager, subject: dict[str, str] = LILY) -> dict[str, Any]:
    form: dict[str, Any] = pm.hook.pm_dashboard_action(
        action_id=SEND_ACTION_ID, step="open", subject=subject, payload={}, context=CONTEXT
    )
    assert_valid("send-form", form)
    return form


def submit(
    pm: pluggy.PluginManager, payload: dict[str, Any], subject: dict[str, str] = LILY
) -> dict[str, Any]:
    result: dict[str, Any] = pm.hook.pm_dashboard_action(
        action_id=SEND_ACTION_ID, step="submit", subject=subject, payload=payload, context=CONTEXT
    )
    assert_valid("send-result", result)
    return result


def refusal(pm: pluggy.PluginManager, payload: dict[str, Any], **kwargs: Any) -> OnDemandError:
    with pytest.raises(OnDemandError) as raised:
        submit(pm, payload, **kwargs)
    return raised.value


def option(form: dict[str, Any], entity_id: str, mode: str) -> dict[str, Any]:
    [found] = [
        item
        for item in form["send_to"]
        if item["entity"]["id"] == entity_id and item["mode"] == mode
    ]
    return found


def outbox(host: ReferenceHost) -> list[dict[str, Any]]:
    assert host.plugin_config is not None
    return read_outbox(Path(host.plugin_config["outbox_dir"]), "demo")


def history(pm: pluggy.PluginManager, guarantor_id: str) -> list[dict[str, Any]]:
    [entries] = pm.hook.pm_history_entries(
        guarantor_id=guarantor_id, context=CONTEXT, before=None, limit=100
    )
    return list(entries)


def manage(pm: pluggy.PluginManager, **payload: Any) -> dict[str, Any]:
    answer: dict[str, Any] = pm.hook.pm_dashboard_action(
        action_id=MANAGE_ACTION_ID,
        step="submit",
        subject={"type": "practice", "id": "demo"},
        payload=payload,
        context=CONTEXT,
    )
    return answer


def give_lily_an_email(host: ReferenceHost) -> None:
    host.patients["demo"]["p-lily"]["contacts"] = [{"kind": "email", "value": "lily@example.com"}]


# Whose balance may go to whom


def test_each_send_to_option_says_whose_balance_it_may_carry(
    pm: pluggy.PluginManager, ondemand_host: ReferenceHost
) -> None:
    give_lily_an_email(ondemand_host)
    form = open_dialog(pm)
    assert option(form, "g-mei", "text")["guarantor_ids"] == ["g-mei"]
    assert option(form, "g-tom", "email")["guarantor_ids"] == ["g-tom"]
    # Both parents are responsible for their daughter.
    assert option(form, "p-lily", "email")["guarantor_ids"] == ["g-mei", "g-tom"]


def test_a_guarantors_balance_cannot_go_to_another_guarantor(
    pm: pluggy.PluginManager, ondemand_host: ReferenceHost
) -> None:
    refused = refusal(
        pm, {"guarantor_id": "g-tom", "send_to": {"entity": MEI, "mode": "text"}, "body": "Hi"}
    )
    assert refused.code == "recipient_not_allowed"
    assert refused.field == "send_to.entity"
    assert "Tom Chen's balance" in refused.message and "Mei Chen" in refused.message
    assert outbox(ondemand_host) == []
    assert history(pm, "g-tom") == [] and history(pm, "g-mei") == []


def test_a_guarantors_balance_can_go_to_a_patient_they_are_responsible_for(
    pm: pluggy.PluginManager, ondemand_host: ReferenceHost
) -> None:
    give_lily_an_email(ondemand_host)
    payload = {
        "guarantor_id": "g-tom",
        "send_to": {"entity": LILY, "mode": "email"},
        "body": "{{BalanceDue}}",
    }
    assert submit(pm, payload)["status"] == "sent"
    [message] = outbox(ondemand_host)
    assert message["to"] == "lily@example.com"


def test_a_guarantor_without_a_batched_statement_carries_no_balance(
    pm: pluggy.PluginManager, ondemand_host: ReferenceHost
) -> None:
    ondemand_host.guarantors["demo"]["g-tom"]["batched_statement_count"] = 0
    form = open_dialog(pm)
    tom = option(form, "g-tom", "email")
    assert tom["guarantor_ids"] == []
    assert tom["allowed"] is False
    assert "Tom Chen" in tom["reason"]


# Addresses on file that cannot be used


@pytest.mark.parametrize(
    ("kind", "value", "mode"),
    [("email", "ann@@example..com", "email"), ("mobile", "+1503555", "text")],
)
def test_an_invalid_address_on_file_is_listed_as_not_allowed_with_a_reason(
    pm: pluggy.PluginManager, ondemand_host: ReferenceHost, kind: str, value: str, mode: str
) -> None:
    contacts = ondemand_host.guarantors["demo"]["g-mei"]["contacts"]
    [contact] = [item for item in contacts if item["kind"] == kind]
    contact["value"] = value
    found = option(open_dialog(pm), "g-mei", mode)
    assert found["allowed"] is False
    assert "Correct it with Modify" in found["reason"]
    assert value not in found["reason"]


# Repeats of one request


def test_a_repeat_that_only_omits_defaults_is_the_same_request(
    pm: pluggy.PluginManager, ondemand_host: ReferenceHost
) -> None:
    key = open_dialog(pm)["idempotency_key"]
    first = submit(
        pm,
        {
            "guarantor_id": "g-mei",
            "send_to": {"entity": MEI, "mode": "text", "address": None, "save_contact": False},
            "template_id": None,
            "subject": None,
            "body": "{{BalanceDue}}",
            "idempotency_key": key,
        },
    )
    again = submit(
        pm,
        {
            "guarantor_id": "g-mei",
            "send_to": {"entity": {**MEI, "name": "Mei Chen"}, "mode": "text"},
            "body": "{{BalanceDue}}",
            "idempotency_key": key,
        },
    )
    assert again["duplicate"] is True
    assert again["notification_id"] == first["notification_id"]
    assert len(outbox(ondemand_host)) == 1


def test_a_repeat_with_another_message_is_still_a_conflict(pm: pluggy.PluginManager) -> None:
    key = open_dialog(pm)["idempotency_key"]
    payload = {"guarantor_id": "g-mei", "send_to": {"entity": MEI, "mode": "text"}, "body": "A"}
    submit(pm, {**payload, "idempotency_key": key})
    assert refusal(pm, {**payload, "body": "B", "idempotency_key": key}).code == (
        "idempotency_conflict"
    )


def test_each_open_gives_a_fresh_idempotency_key_for_its_dialog(
    pm: pluggy.PluginManager,
) -> None:
    keys = {open_dialog(pm)["idempotency_key"] for _ in range(3)}
    assert len(keys) == 3
    assert all(isinstance(key, str) and len(key) >= 16 for key in keys)


# What the open form gives can be given back


def test_the_open_forms_send_to_entity_can_be_echoed_back_with_its_name(
    pm: pluggy.PluginManager, ondemand_host: ReferenceHost
) -> None:
    form = open_dialog(pm)
    chosen = option(form, "g-mei", "text")
    result = submit(
        pm,
        {
            "guarantor_id": "g-mei",
            "send_to": {"entity": chosen["entity"], "mode": chosen["mode"]},
            "body": "Hello",
            "idempotency_key": form["idempotency_key"],
        },
    )
    assert chosen["entity"]["name"] == "Mei Chen"
    assert result["status"] == "sent"


# Logs


class RaisingChannel:
    """A channel whose bug puts the recipient and the message in its exception."""

    name = "buggy"
    modes = frozenset({"text"})

    def deliver(self, message: OutboundMessage) -> DeliveryReceipt:
        raise RuntimeError(f"cannot hand {message.body!r} to {message.to} (+1 503 555 0123)")


class RefusingChannel:
    name = "picky"
    modes = frozenset({"text"})

    def deliver(self, message: OutboundMessage) -> DeliveryReceipt:
        raise PermanentDeliveryError(f"{message.to} refused: {message.body}")


class ChannelPlugin:
    def __init__(self, *channels: object) -> None:
        self.channels = list(channels)

    @hookimpl
    def ondemand_delivery_channels(self, config: dict[str, Any]) -> list[Any]:
        return self.channels


def test_a_channels_unexpected_exception_is_logged_without_address_or_message_text(
    build: Build, caplog: pytest.LogCaptureFixture
) -> None:
    pm, _ = build(ChannelPlugin(RaisingChannel()), channels={"text": "buggy"})
    body = "Mei Chen owes a secret\nsecond line"
    with caplog.at_level(logging.DEBUG, logger="ondemand_plugin"):
        result = submit(
            pm, {"guarantor_id": "g-mei", "send_to": {"entity": MEI, "mode": "text"}, "body": body}
        )
    assert result["status"] == "failed"
    logged = caplog.text  # the formatted records, tracebacks included
    assert "RuntimeError" in logged and "buggy" in logged
    assert "in deliver" in logged  # where it was raised: the frames, without their values
    for secret in ("+15035550123", "503 555 0123", "Mei Chen owes", "second line", "secret"):
        assert secret not in logged
    assert not any(record.exc_info for record in caplog.records)


def test_an_address_a_channel_repeats_in_its_refusal_is_not_logged(
    build: Build, caplog: pytest.LogCaptureFixture
) -> None:
    pm, _ = build(ChannelPlugin(RefusingChannel()), channels={"text": "picky"})
    with caplog.at_level(logging.DEBUG, logger="ondemand_plugin"):
        submit(
            pm,
            {
                "guarantor_id": "g-mei",
                "send_to": {"entity": MEI, "mode": "text"},
                "body": "Balance {{BalanceDue}}",
            },
        )
    assert "picky" in caplog.text
    assert "+15035550123" not in caplog.text and "Balance $120.50" not in caplog.text
    assert "+1***0123" in caplog.text


# Host data that would reach an e-mail's headers


@pytest.mark.parametrize("line_break", LINE_BREAKS)
def test_a_name_with_a_line_break_is_a_host_error(
    pm: pluggy.PluginManager, ondemand_host: ReferenceHost, line_break: str
) -> None:
    ondemand_host.guarantors["demo"]["g-mei"]["last_name"] = f"Chen{line_break}Bcc: x@evil.example"
    with pytest.raises(OnDemandError) as raised:
        open_dialog(pm)
    assert raised.value.code == "host_error"
    assert "last_name" in raised.value.message


def test_a_name_ending_in_a_line_break_is_a_host_error(
    pm: pluggy.PluginManager, ondemand_host: ReferenceHost
) -> None:
    # A schema's "$" also matches before a final newline: the pattern must not let it through.
    ondemand_host.guarantors["demo"]["g-mei"]["first_name"] = "Mei\n"
    with pytest.raises(OnDemandError) as raised:
        open_dialog(pm)
    assert raised.value.code == "host_error"
    assert "first_name" in raised.value.message


@pytest.mark.parametrize("line_break", LINE_BREAKS)
def test_a_practice_name_with_a_line_break_is_a_host_error(
    pm: pluggy.PluginManager, ondemand_host: ReferenceHost, line_break: str
) -> None:
    ondemand_host.practices["demo"]["name"] = f"Maple{line_break}Bcc: x@evil.example"
    with pytest.raises(OnDemandError) as raised:
        open_dialog(pm)
    assert raised.value.code == "host_error"


@pytest.mark.parametrize("line_break", LINE_BREAKS)
def test_a_typed_subject_with_a_line_break_is_refused(
    pm: pluggy.PluginManager, ondemand_host: ReferenceHost, line_break: str
) -> None:
    refused = refusal(
        pm,
        {
            "guarantor_id": "g-mei",
            "send_to": {"entity": MEI, "mode": "email"},
            "subject": f"Balance{line_break}Bcc: x@evil.example",
            "body": "Hi",
        },
    )
    assert (refused.code, refused.field) == ("invalid_request", "subject")
    assert outbox(ondemand_host) == []


@pytest.mark.parametrize("line_break", ["\x85", "\u2028", "\u2029"])
def test_a_template_subject_with_a_line_break_is_not_saved(
    pm: pluggy.PluginManager, line_break: str
) -> None:
    with pytest.raises(OnDemandError) as raised:
        manage(
            pm,
            op="create",
            template={"label": "L", "mode": "email", "subject": f"a{line_break}b", "body": "x"},
        )
    assert (raised.value.code, raised.value.field) == ("invalid_request", "template.subject")


@pytest.mark.parametrize("line_break", LINE_BREAKS)
def test_the_smtp_channel_keeps_each_header_on_one_line(line_break: str) -> None:
    message = sample_message("email")
    hostile = OutboundMessage(
        notification_id=message.notification_id,
        practice_id=message.practice_id,
        mode="email",
        to=message.to,
        sender=message.sender,
        sender_name=f"Maple{line_break}Bcc: x@evil.example",
        subject=f"Your balance{line_break}Bcc: y@evil.example",
        body=message.body,
        html=message.html,
    )
    email = compose_email(hostile)
    assert email["Subject"] == "Your balance Bcc: y@evil.example"
    assert email["Bcc"] is None
    headers = email.as_bytes().split(b"\n\n", 1)[0].decode("utf-8", "replace")
    assert not any(line.lower().startswith("bcc") for line in headers.splitlines())


@pytest.mark.parametrize(
    "sender", ["billing@maplestreet.example.com, x@evil.example", "a@b.example;c@d.example"]
)
def test_a_practice_sender_email_of_several_addresses_is_a_host_error(
    pm: pluggy.PluginManager, ondemand_host: ReferenceHost, sender: str
) -> None:
    ondemand_host.practices["demo"]["sender_email"] = sender
    with pytest.raises(OnDemandError) as raised:
        open_dialog(pm)
    assert raised.value.code == "host_error"
    assert "sender_email" in raised.value.message


def test_a_template_sender_outside_the_practices_domain_is_not_saved(
    pm: pluggy.PluginManager,
) -> None:
    with pytest.raises(OnDemandError) as raised:
        manage(
            pm,
            op="create",
            template={
                "label": "Security notice",
                "mode": "email",
                "sender_email": "security@bigbank.example",
                "body": "Hi",
            },
        )
    assert (raised.value.code, raised.value.field) == ("invalid_request", "template.sender_email")
    assert "maplestreet.example.com" in raised.value.message
    assert manage(pm, op="list")["templates"] == []


def test_a_template_sender_in_the_practices_domain_is_saved(pm: pluggy.PluginManager) -> None:
    saved = manage(
        pm,
        op="create",
        template={
            "label": "From the desk",
            "mode": "email",
            "sender_email": "Desk@MapleStreet.example.com",
            "body": "Hi",
        },
    )["template"]
    assert saved["sender_email"] == "Desk@maplestreet.example.com"


class ForeignSenderStore:
    """A template store that answers a template whose sender is another company's."""

    template = Template(
        id="tpl_foreign",
        label="Foreign",
        mode="email",
        body="Your balance is {{BalanceDue}}",
        sender_email="security@bigbank.example",
    )

    def list_templates(self, practice_id: str) -> list[Template]:
        return [self.template]

    def get_template(self, practice_id: str, template_id: str) -> Template | None:
        return self.template if template_id == self.template.id else None

    def save_template(self, practice_id: str, template: Template) -> None:
        raise NotImplementedError

    def delete_template(self, practice_id: str, template_id: str) -> bool:
        raise NotImplementedError


class ForeignSenderStorePlugin:
    @hookimpl
    def ondemand_template_store(self, config: dict[str, Any]) -> ForeignSenderStore:
        return ForeignSenderStore()


def test_a_stored_template_sender_outside_the_domain_falls_back_to_the_practices(
    build: Build,
) -> None:
    pm, host = build(ForeignSenderStorePlugin())
    result = submit(
        pm,
        {
            "guarantor_id": "g-mei",
            "send_to": {"entity": MEI, "mode": "email"},
            "template_id": "tpl_foreign",
        },
    )
    assert result["status"] == "sent"
    [message] = outbox(host)
    assert message["sender"] == "billing@maplestreet.example.com"


# Balances to the cent


@pytest.mark.parametrize(("given", "shown"), [("12.3", "12.30"), ("-0.00", "0.00"), ("7", "7.00")])
def test_balances_are_shown_to_the_cent_everywhere(
    pm: pluggy.PluginManager, ondemand_host: ReferenceHost, given: str, shown: str
) -> None:
    ondemand_host.guarantors["demo"]["g-mei"]["pops_balance"] = given
    form = open_dialog(pm)
    [mei] = [item for item in form["guarantors"] if item["id"] == "g-mei"]
    assert mei["balance"] == shown
    result = submit(
        pm,
        {
            "guarantor_id": "g-mei",
            "send_to": {"entity": MEI, "mode": "text"},
            "body": "{{BalanceDue}}",
        },
    )
    assert result["balance"] == shown
    [entry] = history(pm, "g-mei")
    assert entry["balance"] == shown
    assert f"${shown}" in entry["display"]["summary"]
    assert outbox(ondemand_host)[0]["body"] == f"${shown}"


def test_a_negative_zero_balance_cannot_be_paid_and_is_no_credit(
    pm: pluggy.PluginManager, ondemand_host: ReferenceHost
) -> None:
    ondemand_host.guarantors["demo"]["g-mei"]["pops_balance"] = "-0.00"
    [mei] = [item for item in open_dialog(pm)["guarantors"] if item["id"] == "g-mei"]
    assert mei["payment_allowed"] is False
    assert "$0.00:" in mei["notice"] and "credit" not in mei["notice"]


# Sentences


def test_a_practice_without_a_text_number_says_so_in_a_sentence(
    pm: pluggy.PluginManager, ondemand_host: ReferenceHost
) -> None:
    ondemand_host.practices["demo"]["text_from"] = None
    reason = option(open_dialog(pm), "g-mei", "text")["reason"]
    assert reason.startswith("The practice has no text origination number set up, so it cannot")


class HostWhoseOptOutHookRaises:
    def set_opt_out(self, *args: Any) -> bool:
        raise RuntimeError("no contact +15035550123 / mei.chen@example.com in the table")

    def implementers(self, hook_name: str) -> str:
        return "host"


class KeptOptOuts:
    def __init__(self) -> None:
        self.kept: list[Any] = []

    def set_opt_out(self, opt_out: Any) -> None:
        self.kept.append(opt_out)


def test_a_host_opt_out_hook_that_raises_is_logged_without_the_address(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = KeptOptOuts()
    opt_outs = OptOuts(store, HostWhoseOptOutHookRaises())  # type: ignore[arg-type]
    with caplog.at_level(logging.DEBUG, logger="ondemand_plugin"):
        opt_outs.change(
            "demo", "text", "+15035550123", True, source="reply", keyword="STOP", channel="twilio"
        )
    assert len(store.kept) == 1
    assert "RuntimeError" in caplog.text and "pm_set_opt_out" in caplog.text
    assert "+15035550123" not in caplog.text and "mei.chen@example.com" not in caplog.text
    assert not any(record.exc_info for record in caplog.records)


def test_what_looks_like_an_address_is_masked_in_a_log_summary() -> None:
    text = sanitised(
        "refused ann@example.com and (503) 555-0199 for 'Dear Ann,\\nyou owe'",
        hide=["Dear Ann,\nyou owe"],
    )
    assert "ann@example.com" not in text and "555-0199" not in text
    assert "Dear Ann" not in text and "[message text]" in text
