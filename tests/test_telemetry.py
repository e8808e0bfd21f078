"""OpenTelemetry: the spans and metrics that sends, their delivery attempts, providers' callbacks,
opt-outs and recovery passes record, read through the SDK's in-memory exporter and reader; that
none names an address or a message's text; and that without opentelemetry-api nothing of it is
imported."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pluggy
import pytest
from conftest import CONTEXT, Build, Telemetry, assert_valid, send_to_mei
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode
from peers.http import Reply
from peers.twilio import TwilioPeer, twilio_error
from peers.webhook import WebhookPeer
from test_inbound import MEI, SMS_TOKEN, reply, request, sms_status, twilio_settings
from test_recovery import ChannelPlugin, CrashingOutbox, WorkerDied

from ondemand_plugin import SEND_ACTION_ID, __version__, telemetry
from ondemand_plugin.errors import OnDemandError
from ondemand_plugin.telemetry import (
    ATTEMPT,
    ATTEMPT_SPAN,
    CHANNEL,
    ERROR_CODE,
    HTTP_STATUS,
    INBOUND_SPAN,
    LOOKED_UP,
    MARKED,
    MODE,
    NOTIFICATION,
    OPTED_OUT,
    OUTCOME,
    PRACTICE,
    RECOVERY_SPAN,
    ROUTE,
    SEND_SPAN,
    SETTLED,
    SOURCE,
    STATUS,
    UNMATCHED,
)
from ondemand_plugin.testing import run_recovery, store_of

ROOT = Path(__file__).resolve().parent.parent
MEI_EMAIL = "mei.chen@example.com"
# A message text no attribute may carry.
SECRET_TEXT = "Kumquat"


def at(attributes: Mapping[str, Any]) -> frozenset[tuple[str, Any]]:
    """A metric point's key, as ``Telemetry.points`` keys them."""
    return frozenset(attributes.items())


def send(
    pm: pluggy.PluginManager, *, key: str | None = None, body: str | None = SECRET_TEXT
) -> dict[str, Any]:
    result: dict[str, Any] = pm.hook.pm_dashboard_action(
        action_id=SEND_ACTION_ID,
        step="submit",
        subject={"type": "patient", "id": "p-lily"},
        payload={
            "guarantor_id": "g-mei",
            "send_to": {"entity": {"type": "guarantor", "id": "g-mei"}, "mode": "text"},
            "body": body,
            "idempotency_key": key,
        },
        context=CONTEXT,
    )
    assert_valid("send-result", result)
    return result


