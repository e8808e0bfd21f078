"""Composing a message: mappable fields, money as staff and payers read it, escaped HTML for
e-mail, and how many SMS segments a text takes."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ondemand_plugin.errors import OnDemandError
from ondemand_plugin.rules import composing

VALUES = {name: f"<{name}>" for name in composing.FIELDS}


# Fields


def test_fields_in_finds_every_field_in_order_with_or_without_spaces() -> None:
    text = "Hi {{GuarantorFirstName}}, you owe {{ BalanceDue }}. {{GuarantorFirstName}}"
    assert composing.fields_in(text) == ["GuarantorFirstName", "BalanceDue", "GuarantorFirstName"]


def test_fields_in_ignores_text_that_only_looks_like_a_field() -> None:
    assert composing.fields_in("{Balance} {{Two Words}} { {BalanceDue} }") == []


@pytest.mark.parametrize("mode", ["email", "text", "voice"])
def test_every_balance_notification_field_but_the_link_is_known_in_every_mode(mode: str) -> None:
    text = " ".join("{{" + name + "}}" for name in composing.FIELDS if name != "QuickPayLink")
    composing.check_fields(text, mode, "body")


@pytest.mark.parametrize("mode", ["email", "text"])
def test_the_quickpay_link_is_known_in_written_modes(mode: str) -> None:
    composing.check_fields("{{QuickPayLink}}", mode, "body")


@pytest.mark.parametrize(
    ("text", "mode"),
    [
        ("{{AmountOwed}}", "text"),
        ("{{balancedue}}", "email"),
        ("{{}}", "text"),
        ("{{QuickPayLink}}", "voice"),
    ],
)
def test_an_unknown_field_is_refused_naming_where_it_was_found(text: str, mode: str) -> None:
    with pytest.raises(OnDemandError) as refusal:
        composing.check_fields(text, mode, "template.body")
    assert refusal.value.code == "unknown_field"
    assert refusal.value.field == "template.body"
    assert text.replace(" ", "") in refusal.value.message


def test_render_text_merges_values_as_they_are() -> None:
    rendered = composing.render_text("{{GuarantorFullName}} & {{ PracticeName }}", VALUES)
    assert rendered == "<GuarantorFullName> & <PracticeName>"


# Money


@pytest.mark.parametrize(
    ("amount", "shown"),
    [
        ("1234.5", "$1,234.50"),
        ("1234567.891", "$1,234,567.89"),
        ("120.50", "$120.50"),
        ("0", "$0.00"),
        ("-0.00", "$0.00"),
        ("-12", "$12.00 credit"),
        ("-35.00", "$35.00 credit"),
    ],
)
def test_money_is_shown_to_the_cent_and_a_credit_as_a_credit(amount: str, shown: str) -> None:
    assert composing.format_money(Decimal(amount)) == shown


# SMS segments


@pytest.mark.parametrize(
    ("text", "encoding", "segments"),
    [
        ("", "GSM-7", 1),
        ("a" * 160, "GSM-7", 1),
        ("a" * 161, "GSM-7", 2),
        ("a" * 306, "GSM-7", 2),
        ("a" * 307, "GSM-7", 3),
        ("Café @ £5 è ñ ü Ø Δ" + "a" * 141, "GSM-7", 1),
    ],
)
def test_gsm7_texts_take_160_characters_then_153_per_segment(
    text: str, encoding: str, segments: int
) -> None:
    assert composing.sms_segments(text) == (encoding, segments)


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        ("€" * 80, 1),
        ("€" * 80 + "a", 2),
        ("[" + "a" * 158, 1),
        ("[" + "a" * 159, 2),
        ("{}" * 76, 2),
        ("{}" * 77, 3),
    ],
)
def test_extended_gsm7_characters_count_twice(text: str, segments: int) -> None:
    assert composing.sms_segments(text) == ("GSM-7", segments)


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        ("ł" + "a" * 69, 1),
        ("ł" + "a" * 70, 2),
        ("ł" + "a" * 133, 2),
        ("ł" + "a" * 134, 3),
        ("😀" + "a" * 68, 1),  # an emoji takes two UCS-2 code units
        ("😀" + "a" * 69, 2),
        ("😀" + "a" * 160, 3),
    ],
)
def test_one_character_outside_gsm7_switches_the_text_to_ucs2(text: str, segments: int) -> None:
    assert composing.sms_segments(text) == ("UCS-2", segments)


# HTML


def test_html_escapes_every_merged_value_and_the_typed_text() -> None:
    values = {
        **VALUES,
        "GuarantorFirstName": '<script>alert("x")</script>',
        "PracticeName": "Smith & Jones",
    }
    html = composing.render_html(
        "Dear {{GuarantorFirstName}} <3,\nfrom {{PracticeName}}", values, "A & B <Clinic>"
    )
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert "<script>" not in html
    assert "Smith &amp; Jones" in html
    assert "&lt;3," in html
    assert "<h2>A &amp; B &lt;Clinic&gt;</h2>" in html
    assert "<br>\n" in html


def test_html_links_only_an_http_quickpay_link_and_escapes_it() -> None:
    link = 'https://pay.example.com/q?a=1&b="2"'
    html = composing.render_html("{{QuickPayLink}}", {**VALUES, "QuickPayLink": link}, "P")
    escaped = "https://pay.example.com/q?a=1&amp;b=&quot;2&quot;"
    assert f'<a href="{escaped}">{escaped}</a>' in html

    sneaky = composing.render_html(
        "{{QuickPayLink}}", {**VALUES, "QuickPayLink": "javascript:alert(1)"}, "P"
    )
    assert "<a " not in sneaky


def test_html_for_no_payment_is_the_sentence_not_a_link() -> None:
    values = {**VALUES, "QuickPayLink": composing.NO_PAYMENT_SENTENCE}
    html = composing.render_html("{{QuickPayLink}}", values, "P")
    assert composing.NO_PAYMENT_SENTENCE in html
    assert "<a " not in html


def test_a_text_longer_than_1600_characters_is_refused() -> None:
    composing.check_length("a" * 1600, "text")
    composing.check_length("a" * 5000, "email")
    with pytest.raises(OnDemandError) as refusal:
        composing.check_length("a" * 1601, "text")
    assert refusal.value.code == "invalid_request"


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("Pay securely: {{QuickPayLink}}", "No payment is due at this time."),
        (
            "Balance: {{BalanceDue}}. Pay here: {{QuickPayLink}} Reply STOP to opt out.",
            "Balance: {{BalanceDue}}. No payment is due at this time. Reply STOP to opt out.",
        ),
        (
            "Dear {{GuarantorFullName}},\nYou can pay it here: {{QuickPayLink}}\n\nThanks.",
            "Dear {{GuarantorFullName}},\nNo payment is due at this time.\n\nThanks.",
        ),
        ("Pay at {{ QuickPayLink }}. Thank you!", "No payment is due at this time. Thank you!"),
        ("Owed: {{BalanceDue}}.", "Owed: {{BalanceDue}}."),
    ],
)
def test_r5_replaces_the_sentence_that_offers_the_link_whole(text: str, said: str) -> None:
    assert composing.without_pay_link(text) == said
