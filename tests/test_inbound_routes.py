"""Every plugin's inbound routes under pm_inbound_request, and the delivery events they report.

The done-when proof first: a channel installed from outside the package, as a vendor would ship
it, reports ``delivered`` and a STOP through its own route and the public events, and the history
and the next send show both."""

from __future__ import annotations

import logging
import sys
from typing import Any
from urllib.parse import urlencode

import pluggy
import pytest
from conftest import CONTEXT, Build, assert_valid, send_to_mei
from test_plugin_discovery import Install, install, site  # noqa: F401 (fixtures)

from hookspecs import (
    BindsEvents,
    DeliveryEvents,
    DeliveryReceipt,
    InboundRequest,
    InboundResponse,
    InboundRoute,
    OutboundMessage,
    hookimpl,
)
from ondemand_plugin import signing
from ondemand_plugin.errors import ConfigError, OnDemandError
from ondemand_plugin.inbound import events as events_module
from ondemand_plugin.plugin import instance_of
from ondemand_plugin.testing import store_of
from ondemand_plugin.testing.conformance import RecordingEvents

SECRET = "pigeon-webhook-s3cret"
BASE = "https://pm.example.com/plugins/ondemand/"
MEI = "+15035550123"
PRACTICE_TEXT_FROM = "+15035550101"

# A vendor's channel, written as its own distribution would be: only hookspecs and the plugin's
# public signing helper.
PIGEON = """
from hookspecs import DeliveryReceipt, InboundResponse, InboundRoute, hookimpl
from ondemand_plugin import signing

SENT = []


class PigeonChannel:
    name = "pigeon"
    modes = frozenset({"text"})

    def deliver(self, message):
        SENT.append(message)
        return DeliveryReceipt(status="sent", provider_message_id=f"pigeon-{len(SENT)}")


class PigeonRoutes:
    def __init__(self, secret):
        self.secret = secret

    def signed(self, request):
        signature = request.header("X-Pigeon-Signature")
        return signing.verify_hmac(self.secret, request.body, signature)

    def status(self, request, events):
        if not self.signed(request):
            return InboundResponse(status=403, body="Not signed by Pigeon.")
        known = events.delivery_status(
            "pigeon", request.form["tag"], request.form["state"], detail="Pigeon: landed."
        )
        return InboundResponse(status=200 if known else 202)

    def inbound(self, request, events):
        if not self.signed(request):
            return InboundResponse(status=403, body="Not signed by Pigeon.")
        form = request.form
        word = form["text"].strip().upper()
        if word in ("STOP", "START"):
            events.opt_out(
                "pigeon", "text", form["to"], form["from"], opted_out=word == "STOP",
                text=form["text"], message_id=form["id"],
            )
        else:
            events.reply("pigeon", form["to"], form["from"], form["text"], message_id=form["id"])
        return InboundResponse(status=204)


@hookimpl
def ondemand_delivery_channels(config):
    return [PigeonChannel()]


@hookimpl
def ondemand_inbound_routes(config):
    routes = PigeonRoutes(config["pigeon"]["secret"])
    return [
        InboundRoute(path="pigeon/status", methods={"POST"}, handler=routes.status),
        InboundRoute(path="pigeon/inbound", methods={"POST"}, handler=routes.inbound),
    ]
"""


def post(
    pm: pluggy.PluginManager,
    path: str,
    form: dict[str, str],
    *,
    secret: str = SECRET,
    method: str = "POST",
    body: str | None = None,
) -> dict[str, Any]:
    body = urlencode(form) if body is None else body
    answer: dict[str, Any] = pm.hook.pm_inbound_request(
        plugin_name="ondemand",
        method=method,
        path=path,
        url=BASE + path,
        headers={"X-Pigeon-Signature": signing.hmac_signature(secret, body)},
        form=form,
        body=body,
    )
    assert_valid("inbound-response", answer)
    return answer


def history(pm: pluggy.PluginManager) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = pm.hook.pm_history_entries(
        guarantor_id="g-mei", context=CONTEXT, before=None, limit=10
    )[0]
    return entries