def attributes(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


@pytest.fixture
def gateway() -> Iterator[TwilioPeer]:
    with TwilioPeer(auth_token=SMS_TOKEN) as peer:
        yield peer


@pytest.fixture
def receiver() -> Iterator[WebhookPeer]:
    with WebhookPeer() as peer:
        yield peer


# Sends and delivery attempts


def test_a_send_is_a_span_over_each_delivery_attempt_retries_and_failover_included(
    build: Build, gateway: TwilioPeer, receiver: WebhookPeer, recorded: Telemetry
) -> None:
    gateway.script = [Reply(503), twilio_error(400, 21606, "This number cannot send there")]
    pm, _ = build(
        channels={"text": ["twilio_sms", "webhook"]},
        twilio_sms=gateway.settings(),
        webhook=receiver.settings(),
        deadline_seconds=4,
    )
    result = send(pm)
    assert result["status"] == "sent"

    [span] = recorded.spans(SEND_SPAN)
    assert attributes(span) == {
        PRACTICE: "demo",
        MODE: "text",
        STATUS: "sent",
        NOTIFICATION: result["notification_id"],
    }
    assert span.status.status_code == StatusCode.UNSET
    assert span.instrumentation_scope is not None
    assert (span.instrumentation_scope.name, span.instrumentation_scope.version) == (
        "ondemand_plugin",
        __version__,
    )
    attempts = recorded.spans(ATTEMPT_SPAN)
    assert [attributes(attempt) for attempt in attempts] == [
        {CHANNEL: "twilio_sms", MODE: "text", ATTEMPT: 1, OUTCOME: "transient"},
        {CHANNEL: "twilio_sms", MODE: "text", ATTEMPT: 2, OUTCOME: "permanent"},
        {CHANNEL: "webhook", MODE: "text", ATTEMPT: 1, OUTCOME: "accepted"},
    ]
    assert [attempt.status.status_code for attempt in attempts] == [
        StatusCode.ERROR,
        StatusCode.ERROR,
        StatusCode.UNSET,
    ]
    assert [attempt.status.description for attempt in attempts[:2]] == ["transient", "permanent"]
    for attempt in attempts:
        assert attempt.parent is not None
        assert attempt.parent.span_id == span.context.span_id
        assert attempt.context.trace_id == span.context.trace_id

    assert recorded.points("ondemand.sends") == {at({MODE: "text", STATUS: "sent"}): 1}
    by_attempt = {
        at({CHANNEL: "twilio_sms", MODE: "text", OUTCOME: "transient"}): 1,
        at({CHANNEL: "twilio_sms", MODE: "text", OUTCOME: "permanent"}): 1,
        at({CHANNEL: "webhook", MODE: "text", OUTCOME: "accepted"}): 1,
    }
    assert recorded.points("ondemand.delivery.attempts") == by_attempt
    assert recorded.points("ondemand.provider.latency") == by_attempt  # one sample each
    assert recorded.points("ondemand.delivery.retries") == {
        at({CHANNEL: "twilio_sms", MODE: "text"}): 1
    }
    latency = recorded.metrics()["ondemand.provider.latency"]
    assert latency.unit == "s"
    [sample] = [
        point
        for point in latency.data.data_points
        if (point.attributes or {}).get(CHANNEL) == "webhook"
    ]
    assert 0 < sample.sum < 4  # seconds, not milliseconds


def test_a_send_no_channel_took_is_an_error_span_counted_as_failed(
    build: Build, gateway: TwilioPeer, recorded: Telemetry
) -> None:
    gateway.rule = lambda number: twilio_error(400, 21606, "This number cannot send there")
    pm, _ = build(channels={"text": "twilio_sms"}, twilio_sms=gateway.settings())
    assert send(pm)["status"] == "failed"

    [span] = recorded.spans(SEND_SPAN)
    assert attributes(span)[STATUS] == "failed"
    assert (span.status.status_code, span.status.description) == (StatusCode.ERROR, "failed")
    [attempt] = recorded.spans(ATTEMPT_SPAN)
    assert attempt.status.status_code == StatusCode.ERROR
    assert recorded.points("ondemand.sends") == {at({MODE: "text", STATUS: "failed"}): 1}
    assert recorded.points("ondemand.delivery.retries") == {}


def test_a_refused_send_is_an_error_span_with_its_code_and_no_attempt(
    build: Build, recorded: Telemetry
) -> None:
    pm, _ = build()
    with pytest.raises(OnDemandError):
        send(pm, body=None)  # no template either: nothing to send
    [refused] = recorded.spans(SEND_SPAN)
    assert recorded.spans(ATTEMPT_SPAN) == []
    assert attributes(refused) == {
        PRACTICE: "demo",
        MODE: "text",
        STATUS: "refused",
        ERROR_CODE: "invalid_request",
    }
    assert refused.status.status_code == StatusCode.ERROR
    assert refused.status.description == "invalid_request"
    assert recorded.points("ondemand.sends") == {at({MODE: "text", STATUS: "refused"}): 1}


def test_an_invalid_request_is_counted_without_a_mode(build: Build, recorded: Telemetry) -> None:
    pm, _ = build()
    with pytest.raises(OnDemandError) as refused:
        pm.hook.pm_dashboard_action(
            action_id=SEND_ACTION_ID,
            step="submit",
            subject={"type": "patient", "id": "p-lily"},
            payload={"guarantor_id": "g-mei", "send_to": {"mode": "pigeon"}},
            context=CONTEXT,
        )
    assert refused.value.code == "invalid_request"
    [span] = recorded.spans(SEND_SPAN)
    assert MODE not in attributes(span)  # "pigeon" is the request's, not a mode
    assert recorded.points("ondemand.sends") == {at({STATUS: "refused"}): 1}


def test_a_repeated_request_is_a_duplicate_send_with_no_attempt_of_its_own(
    build: Build, recorded: Telemetry
) -> None:
    pm, _ = build()
    first = send(pm, key="k1")
    again = send(pm, key="k1")
    assert again["notification_id"] == first["notification_id"]
    assert [attributes(span)[STATUS] for span in recorded.spans(SEND_SPAN)] == [
        "sent",
        "duplicate",
    ]
    assert len(recorded.spans(ATTEMPT_SPAN)) == 1
    assert recorded.points("ondemand.sends") == {
        at({MODE: "text", STATUS: "sent"}): 1,
        at({MODE: "text", STATUS: "duplicate"}): 1,
    }


def test_a_worker_dying_mid_delivery_ends_its_spans_in_error_and_recovery_is_a_span(
    build: Build, tmp_path: Path, recorded: Telemetry
) -> None:
    crashy = CrashingOutbox(tmp_path / "outbox")
    pm, _ = build(ChannelPlugin(crashy), channels={"text": "crashy"})
    with pytest.raises(WorkerDied):
        send(pm, key="k1")
    [span] = recorded.spans(SEND_SPAN)
    assert attributes(span)[STATUS] == "error"
    assert (span.status.status_code, span.status.description) == (StatusCode.ERROR, "WorkerDied")
    [attempt] = recorded.spans(ATTEMPT_SPAN)
    assert attributes(attempt)[OUTCOME] == "error"
    assert recorded.points("ondemand.sends") == {at({MODE: "text", STATUS: "error"}): 1}

    [settled] = run_recovery(pm, older_than_seconds=0)
    assert settled.status == "delivered"  # the outbox had written it
    passes = recorded.spans(RECOVERY_SPAN)
    assert [attributes(span) for span in passes] == [
        {MARKED: 0, LOOKED_UP: 0, SETTLED: 0},  # the worker's start
        {MARKED: 1, LOOKED_UP: 1, SETTLED: 1},
    ]
    assert recorded.spans(ATTEMPT_SPAN) == [attempt]  # recovery never delivers


# Providers' callbacks and opt-outs


def test_callbacks_are_spans_named_by_their_route_and_counted_by_route_and_status(
    build: Build, gateway: TwilioPeer, recorded: Telemetry
) -> None:
    pm, _ = build(channels={"text": "twilio_sms"}, twilio_sms=twilio_settings(gateway))
    sent = send(pm)
    [record] = [r for r in store_of(pm).history("demo", "g-mei", None, 10)]
    assert record.id == sent["notification_id"]
    sid = str(record.provider_message_id)

    assert sms_status(pm, sid, "delivered")["status"] == 200
    assert request(pm, "twilio/status", {"MessageSid": sid}, headers={})["status"] == 403
    assert request(pm, "nowhere/" + MEI, {})["status"] == 404

    spans = recorded.spans(INBOUND_SPAN)
    assert [attributes(span) for span in spans] == [
        {ROUTE: "twilio/status", HTTP_STATUS: 200},
        {ROUTE: "twilio/status", HTTP_STATUS: 403},
        {ROUTE: UNMATCHED, HTTP_STATUS: 404},
    ]
    assert all(span.status.status_code == StatusCode.UNSET for span in spans)
    assert recorded.points("ondemand.inbound.requests") == {
        at({ROUTE: "twilio/status", HTTP_STATUS: 200}): 1,
        at({ROUTE: "twilio/status", HTTP_STATUS: 403}): 1,
        at({ROUTE: UNMATCHED, HTTP_STATUS: 404}): 1,
    }


def test_opt_outs_and_opt_ins_are_counted_by_mode_direction_and_source(
    build: Build, gateway: TwilioPeer, recorded: Telemetry
) -> None:
    pm, _ = build(channels={"text": "twilio_sms"}, twilio_sms=twilio_settings(gateway))
    send(pm)
    assert reply(pm, "STOP")["status"] == 200
    assert reply(pm, "START")["status"] == 200
    assert reply(pm, "STOP")["status"] == 200
    assert recorded.points("ondemand.opt_outs") == {
        at({MODE: "text", OPTED_OUT: True, SOURCE: "reply"}): 2,
        at({MODE: "text", OPTED_OUT: False, SOURCE: "reply"}): 1,
    }


def test_a_provider_refusing_an_opted_out_recipient_counts_an_opt_out_from_the_provider(
    build: Build, gateway: TwilioPeer, recorded: Telemetry
) -> None:
    gateway.rule = lambda number: twilio_error(400, 21610, "Attempt to send to unsubscribed")
    pm, _ = build(channels={"text": "twilio_sms"}, twilio_sms=gateway.settings())
    assert send(pm)["status"] == "failed"
    assert [attributes(span)[OUTCOME] for span in recorded.spans(ATTEMPT_SPAN)] == ["opted_out"]
    assert recorded.points("ondemand.opt_outs") == {
        at({MODE: "text", OPTED_OUT: True, SOURCE: "provider"}): 1
    }


# What is never recorded


def recorded_texts(recorded: Telemetry) -> list[str]:
    """Every text the spans and metrics carry: names, attribute values, statuses, events."""
    texts = []
    for span in recorded.spans():
        texts += [span.name, str(span.status.description)]
        texts += [str(value) for value in (span.attributes or {}).values()]
        for event in span.events:
            texts += [event.name, *(str(value) for value in (event.attributes or {}).values())]
    for name, metric in recorded.metrics().items():
        texts.append(name)
        for point in metric.data.data_points:
            texts += [str(value) for value in (point.attributes or {}).values()]
    return texts


def test_no_span_or_metric_names_the_recipient_or_the_message_text(
    build: Build, gateway: TwilioPeer, receiver: WebhookPeer, recorded: Telemetry
) -> None:
    # The provider's refusal quotes the number, as Twilio's do.
    gateway.script = [twilio_error(400, 21211, f"The 'To' number {MEI} is not valid")]
    pm, _ = build(
        channels={"text": ["twilio_sms", "webhook"], "email": "webhook"},
        twilio_sms=twilio_settings(gateway),
        webhook=receiver.settings(),
    )
    send(pm)
    send_to_mei(pm, mode="email", body=f"{SECRET_TEXT} {{{{BalanceDue}}}}")
    with pytest.raises(OnDemandError):  # a refusal whose message quotes the address
        pm.hook.pm_dashboard_action(
            action_id=SEND_ACTION_ID,
            step="submit",
            subject={"type": "patient", "id": "p-lily"},
            payload={
                "guarantor_id": "g-mei",
                "send_to": {
                    "entity": {"type": "guarantor", "id": "g-mei"},
                    "mode": "email",
                    "address": f"{SECRET_TEXT}@",
                },
                "body": SECRET_TEXT,
            },
            context=CONTEXT,
        )
    reply(pm, f"STOP {SECRET_TEXT}")
    request(pm, f"twilio/{MEI}", {"Body": SECRET_TEXT})

    texts = recorded_texts(recorded)
    assert len(recorded.spans()) >= 6
    for secret in (MEI, MEI[2:], MEI_EMAIL, SECRET_TEXT):
        assert [text for text in texts if secret in text] == [], secret
    assert all(span.events == () or list(span.events) == [] for span in recorded.spans())


# Where providers come from, and without OpenTelemetry


def run_python(script: str) -> dict[str, Any]:
    """Run ``script`` in a new interpreter; what it printed last, as JSON."""
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    answer: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return answer


SEND_IN_A_NEW_HOST = """
import json, sys, tempfile
from pathlib import Path
from ondemand_plugin import SEND_ACTION_ID
from ondemand_plugin.config import ALL_DAY
from ondemand_plugin.testing import build_plugin_manager, demo_host, enable_addon

home = Path(tempfile.mkdtemp())
host = demo_host({
    "database_url": "sqlite:///" + str(home / "ondemand.db"),
    "outbox_dir": str(home / "outbox"),
    "send_window": ALL_DAY,
})
pm = build_plugin_manager(host)
enable_addon(pm, "demo")
configure_telemetry()
result = pm.hook.pm_dashboard_action(
    action_id=SEND_ACTION_ID,
    step="submit",
    subject={"type": "patient", "id": "p-lily"},
    payload={
        "guarantor_id": "g-mei",
        "send_to": {"entity": {"type": "guarantor", "id": "g-mei"}, "mode": "text"},
        "body": "Your balance is {{BalanceDue}}",
    },
    context={"practice_id": "demo", "user": {"id": "u1", "name": "Amy Front"}},
)
inbound = pm.hook.pm_inbound_request(
    plugin_name="ondemand", method="POST", path="nowhere", url="https://h.example/nowhere",
    headers={}, form={}, body="",
)
pm.hook.pm_unconfigure(plugin_manager=pm)
print(json.dumps({"status": result["status"], "inbound": inbound["status"], **report()}))
"""


def test_the_plugin_records_through_the_global_providers_a_host_sets_after_loading_it() -> None:
    script = (
        """
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

exporter, reader = InMemorySpanExporter(), InMemoryMetricReader()

def configure_telemetry():
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))

def report():
    data = reader.get_metrics_data()
    return {
        "spans": [span.name for span in exporter.get_finished_spans()],
        "metrics": sorted(
            metric.name
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
        ),
    }
"""
        + SEND_IN_A_NEW_HOST
    )
    answer = run_python(script)
    assert (answer["status"], answer["inbound"]) == ("sent", 404)
    # The worker's recovery pass ran when it started, before the providers were set.
    assert answer["spans"] == [ATTEMPT_SPAN, SEND_SPAN, INBOUND_SPAN]
    assert answer["metrics"] == sorted(
        [
            "ondemand.delivery.attempts",
            "ondemand.inbound.requests",
            "ondemand.provider.latency",
            "ondemand.sends",
        ]
    )


BLOCK_OPENTELEMETRY = """
import sys

class NoOpenTelemetry:
    \"\"\"As if opentelemetry-api were not installed.\"\"\"

    def find_spec(self, name, path=None, target=None):
        if name == "opentelemetry" or name.startswith("opentelemetry."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NoOpenTelemetry())
"""


def test_without_opentelemetry_the_plugin_sends_and_imports_nothing_of_it() -> None:
    script = (
        BLOCK_OPENTELEMETRY
        + """
from ondemand_plugin import telemetry

def configure_telemetry():
    pass

def report():
    return {
        "installed": telemetry.INSTALLED,
        "imported": sorted(name for name in sys.modules if name.startswith("opentelemetry")),
    }
"""
        + SEND_IN_A_NEW_HOST
    )
    answer = run_python(script)
    assert answer == {"status": "sent", "inbound": 404, "installed": False, "imported": []}


def test_with_no_sdk_configured_the_api_records_nothing_and_the_send_goes() -> None:
    script = """
from ondemand_plugin import telemetry

def configure_telemetry():
    pass

def report():
    return {"installed": telemetry.INSTALLED}
"""
    assert run_python(script + SEND_IN_A_NEW_HOST) == {
        "status": "sent",
        "inbound": 404,
        "installed": True,
    }


def test_only_the_telemetry_module_imports_opentelemetry() -> None:
    package = ROOT / "ondemand_plugin"
    importers = [
        path.relative_to(ROOT).as_posix()
        for path in package.rglob("*.py")
        if re.search(r"^\s*(from|import) opentelemetry", path.read_text("utf-8"), re.M)
    ]
    assert importers == [Path(telemetry.__file__).relative_to(ROOT).as_posix()]


# The README


def test_the_readme_names_every_span_and_metric_with_its_unit() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"^## Traces and metrics\b.*?(?=^## )", readme, re.DOTALL | re.MULTILINE)
    assert match, "README.md has no 'Traces and metrics' section"
    section = match.group(0)
    for name in (SEND_SPAN, ATTEMPT_SPAN, INBOUND_SPAN, RECOVERY_SPAN):
        assert f"| `{name}` |" in section, f"the README's table of spans has no row for {name}"
    for name, (kind, unit, _) in telemetry.METRICS.items():
        row = rf"^\| `{re.escape(name)}` \| {kind} \| `{re.escape(unit)}` \|"
        assert re.search(row, section, re.M), f"the README has no row for {name} ({kind}, {unit})"
    documented = set(re.findall(r"^\| `([a-z_.]+)` \| (?:counter|histogram) \|", section, re.M))
    assert documented == set(telemetry.METRICS), "the README names a metric the plugin lacks"
