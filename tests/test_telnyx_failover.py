"""The separately distributed Telnyx channel (plugins/ondemand-telnyx, found through its entry
point) as the failover of ``twilio_sms``: a text Twilio will not take goes out through Telnyx."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from conftest import CONTEXT, Build, send_to_mei
from peers.http import Reply
from peers.twilio import TwilioPeer, twilio_error

from ondemand_telnyx.testing import TelnyxGateway


@pytest.fixture
def twilio() -> Iterator[TwilioPeer]:
    with TwilioPeer() as peer:
        yield peer


@pytest.fixture
def telnyx() -> Iterator[TelnyxGateway]:
    with TelnyxGateway() as gateway:
        yield gateway


@pytest.mark.parametrize(
    "failure",
    [Reply(503), twilio_error(400, 21606, "This number cannot send to this country")],
    ids=["failing_until_the_deadline", "refusing_for_good"],
)
def test_a_text_twilio_will_not_take_goes_out_through_telnyx(
    build: Build, twilio: TwilioPeer, telnyx: TelnyxGateway, failure: Reply
) -> None:
    twilio.rule = lambda number: failure
    pm, _ = build(
        channels={"text": ["twilio_sms", "telnyx"]},
        twilio_sms=twilio.settings(),
        telnyx=telnyx.settings(),
        deadline_seconds=1.5,
    )
    result = send_to_mei(pm)
    assert result["status"] == "sent", result["detail"]
    assert twilio.requests and not twilio.created
    [message_id] = telnyx.messages
    assert telnyx.messages[message_id]["to"] == "+15035550123"
    [entries] = pm.hook.pm_history_entries(
        guarantor_id="g-mei", context=CONTEXT, before=None, limit=10
    )
    [entry] = list[dict[str, Any]](entries)
    assert (entry["status"], entry["channel"]) == ("sent", "telnyx")