@pytest.fixture
def pigeon(
    install: Install,  # noqa: F811
    build: Build,
) -> tuple[pluggy.PluginManager, Any]:
    install("pigeon-channel", "2.0.0", PIGEON)
    pm, host = build(channels={"text": "pigeon"}, pigeon={"secret": SECRET})
    return pm, host


def test_a_channel_from_outside_reports_delivered_and_stop_and_history_and_next_send_show_them(
    pigeon: tuple[pluggy.PluginManager, Any],
) -> None:
    pm, host = pigeon
    sent = send_to_mei(pm)
    assert sent["status"] == "sent"
    # The id the provider gave the message, as its callback will name it.
    tag = f"pigeon-{len(sys.modules['pigeon_channel'].SENT)}"

    answer = post(pm, "pigeon/status", {"tag": tag, "state": "delivered"})
    assert answer["status"] == 200
    [entry] = [e for e in history(pm) if e["id"] == sent["notification_id"]]
    assert (entry["status"], entry["channel"]) == ("delivered", "pigeon")

    stop = {"id": "in-1", "from": MEI, "to": PRACTICE_TEXT_FROM, "text": "STOP"}
    assert post(pm, "pigeon/inbound", stop)["status"] == 204
    [told] = host.calls_to("pm_set_opt_out")
    assert (told["practice_id"], told["mode"], told["address"], told["opted_out"]) == (
        "demo",
        "text",
        MEI,
        True,
    )
    assert (told["context"]["channel"], told["context"]["source"]) == ("pigeon", "reply")
    with pytest.raises(OnDemandError) as refused:
        send_to_mei(pm)
    assert refused.value.code == "opted_out"


def test_a_forged_callback_to_the_outside_channel_is_refused_and_changes_nothing(
    pigeon: tuple[pluggy.PluginManager, Any],
) -> None:
    pm, host = pigeon
    sent = send_to_mei(pm)
    before = store_of(pm).notification_by_id("demo", sent["notification_id"])
    assert before is not None and before.provider_message_id is not None
    form = {"tag": before.provider_message_id, "state": "delivered"}
    assert post(pm, "pigeon/status", form, secret="guessed")["status"] == 403
    stop = {"id": "in-1", "from": MEI, "to": PRACTICE_TEXT_FROM, "text": "STOP"}
    assert post(pm, "pigeon/inbound", stop, secret="guessed")["status"] == 403
    assert store_of(pm).notification_by_id("demo", sent["notification_id"]) == before
    assert host.calls_to("pm_set_opt_out") == []
    assert send_to_mei(pm)["status"] == "sent"


def test_a_reply_that_is_not_stop_is_kept_for_the_practice_once(
    pigeon: tuple[pluggy.PluginManager, Any],
) -> None:
    pm, host = pigeon
    send_to_mei(pm)
    reply = {"id": "in-7", "from": MEI, "to": PRACTICE_TEXT_FROM, "text": "Can I pay Friday?"}
    assert post(pm, "pigeon/inbound", reply)["status"] == 204
    assert post(pm, "pigeon/inbound", reply)["status"] == 204  # the same message again
    [kept] = store_of(pm).reply_history("demo", "g-mei", None, 10)
    assert (kept.channel, kept.sender, kept.address, kept.text) == (
        "pigeon",
        PRACTICE_TEXT_FROM,
        MEI,
        "Can I pay Friday?",
    )
    assert host.calls_to("pm_set_opt_out") == []
    elsewhere = {**reply, "id": "in-8", "to": "+15035559999"}  # a number demo never texted from
    post(pm, "pigeon/inbound", elsewhere)
    assert len(store_of(pm).reply_history("demo", "g-mei", None, 10)) == 1


def test_a_status_for_an_unknown_message_answers_false(
    pigeon: tuple[pluggy.PluginManager, Any],
) -> None:
    pm, _ = pigeon
    assert post(pm, "pigeon/status", {"tag": "pigeon-404", "state": "delivered"})["status"] == 202


