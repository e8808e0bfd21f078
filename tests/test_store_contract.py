"""The store interface, one suite for every backend (``store`` is parametrized by backend)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from hookspecs.types import Template
from ondemand_plugin.clock import format_timestamp, utc_now
from ondemand_plugin.stores import (
    AddonChange,
    Completion,
    ConsentChange,
    NotificationRecord,
    OptOut,
    Payment,
    Store,
    open_store,
)


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


def test_a_released_claim_frees_its_key_at_once(store: Store) -> None:
    store.claim_notification(record(1))
    assert store.release_claim("pr1", "n1")
    assert store.notification_by_key("pr1", "key-1") is None
    assert store.claim_notification(record(2, idempotency_key="key-1")) is None
    holder = store.notification_by_key("pr1", "key-1")
    assert holder is not None and holder.id == "n2"


def test_only_a_claim_still_sending_in_its_own_practice_is_released(store: Store) -> None:
    store.claim_notification(record(1))
    assert not store.release_claim("pr2", "n1")
    complete(store, record(1))
    assert not store.release_claim("pr1", "n1")
    assert not store.release_claim("pr1", "n-never-claimed")
    kept = store.notification_by_key("pr1", "key-1")
    assert kept is not None and kept.status == "sent"


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


def test_a_notification_is_found_by_its_id_in_its_own_practice_only(store: Store) -> None:
    store.claim_notification(record(1))
    found = store.notification_by_id("pr1", "n1")
    assert found is not None and (found.id, found.status) == ("n1", "sending")
    assert store.notification_by_id("pr2", "n1") is None
    assert store.notification_by_id("pr1", "n2") is None


@pytest.mark.parametrize("ahead", ["delivered", "undelivered", "failed", "sent"])
def test_a_completion_never_moves_the_status_back_but_records_the_rest(
    store: Store, ahead: str
) -> None:
    # A provider's callback settled the notification while its delivery was still running.
    store.claim_notification(record(1))
    assert store.advance_status("pr1", "n1", ahead, f"Twilio: {ahead}.")
    settled = store.notification_by_id("pr1", "n1")
    assert settled is not None
    result = {"notification_id": "n1", "status": "sent"}
    completion = Completion("sent", "Accepted by the gateway.", "twilio_sms", "SM1", result)
    store.complete_notification("pr1", "n1", completion)
    done = store.notification_by_id("pr1", "n1")
    assert done is not None
    assert (done.status, done.status_changed_at, done.detail) == (
        ahead,
        settled.status_changed_at,
        f"Twilio: {ahead}.",
    )
    assert (done.channel, done.provider_message_id, done.result) == ("twilio_sms", "SM1", result)


def test_a_completion_moves_an_unknown_send_forward(store: Store) -> None:
    # The worker outlived its deadline and margin, recovery marked it unknown, then it finished.
    store.claim_notification(record(1))
    store.advance_status("pr1", "n1", "unknown", "The worker stopped during delivery.")
    store.complete_notification("pr1", "n1", Completion("failed", "refused", None, None, {}))
    done = store.notification_by_id("pr1", "n1")
    assert done is not None and (done.status, done.detail) == ("failed", "refused")


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


def test_a_claim_keeps_the_channels_its_route_named(store: Store) -> None:
    store.claim_notification(record(1, route_channels=("twilio_sms", "outbox")))
    store.claim_notification(record(2))
    routed = store.notification_by_id("pr1", "n1")
    assert routed is not None and routed.route_channels == ("twilio_sms", "outbox")
    unrecorded = store.notification_by_id("pr1", "n2")
    assert unrecorded is not None and unrecorded.route_channels is None


def test_sends_still_sending_are_read_apart_from_the_unknown_ones(store: Store) -> None:
    earlier = utc_now() - timedelta(minutes=5)
    for number in (1, 2, 3):
        store.claim_notification(record(number, occurred_at=earlier + timedelta(seconds=number)))
    store.claim_notification(record(4))
    store.advance_status("pr1", "n2", "unknown", "The worker stopped during delivery.")
    cutoff = utc_now() - timedelta(minutes=1)
    assert [found.id for found in store.sending_notifications(cutoff, limit=10)] == ["n1", "n3"]
    assert [found.id for found in store.sending_notifications(cutoff, limit=1)] == ["n1"]
    assert [found.id for found in store.unknown_notifications(cutoff, limit=10)] == ["n2"]


def test_unknown_sends_come_never_looked_up_first_then_looked_up_longest_ago(
    store: Store,
) -> None:
    earlier = utc_now() - timedelta(minutes=5)
    for number in (1, 2, 3):
        store.claim_notification(record(number, occurred_at=earlier + timedelta(seconds=number)))
        store.advance_status("pr1", f"n{number}", "unknown", "The worker stopped.")
    cutoff = utc_now()

    def unknown() -> list[str]:
        return [found.id for found in store.unknown_notifications(cutoff, limit=10)]

    assert unknown() == ["n1", "n2", "n3"]
    assert store.record_lookup("pr1", "n1", "No channel can tell yet.")
    assert unknown() == ["n2", "n3", "n1"]
    assert store.record_lookup("pr1", "n2", "No channel can tell yet.")
    assert unknown() == ["n3", "n1", "n2"]
    looked_up = store.notification_by_id("pr1", "n1")
    assert looked_up is not None and looked_up.looked_up_at is not None
    assert (looked_up.status, looked_up.detail) == ("unknown", "No channel can tell yet.")


def test_a_lookup_is_recorded_only_on_a_send_still_unknown(store: Store) -> None:
    store.claim_notification(record(1))
    store.claim_notification(record(2))
    complete(store, record(2))
    assert not store.record_lookup("pr1", "n1", "No channel can tell yet.")
    assert not store.record_lookup("pr1", "n2", "No channel can tell yet.")
    assert not store.record_lookup("pr2", "n1", "No channel can tell yet.")
    for number in (1, 2):
        found = store.notification_by_id("pr1", f"n{number}")
        assert found is not None and found.looked_up_at is None
        assert found.detail != "No channel can tell yet."


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


def test_an_inbound_message_once_recorded_is_seen_again_per_channel(
    store: Store, database_url: str
) -> None:
    sid = "SM" + "1" * 32
    assert not store.inbound_message_seen("twilio_sms", sid)
    store.record_inbound_message("twilio_sms", sid, utc_now())
    store.record_inbound_message("twilio_sms", sid, utc_now())  # again: no error, no change
    assert store.inbound_message_seen("twilio_sms", sid)
    assert not store.inbound_message_seen("other_sms", sid)
    assert not store.inbound_message_seen("twilio_sms", sid.lower())
    reopened = open_store(database_url)  # kept in the database, seen by every worker
    try:
        assert reopened.inbound_message_seen("twilio_sms", sid)
    finally:
        reopened.close()


def test_the_addon_log_keeps_every_switch_in_order_and_the_state_follows_the_last(
    store: Store,
) -> None:
    first = AddonChange("pr1", True, "Ann Manager", "signed up", utc_now())
    second = AddonChange("pr1", False, "Bob Support", None, utc_now())
    for change in (first, second, AddonChange("pr2", True, "Ann Manager", None, utc_now())):
        store.record_addon_change(change)
    assert store.addon_log("pr1") == [first, second]
    assert store.enabled_practices() == frozenset({"pr2"})
    store.record_addon_change(AddonChange("pr1", True, "Bob Support", "renewed", utc_now()))
    assert store.enabled_practices() == frozenset({"pr1", "pr2"})
    assert [change.practice_id for change in store.addon_log("pr2")] == ["pr2"]
    assert store.addon_log("pr3") == []


def template(template_id: str, label: str, **changes: object) -> Template:
    fields: dict[str, object] = {
        "id": template_id,
        "label": label,
        "mode": "email",
        "active": True,
        "sender_email": "billing@maple.example.com",
        "subject": "Your balance",
        "body": "Pay {{BalanceDue}} at {{QuickPayLink}}",
    }
    fields.update(changes)
    return Template(**fields)  # type: ignore[arg-type]


def test_templates_are_saved_listed_by_label_replaced_and_deleted(store: Store) -> None:
    reminder = template("t2", "Reminder")
    store.save_template("pr1", reminder)
    store.save_template("pr1", template("t1", "Balance due", mode="text", sender_email=None))
    store.save_template("pr1", template("t3", "balance, lower case", active=False, subject=None))
    # Byte order, as SQLite's default collation sorts: capitals first.
    assert [found.label for found in store.list_templates("pr1")] == [
        "Balance due",
        "Reminder",
        "balance, lower case",
    ]
    assert store.get_template("pr1", "t2") == reminder
    edited = template("t2", "Reminder", body="Edited {{BalanceDue}}", active=False)
    store.save_template("pr1", edited)
    assert store.get_template("pr1", "t2") == edited
    assert store.delete_template("pr1", "t2")
    assert not store.delete_template("pr1", "t2")
    assert store.get_template("pr1", "t2") is None
    assert [found.id for found in store.list_templates("pr1")] == ["t1", "t3"]


def test_a_template_belongs_to_its_practice_only(store: Store) -> None:
    store.save_template("pr1", template("t1", "Mine"))
    store.save_template("pr2", template("t1", "Theirs"))
    assert [found.label for found in store.list_templates("pr2")] == ["Theirs"]
    assert store.get_template("pr3", "t1") is None
    assert store.list_templates("pr3") == []
    assert not store.delete_template("pr3", "t1")
    assert store.delete_template("pr2", "t1")
    found = store.get_template("pr1", "t1")
    assert found is not None and found.label == "Mine"


def test_a_claimed_record_reads_back_whole_and_is_completed_with_its_result(
    store: Store,
) -> None:
    claimed = record(1, template_label="Reminder", payment_allowed=False)
    store.claim_notification(claimed)
    assert store.notification_by_key("pr1", "key-1") == claimed
    result = {"notification_id": "n1", "status": "sent", "nested": {"list": [1, "two", None]}}
    completion = Completion("sent", "Accepted by the gateway.", "twilio_sms", "SM1", result)
    store.complete_notification("pr1", "n1", completion)
    done = store.notification_by_key("pr1", "key-1")
    assert done is not None
    assert (done.status, done.detail, done.channel, done.provider_message_id) == (
        "sent",
        "Accepted by the gateway.",
        "twilio_sms",
        "SM1",
    )
    assert done.result == result
    assert done.status_changed_at >= claimed.status_changed_at
    assert (done.occurred_at, done.recipient, done.payment_allowed) == (
        claimed.occurred_at,
        claimed.recipient,
        False,
    )


def test_completing_another_practices_notification_changes_nothing(store: Store) -> None:
    store.claim_notification(record(1))
    store.complete_notification("pr2", "n1", Completion("sent", "", "outbox", None, {}))
    found = store.notification_by_key("pr1", "key-1")
    assert found is not None and (found.status, found.result) == ("sending", None)
    assert store.notification_by_key("pr2", "key-1") is None


def test_history_pages_newest_first_without_gap_or_overlap_even_at_one_instant(
    store: Store,
) -> None:
    start = utc_now() - timedelta(hours=1)
    # Five pairs that share an instant: the id orders them.
    for number in range(10):
        store.claim_notification(record(number, occurred_at=start + timedelta(seconds=number // 2)))
    store.claim_notification(record(20, guarantor_id="g2"))
    store.claim_notification(record(21, practice_id="pr2"))

    pages: list[list[str]] = []
    before: tuple[str, str] | None = None
    while page := store.history("pr1", "g1", before, limit=3):
        pages.append([found.id for found in page])
        before = (format_timestamp(page[-1].occurred_at), page[-1].id)

    assert pages == [["n9", "n8", "n7"], ["n6", "n5", "n4"], ["n3", "n2", "n1"], ["n0"]]
    assert [found.id for found in store.history("pr1", "g2", None, 10)] == ["n20"]
    assert [found.id for found in store.history("pr2", "g1", None, 10)] == ["n21"]
    assert store.history("pr3", "g1", None, 10) == []


def test_timestamps_keep_their_microseconds(store: Store) -> None:
    moment = datetime(2026, 3, 1, 12, 30, 45, 123456, tzinfo=UTC)
    store.claim_notification(record(1, occurred_at=moment, status_changed_at=moment))
    found = store.notification_by_key("pr1", "key-1")
    assert found is not None and found.occurred_at == moment == found.status_changed_at
    change = AddonChange("pr1", True, "Ann", None, moment)
    store.record_addon_change(change)
    assert store.addon_log("pr1") == [change]


def test_no_read_by_practice_returns_another_practices_rows(store: Store) -> None:
    store.claim_notification(record(1))
    complete(store, record(1))
    store.record_addon_change(AddonChange("pr1", True, "Ann", None, utc_now()))
    store.save_template("pr1", template("t1", "Mine"))
    store.set_opt_out(OptOut("pr1", "text", "+15035550123", True, "reply STOP", utc_now()))

    assert store.notification_by_key("pr2", "key-1") is None
    assert store.notification_by_id("pr2", "n1") is None
    assert store.history("pr2", "g1", None, 100) == []
    assert not store.advance_status("pr2", "n1", "delivered", "")
    assert store.addon_log("pr2") == []
    assert store.list_templates("pr2") == []
    assert store.get_template("pr2", "t1") is None
    assert not store.is_opted_out("pr2", "text", "+15035550123")


def test_the_consent_ledger_keeps_every_change_in_order_per_practice(store: Store) -> None:
    start = datetime(2026, 5, 1, tzinfo=UTC)
    changes = [
        ConsentChange(
            "pr1",
            "text",
            "+15035550123",
            True,
            "reply",
            "twilio_sms",
            "Stop pls",
            "+15035550101",
            start,
        ),
        ConsentChange(
            "pr1",
            "text",
            "+15035550123",
            False,
            "staff",
            "Amy Front",
            "asked at desk",
            None,
            start + timedelta(hours=1),
        ),
        ConsentChange(
            "pr2",
            "voice",
            "+15035550123",
            True,
            "key_press",
            "twilio_voice",
            "9",
            "+15035550199",
            start + timedelta(hours=2),
        ),
    ]
    for change in changes:
        store.record_consent_change(change)
    assert store.consent_changes("pr1", None, None) == changes[:2]
    assert store.consent_changes("pr1", start + timedelta(minutes=1), None) == changes[1:2]
    assert store.consent_changes("pr1", None, start + timedelta(minutes=1)) == changes[:1]
    assert store.consent_changes("pr2", None, None) == changes[2:]


def test_notifications_to_an_address_since_a_moment_newest_first_per_practice(
    store: Store,
) -> None:
    now = utc_now()
    store.claim_notification(record(1, occurred_at=now - timedelta(hours=30)))
    store.claim_notification(record(2, occurred_at=now - timedelta(hours=2)))
    store.claim_notification(record(3, occurred_at=now - timedelta(hours=1), mode="voice"))
    store.claim_notification(record(4, occurred_at=now, recipient="mei@example.com"))
    store.claim_notification(record(5, practice_id="pr2", occurred_at=now))
    found = store.notifications_to("pr1", ("+15035550123",), now - timedelta(hours=24))
    assert [r.id for r in found] == ["n3", "n2"]


def test_notifications_between_two_moments_oldest_first(store: Store) -> None:
    now = utc_now()
    for number, hours_ago in ((1, 50), (2, 20), (3, 1)):
        store.claim_notification(record(number, occurred_at=now - timedelta(hours=hours_ago)))
    store.claim_notification(record(4, practice_id="pr2", occurred_at=now))
    assert [r.id for r in store.notifications_between("pr1", None, None)] == ["n1", "n2", "n3"]
    span = store.notifications_between("pr1", now - timedelta(hours=24), now - timedelta(hours=1))
    assert [r.id for r in span] == ["n2"]


# Tracked links and payments


def linked(number: int, practice_id: str = "pr1", **changes: object) -> NotificationRecord:
    return record(
        number,
        practice_id,
        link_token_hash=f"hash-{number}",
        link_expires_at=utc_now() + timedelta(days=1),
        amount="45.10",
        request={"guarantor_id": "g1", "body": "Hi"},
        **changes,
    )


def payment(notification_id: str, reference: str, cents: int, minute: int) -> Payment:
    return Payment(
        practice_id="pr1",
        guarantor_id="g1",
        notification_id=notification_id,
        amount_cents=cents,
        paid_at=datetime(2026, 5, 1, 16, minute, tzinfo=UTC),
        reference=reference,
    )


def test_a_linked_record_reads_back_whole_by_its_token_hash(store: Store) -> None:
    store.claim_notification(linked(1))
    claimed = linked(2)
    store.claim_notification(claimed)
    assert store.notification_by_link("hash-2") == claimed
    found = store.notification_by_link("hash-1")
    assert found is not None and found.request == {"guarantor_id": "g1", "body": "Hi"}
    assert store.notification_by_link("hash-3") is None


def test_a_link_is_opened_once_and_cancelled_only_while_live(store: Store) -> None:
    store.claim_notification(linked(1))
    first = utc_now()
    assert store.record_link_opened("pr1", "n1", first)
    assert not store.record_link_opened("pr1", "n1", first + timedelta(minutes=1))
    assert not store.record_link_opened("pr2", "n1", first)
    found = store.notification_by_id("pr1", "n1")
    assert found is not None and found.link_opened_at == first
    assert not store.cancel_link("pr2", "n1", "Eve", first)
    assert store.cancel_link("pr1", "n1", "Amy Front (u1)", first)
    assert not store.cancel_link("pr1", "n1", "Amy Front (u1)", first)
    found = store.notification_by_id("pr1", "n1")
    assert found is not None
    assert (found.link_expires_at, found.link_cancelled_by) == (first, "Amy Front (u1)")


def test_a_payment_goes_to_the_latest_notification_with_a_live_or_opened_link(
    store: Store,
) -> None:
    now = utc_now()
    store.claim_notification(linked(1, occurred_at=now - timedelta(hours=3)))
    store.claim_notification(linked(2, occurred_at=now - timedelta(hours=2)))
    store.claim_notification(record(3, occurred_at=now - timedelta(hours=1)))  # no link
    target = store.payment_target("pr1", "g1", now)
    assert target is not None and target.id == "n2"
    store.cancel_link("pr1", "n2", "Amy", now)
    store.cancel_link("pr1", "n1", "Amy", now)
    assert store.payment_target("pr1", "g1", now) is None
    store.record_link_opened("pr1", "n1", now)
    target = store.payment_target("pr1", "g1", now)
    assert target is not None and target.id == "n1"
    assert store.payment_target("pr2", "g1", now) is None


def test_payments_add_up_once_per_reference_from_the_earliest(store: Store) -> None:
    store.claim_notification(linked(1))
    assert store.record_payment(payment("n1", "r1", 4510, 42))
    assert not store.record_payment(payment("n1", "r1", 4510, 42))
    assert store.record_payment(payment("n1", "r2", 1005, 30))
    found = store.notification_by_id("pr1", "n1")
    assert found is not None
    assert (found.paid_cents, found.paid_at) == (5515, datetime(2026, 5, 1, 16, 30, tzinfo=UTC))


def test_a_months_notifications_are_read_per_practice_oldest_first(store: Store) -> None:
    may = datetime(2026, 5, 1, tzinfo=UTC)
    store.claim_notification(record(1, occurred_at=may - timedelta(seconds=1)))
    store.claim_notification(record(2, occurred_at=may + timedelta(days=3)))
    store.claim_notification(record(3, occurred_at=may))
    store.claim_notification(record(4, practice_id="pr2", occurred_at=may))
    june = datetime(2026, 6, 1, tzinfo=UTC)
    assert [r.id for r in store.notifications_between("pr1", may, june)] == ["n3", "n2"]
