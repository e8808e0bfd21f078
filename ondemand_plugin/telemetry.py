"""Traces and metrics through OpenTelemetry's API, when ``opentelemetry-api`` is installed (the
``otel`` extra). Without it every call here does nothing, and nothing of OpenTelemetry is
imported: this module is the only one that imports it.

The plugin only uses the API. The host configures the SDK (exporters, sampling, resource) and
sets the global providers, which the plugin's tracer and meter follow, even when they are set
after the plugin was loaded. ``use_providers`` points them at others (the tests' in-memory SDK).

Nothing recorded names an address, a message's text or a secret: practice and notification
ids, modes, channel names, statuses and outcome words only. Every metric attribute takes its
value from a closed set (modes, statuses, outcome words, the names of configured channels and
registered routes), since an SDK keeps each new combination as a time series for the life of
the process: a value taken from a request would let anyone who can reach the inbound routes
grow the host's memory.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager

from ondemand_plugin import __version__
from ondemand_plugin.errors import OnDemandError

try:
    from opentelemetry import metrics, trace
    from opentelemetry.trace import Status, StatusCode
except ImportError:  # the "otel" extra is not installed: every call here does nothing
    INSTALLED = False
else:
    INSTALLED = True

SCOPE = "ondemand_plugin"

# Span names.
SEND_SPAN = "ondemand.send"
ATTEMPT_SPAN = "ondemand.delivery.attempt"
INBOUND_SPAN = "ondemand.inbound"
RECOVERY_SPAN = "ondemand.recovery"

# Attribute names.
PRACTICE = "ondemand.practice_id"
NOTIFICATION = "ondemand.notification_id"
MODE = "ondemand.mode"
STATUS = "ondemand.status"
ERROR_CODE = "ondemand.error_code"
CHANNEL = "ondemand.channel"
ATTEMPT = "ondemand.attempt"
OUTCOME = "ondemand.outcome"
ROUTE = "ondemand.route"
HTTP_STATUS = "http.response.status_code"
OPTED_OUT = "ondemand.opted_out"
SOURCE = "ondemand.source"
MARKED = "ondemand.recovery.marked"
LOOKED_UP = "ondemand.recovery.looked_up"
SETTLED = "ondemand.recovery.settled"

# A request to a path no route serves: its path is not recorded.
UNMATCHED = "unmatched"
# The sources of opt-outs the plugin names itself; a channel's own word counts as "other".
SOURCES = frozenset({"reply", "provider"})

# Metric name: (instrument kind, unit, description).
METRICS: dict[str, tuple[str, str, str]] = {
    "ondemand.sends": (
        "counter",
        "{send}",
        "Send requests, by mode and status (sent, failed, duplicate, refused, error).",
    ),
    "ondemand.delivery.attempts": (
        "counter",
        "{attempt}",
        "Calls of a channel's deliver, retries and failovers included, by channel, mode and "
        "outcome.",
    ),
    "ondemand.delivery.retries": (
        "counter",
        "{retry}",
        "Attempts after a channel's first one for the same message, by channel and mode.",
    ),
    "ondemand.provider.latency": (
        "histogram",
        "s",
        "How long a channel's deliver call took, by channel, mode and outcome.",
    ),
    "ondemand.opt_outs": (
        "counter",
        "{change}",
        "Opt-outs and opt-ins the plugin recorded, by mode, direction and source.",
    ),
    "ondemand.inbound.requests": (
        "counter",
        "{request}",
        "Calls of pm_inbound_request for this plugin, by route and response status.",
    ),
}
# Seconds: a provider's API answers in tens of milliseconds to a few seconds; the SDK's default
# boundaries are made for milliseconds.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

Value = str | int | bool


class Mark:
    """What a span's code learns as it runs: its attributes, and why it failed if it did. Set
    on the span, and on the metrics it feeds, when the span ends."""

    __slots__ = ("attributes", "failure")

    def __init__(self, attributes: Mapping[str, Value]) -> None:
        self.attributes: dict[str, Value] = dict(attributes)
        self.failure: str | None = None

    def set(self, name: str, value: Value) -> None:
        self.attributes[name] = value

    def fail(self, reason: str) -> None:
        """Mark the span as an error; ``reason`` is an outcome word or an error code."""
        self.failure = reason

    def only(self, *names: str) -> dict[str, Value]:
        return {name: self.attributes[name] for name in names if name in self.attributes}


class _Instruments:
    def __init__(
        self,
        tracer_provider: trace.TracerProvider | None,
        meter_provider: metrics.MeterProvider | None,
    ) -> None:
        self.tracer = trace.get_tracer(SCOPE, __version__, tracer_provider)
        meter = metrics.get_meter(SCOPE, __version__, meter_provider)
        counters = {
            name: meter.create_counter(name, unit, description)
            for name, (kind, unit, description) in METRICS.items()
            if kind == "counter"
        }
        self.sends = counters["ondemand.sends"]
        self.attempts = counters["ondemand.delivery.attempts"]
        self.retries = counters["ondemand.delivery.retries"]
        self.opt_outs = counters["ondemand.opt_outs"]
        self.inbound = counters["ondemand.inbound.requests"]
        _, unit, description = METRICS["ondemand.provider.latency"]
        self.latency = meter.create_histogram(
            "ondemand.provider.latency",
            unit,
            description,
            explicit_bucket_boundaries_advisory=LATENCY_BUCKETS,
        )


_instruments: _Instruments | None = None


def use_providers(
    tracer_provider: trace.TracerProvider | None = None,
    meter_provider: metrics.MeterProvider | None = None,
) -> None:
    """Record through these providers rather than the global ones (``None``: the global)."""
    global _instruments
    _instruments = _Instruments(tracer_provider, meter_provider) if INSTALLED else None


use_providers()


@contextmanager
def _span(name: str, attributes: Mapping[str, Value]) -> Iterator[Mark]:
    mark = Mark(attributes)
    if _instruments is None:
        yield mark
        return
    # Not record_exception: an exception's message may quote an address or a message's text.
    # The attributes are set once, at the end, when all are known: the SDK checks each one.
    with _instruments.tracer.start_as_current_span(
        name, record_exception=False, set_status_on_exception=False
    ) as span:
        try:
            yield mark
        except BaseException as error:
            if mark.failure is None:
                mark.fail(type(error).__name__)
            raise
        finally:
            span.set_attributes(mark.attributes)
            if mark.failure is not None:
                span.set_status(Status(StatusCode.ERROR, mark.failure))


@contextmanager
def send(practice_id: str) -> Iterator[Mark]:
    """A send request (``pm_dashboard_action``'s submit step). Its code sets ``MODE`` once the
    request is known valid, and ``STATUS``: a refusal is ``refused``, with its code."""
    with _span(SEND_SPAN, {PRACTICE: practice_id}) as mark:
        try:
            yield mark
        except OnDemandError as error:
            mark.set(STATUS, "refused")
            mark.set(ERROR_CODE, error.code.value)
            mark.fail(error.code.value)
            raise
        except BaseException:
            mark.set(STATUS, "error")
            raise
        finally:
            if _instruments is not None:
                _instruments.sends.add(1, mark.only(MODE, STATUS))


@contextmanager
def delivery_attempt(channel: str, mode: str, number: int) -> Iterator[Mark]:
    """One call of a channel's deliver; ``number`` counts from 1 for each channel of a send.
    Its code sets ``OUTCOME`` (and ``fail``\\ s the span unless the channel accepted)."""
    started = time.perf_counter()
    with _span(ATTEMPT_SPAN, {CHANNEL: channel, MODE: mode, ATTEMPT: number}) as mark:
        try:
            yield mark
        finally:
            if _instruments is not None:
                attributes = mark.only(CHANNEL, MODE, OUTCOME)
                _instruments.latency.record(time.perf_counter() - started, attributes)
                _instruments.attempts.add(1, attributes)
                if number > 1:
                    _instruments.retries.add(1, mark.only(CHANNEL, MODE))


@contextmanager
def inbound() -> Iterator[Mark]:
    """A ``pm_inbound_request`` for this plugin. Its code sets ``ROUTE`` to the registered path
    of the route that serves it (else it stays ``UNMATCHED``) and ``HTTP_STATUS``."""
    with _span(INBOUND_SPAN, {ROUTE: UNMATCHED}) as mark:
        try:
            yield mark
        finally:
            status = mark.attributes.get(HTTP_STATUS)
            if isinstance(status, int) and status >= 500:
                mark.fail(str(status))
            if _instruments is not None:
                _instruments.inbound.add(1, mark.only(ROUTE, HTTP_STATUS))


def recovery_pass() -> AbstractContextManager[Mark]:
    """A recovery pass; its code sets the counts ``MARKED``, ``LOOKED_UP`` and ``SETTLED``."""
    return _span(RECOVERY_SPAN, {MARKED: 0, LOOKED_UP: 0, SETTLED: 0})


def opt_out_changed(mode: str, opted_out: bool, source: str) -> None:
    if _instruments is not None:
        _instruments.opt_outs.add(
            1, {MODE: mode, OPTED_OUT: opted_out, SOURCE: source if source in SOURCES else "other"}
        )