# Routing


def route_plugin(*routes: InboundRoute) -> object:
    class Routes:
        @hookimpl
        def ondemand_inbound_routes(self, config: dict[str, Any]) -> list[InboundRoute]:
            return list(routes)

    return Routes()


def ok(request: InboundRequest, events: DeliveryEvents) -> InboundResponse:
    return InboundResponse(status=200, body=request.method)


def test_two_routes_with_one_path_are_an_error_at_start_naming_both_plugins(build: Build) -> None:
    one = route_plugin(InboundRoute(path="acme/status", methods={"POST"}, handler=ok))
    two = route_plugin(InboundRoute(path="/acme/status", methods={"POST"}, handler=ok))
    with pytest.raises(ConfigError) as refused:
        build(named={"acme-one": one, "acme-two": two})
    assert "acme/status" in refused.value.message
    assert "acme-one" in refused.value.message and "acme-two" in refused.value.message


def test_a_route_taking_twilios_path_is_an_error_naming_the_built_in(build: Build) -> None:
    taken = route_plugin(InboundRoute(path="twilio/status", methods={"POST"}, handler=ok))
    with pytest.raises(ConfigError, match=r"twilio\.routes.*acme-copy"):
        build(named={"acme-copy": taken})


def test_a_method_a_route_does_not_list_is_405_with_allow(build: Build) -> None:
    pm, _ = build(
        route_plugin(InboundRoute(path="acme/status", methods={"POST", "PUT"}, handler=ok))
    )
    answer = post(pm, "acme/status", {}, method="GET")
    assert (answer["status"], answer["headers"]["Allow"]) == (405, "POST, PUT")
    assert post(pm, "acme/status", {}, method="put")["body"] == "PUT"


