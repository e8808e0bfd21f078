"""The store interface, one suite for every backend (``store`` is parametrized by backend)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from ondemand_plugin.stores import NotificationRecord, OptOut, Store, open_store
from ondemand_plugin.stores.base import Completion, utc_now


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    opened = open_store(database_url)
    yield opened
    opened.close()


def record(number: int, practice_id: str = "pr1", **changes: object) -> NotificationRecord:
    now = utc_now()
    fields: dict[str, object] = {
        "id": f"n{number}",
        "practice_id": practice_id,
        "guarantor_id": "g1",
        "idempotency_key": f"key-{number}",
        "request_hash": "hash",
        "occurred_at": now,
        "mode": "text",
        "recipient": "+15035550123",
        "sent_to_type": "guarantor",
        "sent_to_id": "g1",
        "sent_to_name": "Mei Chen",
        "sent_by_id": "u1",
        "sent_by_name": "Amy Front",
        "status": "sending",
        "status_changed_at": now,
        "balance": "120.50",
        "payment_allowed": True,
        "template_label": None,
    }
    fields.update(changes)
    return NotificationRecord(**fields)  # type: ignore[arg-type]


def complete(store: Store, notification: NotificationRecord, status: str = "sent") -> None:
    completion = Completion(status, "accepted", "twilio_sms", f"SM{notification.id}", {})
    store.complete_notification(notification.practice_id, notification.id, completion)


def test_a_claimed_key_returns_the_record_that_holds_it(store: Store) -> None:
    assert store.claim_notification(record(1)) is None
    holder = store.claim_notification(record(2, idempotency_key="key-1"))
    assert holder is not None and holder.id == "n1"
    assert store.claim_notification(record(3, practice_id="pr2", idempotency_key="key-1")) is None


def test_a_provider_callback_finds_its_notification(store: Store) -> None:
    store.claim_notification(record(1))
    complete(store, record(1))
    found = store.notification_by_provider_id("twilio_sms", "SMn1")
    assert found is not None and (found.id, found.status) == ("n1", "sent")
    assert store.notification_by_provider_id("smtp", "SMn1") is None


def test_status_moves_forward_only(store: Store) -> None:
    store.claim_notification(record(1))
    complete(store, record(1))
    assert store.advance_status("pr1", "n1", "delivered", "Delivered to the handset.")
    assert not store.advance_status("pr1", "n1", "sent", "late callback")
    assert not store.advance_status("pr1", "n1", "delivered", "the same callback again")
    found = store.notification_by_key("pr1", "key-1")
    assert found is not None
    assert (found.status, found.detail) == ("delivered", "Delivered to the handset.")


def test_advancing_another_practices_notification_changes_nothing(store: Store) -> None:
    store.claim_notification(record(1))
    assert not store.advance_status("pr2", "n1", "delivered", "")
    found = store.notification_by_key("pr1", "key-1")
    assert found is not None and found.status == "sending"


def test_unsettled_notifications_are_those_still_sending_or_unknown(store: Store) -> None:
    earlier = utc_now() - timedelta(minutes=5)
    store.claim_notification(record(1, occurred_at=earlier))
    store.claim_notification(record(2, occurred_at=earlier))
    store.claim_notification(record(3, occurred_at=earlier))
    store.claim_notification(record(4))
    complete(store, record(2))
    store.advance_status("pr1", "n3", "unknown", "The worker stopped during delivery.")
    unsettled = store.unsettled_notifications(utc_now() - timedelta(minutes=1), limit=10)
    assert [found.id for found in unsettled] == ["n1", "n3"]
    assert len(store.unsettled_notifications(utc_now(), limit=1)) == 1


def test_a_reply_belongs_to_the_practices_that_notified_the_address(store: Store) -> None:
    store.claim_notification(record(1, practice_id="pr2"))
    store.claim_notification(record(2))
    store.claim_notification(record(3, practice_id="pr3", mode="email", recipient="a@b.example"))
    assert store.practices_that_notified("text", "+15035550123") == ["pr1", "pr2"]
    assert store.practices_that_notified("text", "+15035550199") == []


def test_an_opt_out_holds_per_practice_mode_and_address_until_revoked(store: Store) -> None:
    address = "+15035550123"
    store.set_opt_out(OptOut("pr1", "text", address, True, "reply STOP", utc_now()))
    assert store.is_opted_out("pr1", "text", address)
    assert not store.is_opted_out("pr1", "voice", address)
    assert not store.is_opted_out("pr2", "text", address)
    store.set_opt_out(OptOut("pr1", "text", address, False, "reply START", utc_now()))
    assert not store.is_opted_out("pr1", "text", address)
