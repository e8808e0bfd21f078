"""The sandbox's compliance screens in Chromium: a STOP in words and HELP answered in the phone
view, the repeat question before the same message goes again, an opt-out recorded at the desk,
and the audit on the account page."""

from __future__ import annotations

from playwright.sync_api import Dialog, Page, expect
from test_sandbox_browser import (
    MEI_TEXT,
    base_url,
    browser,
    check_accessibility,
    open_send_dialog,
    page,
)

__all__ = ["base_url", "browser", "page"]  # the browser tests' fixtures

MESSAGE = "Your balance is {{BalanceDue}}: {{QuickPayLink}}"


def send_text_to_mei(page: Page, message: str = MESSAGE) -> None:
    page.goto("/practices/demo/patients/p-lily")
    open_send_dialog(page)
    dialog = page.get_by_role("dialog", name="Send Balance Notification")
    dialog.get_by_label("Send To").select_option(label=MEI_TEXT)
    dialog.get_by_label("Message").fill(message)
    page.keyboard.press("F2")
    expect(dialog.get_by_role("status")).to_contain_text("Sent to +15035550123 by text")


def reply_as_mei(page: Page, text: str) -> None:
    page.goto("/practices/demo/outbox")
    page.get_by_label("Reply as +15035550123").first.fill(text)
    page.get_by_role("button", name="Send reply").first.click()
    expect(page.get_by_role("status")).to_contain_text("the practice received it")


def test_a_stop_in_words_opts_out_and_the_phone_shows_the_one_confirmation(page: Page) -> None:
    send_text_to_mei(page)
    reply_as_mei(page, "Stop texting me please")
    newest = page.locator(".bubble").first
    expect(newest).to_contain_text("Maple Street Pediatrics: you are opted out")
    expect(newest).to_contain_text("Reply START to opt back in.")
    expect(page.locator(".opted-out").first).to_contain_text("+15035550123 opted out of texts")
    check_accessibility(page, "21-stop-in-words")

    page.goto("/practices/demo/guarantors/g-mei")
    expect(page.locator("#opted-out-of")).to_have_text("texts")


def test_help_is_answered_in_the_phone_view_with_the_practice_s_name_and_phone(
    page: Page,
) -> None:
    send_text_to_mei(page)
    reply_as_mei(page, "help")
    newest = page.locator(".bubble").first
    expect(newest).to_contain_text("Maple Street Pediatrics")
    expect(newest).to_contain_text("Reply STOP to opt out.")
    expect(page.locator(".opted-out")).to_have_count(0)
    check_accessibility(page, "22-help")


def test_the_same_message_again_is_asked_about_first(page: Page) -> None:
    send_text_to_mei(page)
    dialog = page.get_by_role("dialog", name="Send Balance Notification")

    asked: list[str] = []

    def answer(question: Dialog, accept: bool) -> None:
        asked.append(question.message)
        if accept:
            question.accept()
        else:
            question.dismiss()

    send_another = dialog.get_by_role("button", name="Send another")
    page.once("dialog", lambda question: answer(question, accept=False))
    send_another.click()
    alert = dialog.locator("#od-error")
    expect(alert).to_have_attribute("data-code", "recent_duplicate")
    assert asked == ["Sent 1 minute ago. Send again?"]

    page.once("dialog", lambda question: answer(question, accept=True))
    send_another.click()
    expect(dialog.get_by_role("status")).to_contain_text("Sent to +15035550123 by text")
    assert len(asked) == 2
    page.keyboard.press("Escape")
    page.goto("/practices/demo/outbox")
    expect(page.locator(".message")).to_have_count(2)


def test_an_opt_out_recorded_at_the_desk_shows_in_the_audit(page: Page) -> None:
    page.goto("/practices/demo/guarantors/g-mei")
    page.get_by_label("Messages").select_option(label="Texts")
    page.get_by_label("What they said").fill("Asked on the phone")
    page.get_by_role("button", name="Record opt-out").click()
    expect(page.get_by_role("status")).to_contain_text("+15035550123 opted out of text messages")
    expect(page.locator("#opted-out-of")).to_have_text("texts")

    page.goto("/practices/demo/account")
    audit = page.locator("#compliance-audit tbody tr").first
    expect(audit).to_contain_text("consent")
    expect(audit).to_contain_text('staff "Asked on the phone"')
    expect(audit).to_contain_text("+1***0123")
    check_accessibility(page, "23-audit")


def test_a_reply_the_words_did_not_catch_is_in_the_history_and_recorded_from_it(
    page: Page,
) -> None:
    send_text_to_mei(page)
    said = "My son has his own phone now <b>please</b> use that"
    reply_as_mei(page, said)
    expect(page.locator(".opted-out")).to_have_count(0)

    page.goto("/practices/demo/guarantors/g-mei")
    reply = page.locator("#history tr.patient-reply")
    expect(reply).to_have_count(1)
    expect(reply.locator(".reply-text")).to_have_text(said)  # shown as typed, not as markup
    expect(reply).to_contain_text("in reply to the text of")
    check_accessibility(page, "24-patient-reply")
    reply.get_by_role("button", name="Record an opt-out").click()
    expect(page.get_by_role("status")).to_contain_text("+15035550123 opted out of text messages")
    expect(page.locator("#opted-out-of")).to_have_text("texts")