def test_a_handler_that_raises_is_a_500_naming_nothing_and_logged_by_type(
    build: Build, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(request: InboundRequest, events: DeliveryEvents) -> InboundResponse:
        raise KeyError(f"secret-{request.body}")

    def wrong(request: InboundRequest, events: DeliveryEvents) -> InboundResponse:
        return {"status": 200}  # type: ignore[return-value]

    pm, _ = build(
        named={
            "acme-gateway": route_plugin(
                InboundRoute(path="acme/broken", methods={"POST"}, handler=broken),
                InboundRoute(path="acme/wrong", methods={"POST"}, handler=wrong),
            )
        }
    )
    with caplog.at_level(logging.ERROR):
        answer = post(pm, "acme/broken", {}, body="mei-balance")
        assert post(pm, "acme/wrong", {})["status"] == 500
    assert answer["status"] == 500
    assert "mei-balance" not in answer["body"] and "KeyError" not in answer["body"]
    assert "KeyError" in caplog.text and "acme-gateway" in caplog.text
    assert "mei-balance" not in caplog.text
    assert "not an InboundResponse" in caplog.text


@pytest.mark.parametrize(("body", "status"), [("x" * (64 * 1024 + 1), 413), ("caf\udce9", 400)])
def test_size_and_encoding_are_refused_before_any_handler_runs(
    build: Build, body: str, status: int
) -> None:
    ran: list[InboundRequest] = []

    def handler(request: InboundRequest, events: DeliveryEvents) -> InboundResponse:
        ran.append(request)
        return InboundResponse()

    pm, _ = build(route_plugin(InboundRoute(path="acme/in", methods={"POST"}, handler=handler)))
    answer = pm.hook.pm_inbound_request(
        plugin_name="ondemand",
        method="POST",
        path="acme/in",
        url=BASE + "acme/in",
        headers={},
        form={},
        body=body,
    )
    assert answer["status"] == status
    assert ran == []


def test_an_answer_that_is_not_a_list_of_routes_is_named_and_skipped(
    build: Build, caplog: pytest.LogCaptureFixture
) -> None:
    class Sloppy:
        @hookimpl
        def ondemand_inbound_routes(self, config: dict[str, Any]) -> object:
            return {"acme/status": ok}

    with caplog.at_level(logging.WARNING):
        pm, _ = build(named={"acme-sloppy": Sloppy()})
    assert "acme-sloppy" in caplog.text and "list of InboundRoute" in caplog.text
    assert post(pm, "acme/status", {})["status"] == 404


# The events: early reports, polled channels (bind), what is kept


class PolledChannel:
    """A channel whose provider is polled: it takes the events at start, and learns the
    outcome of a message before its own deliver has returned."""

    name = "polled"
    modes = frozenset({"text"})

    def __init__(self, status: str = "delivered") -> None:
        self.events: DeliveryEvents | None = None
        self.status = status
        self.early: list[bool] = []
        self.sent = 0

    def bind(self, events: DeliveryEvents) -> None:
        self.events = events

    def deliver(self, message: OutboundMessage) -> DeliveryReceipt:
        assert self.events is not None, "bind(events) comes before the first delivery"
        self.sent += 1
        provider_id = f"polled-{self.sent}"
        self.early.append(self.events.delivery_status(self.name, provider_id, self.status))  # type: ignore[arg-type]
        return DeliveryReceipt(status="queued", provider_message_id=provider_id)


class ChannelPlugin:
    def __init__(self, channel: object) -> None:
        self.channel = channel

    @hookimpl
    def ondemand_delivery_channels(self, config: dict[str, Any]) -> list[object]:
        return [self.channel]


def test_a_report_before_the_completion_is_kept_and_applied_when_it_is_written(
    build: Build,
) -> None:
    channel = PolledChannel()
    pm, _ = build(ChannelPlugin(channel), channels={"text": "polled"})
    sent = send_to_mei(pm)
    assert channel.early == [False]  # unknown when it came
    record = store_of(pm).notification_by_id("demo", sent["notification_id"])
    assert record is not None
    assert (record.status, record.provider_message_id) == ("delivered", "polled-1")
    assert instance_of(pm).events.pending_count() == 0
    events = instance_of(pm).events
    assert events.delivery_status("polled", "polled-1", "sent") is True  # known; stays
    after = store_of(pm).notification_by_id("demo", sent["notification_id"])
    assert after is not None and after.status == "delivered"


def test_a_report_kept_too_long_is_dropped(build: Build, monkeypatch: pytest.MonkeyPatch) -> None:
    channel = PolledChannel()
    pm, _ = build(ChannelPlugin(channel), channels={"text": "polled"})
    events = instance_of(pm).events
    now = [0.0]
    events.clock = lambda: now[0]
    original = channel.deliver

    def slow(message: OutboundMessage) -> DeliveryReceipt:
        receipt = original(message)
        now[0] += events_module.PENDING_SECONDS + 1
        return receipt

    channel.deliver = slow  # type: ignore[method-assign]
    sent = send_to_mei(pm)
    record = store_of(pm).notification_by_id("demo", sent["notification_id"])
    assert record is not None and record.status == "sent"


def test_reports_about_unknown_messages_are_kept_within_a_bound(build: Build) -> None:
    pm, _ = build()
    events = instance_of(pm).events
    for number in range(events_module.PENDING_LIMIT + 10):
        assert events.delivery_status("polled", f"never-{number}", "delivered") is False
    assert events.pending_count() == events_module.PENDING_LIMIT


def test_a_status_outside_the_contract_is_refused_naming_the_channel(build: Build) -> None:
    pm, _ = build()
    with pytest.raises(ValueError, match=r"'polled'.*'landed'"):
        instance_of(pm).events.delivery_status("polled", "x", "landed")  # type: ignore[arg-type]


def test_the_plugins_events_and_the_kits_recording_events_are_delivery_events(
    build: Build,
) -> None:
    pm, _ = build()
    assert isinstance(instance_of(pm).events, DeliveryEvents)
    assert isinstance(RecordingEvents(), DeliveryEvents)
    assert isinstance(PolledChannel(), BindsEvents)
