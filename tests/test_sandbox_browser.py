"""The sandbox end to end, in Debian's Chromium driven by Playwright, against a real uvicorn server.

Screenshots of the main screens land in ``test-artifacts/screenshots/`` to inspect a run.
Without ``/usr/bin/chromium`` the tests are skipped, except in CI (``CI`` set), where they fail.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import serving_sandbox

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "screenshots"
MEI_TEXT = "Mei Chen (guarantor) · Text · +15035550123"
TOM = "Tom Chen · $0.00 · no payment can be made"
TOM_EMAIL = "Tom Chen (guarantor) · E-mail · tom.chen@example.com"

if not CHROMIUM.exists():
    reason = f"{CHROMIUM} is missing: install Debian's chromium package to run the browser tests"
    if os.environ.get("CI"):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason, allow_module_level=True)

from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def base_url(tmp_path: Path) -> Iterator[str]:
    with serving_sandbox(tmp_path / "home") as url:
        yield url


@pytest.fixture
def page(browser: Browser, base_url: str) -> Iterator[Page]:
    context = browser.new_context(base_url=base_url, viewport={"width": 1200, "height": 820})
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    context.close()
    assert errors == [], f"JavaScript errors: {errors}"


def snap(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png")


def open_send_dialog(page: Page) -> None:
    page.get_by_role("button", name="Send Balance Notification").click()
    expect(page.get_by_role("dialog", name="Send Balance Notification")).to_be_visible()


def test_the_whole_story_from_patient_to_payment(page: Page) -> None:
    page.goto("/")
    page.get_by_role("link", name="Chen, Lily").click()
    expect(page.get_by_role("heading", name="Lily Chen")).to_be_visible()
    snap(page, "1-patient-dashboard")

    open_send_dialog(page)
    dialog = page.get_by_role("dialog", name="Send Balance Notification")
    dialog.get_by_label("Guarantor").select_option(label="Mei Chen · $120.50")
    dialog.get_by_label("Send To").select_option(label=MEI_TEXT)
    dialog.get_by_label("Template").select_option(label="Balance by text")
    expect(dialog.get_by_label("Message")).to_have_value(re.compile(r"\{\{QuickPayLink\}\}"))
    dialog.get_by_label("Message").press("End")
    dialog.get_by_label("Message").type(" Thank you!")
    snap(page, "2-send-dialog")
    page.keyboard.press("F2")
    expect(dialog.get_by_role("status")).to_contain_text("Sent to +15035550123 by text")
    snap(page, "3-sent")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()

    page.get_by_role("link", name="Mei Chen").click()
    history = page.locator("#history")
    expect(history).to_contain_text("On-Demand")
    expect(history.locator(".notification .badge")).to_have_text("Delivered")
    expect(history.locator(".notification .status-changed")).to_be_visible()
    expect(page.locator("#dunning-count")).to_have_text("2")

    page.get_by_role("link", name="Outbox").click()
    bubble = page.locator(".bubble").first
    expect(bubble).to_contain_text("Your balance is $120.50")
    expect(bubble).to_contain_text("Thank you!")
    snap(page, "4-outbox")

    bubble.get_by_role("link").click()
    expect(page.locator("#pay-balance")).to_have_text("$120.50")
    page.get_by_role("button", name="Pay $120.50 (test payment)").click()
    expect(page.get_by_role("status")).to_contain_text("Thank you: $120.50 was paid")
    expect(page.locator("#pay-balance")).to_have_text("$0.00")
    snap(page, "5-paid")

    page.goto("/practices/demo/guarantors/g-mei")
    expect(page.locator("#guarantor-balance")).to_have_text("$0.00")
    rows = page.locator("#history tbody tr")
    expect(rows.nth(0)).to_contain_text("QuickPay payment")
    expect(rows.nth(1)).to_contain_text("On-Demand")
    snap(page, "6-guarantor-dashboard")


def test_the_history_panel_updates_without_a_reload(page: Page) -> None:
    page.goto("/practices/demo/guarantors/g-mei")
    page.evaluate("window.notReloaded = true")
    expect(page.locator("#history")).not_to_contain_text("On-Demand")
    open_send_dialog(page)
    dialog = page.get_by_role("dialog", name="Send Balance Notification")
    dialog.get_by_label("Send To").select_option(label=MEI_TEXT)
    dialog.get_by_label("Message").fill("Your balance is {{BalanceDue}}: {{QuickPayLink}}")
    dialog.get_by_role("button", name="Send Now (F2)").click()
    expect(page.locator("#history")).to_contain_text("On-Demand")
    assert page.evaluate("window.notReloaded") is True


def test_the_practice_switch_waits_for_open_so_arrow_keys_only_browse(page: Page) -> None:
    page.goto("/practices/demo")
    switch = page.get_by_label("Practice", exact=True)
    switch.focus()
    page.keyboard.press("ArrowDown")
    expect(switch).to_have_value("oak")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Maple Street Pediatrics")
    page.get_by_role("button", name="Open").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Oak Hill Family Medicine")
    expect(page.get_by_label("Practice", exact=True)).to_have_value("oak")


def test_each_contact_on_the_guarantor_dashboard_fits_on_one_line(page: Page) -> None:
    page.goto("/practices/demo/guarantors/g-mei")
    contacts = page.locator("#contacts .contact")
    expect(contacts).to_have_text(["E-mail mei.chen@example.com", "Mobile +15035550123"])
    for contact in contacts.all():
        assert contact.evaluate("element => element.getClientRects().length") == 1


def test_a_zero_balance_is_sent_without_a_way_to_pay(page: Page) -> None:
    page.goto("/practices/demo/patients/p-lily")
    open_send_dialog(page)
    dialog = page.get_by_role("dialog", name="Send Balance Notification")
    notice = dialog.locator("#od-payment-notice")
    expect(notice).to_be_hidden()
    # While Mei is chosen, nothing in the dialog speaks of Tom's balance.
    expect(dialog).not_to_contain_text("Tom Chen's balance")
    dialog.get_by_label("Guarantor").select_option(
        label="Tom Chen · $0.00 · no payment can be made"
    )
    expect(notice).to_be_visible()
    expect(notice).to_have_text(
        "Tom Chen's balance is $0.00: the notification can be sent, but no payment can be made "
        "from it."
    )
    dialog.get_by_label("Send To").select_option(
        label="Tom Chen (guarantor) · E-mail · tom.chen@example.com"
    )
    dialog.get_by_label("Template").select_option(label="Balance by e-mail")
    expect(dialog.get_by_label("Subject")).to_have_value("Your balance at {{PracticeName}}")
    page.keyboard.press("F2")
    expect(dialog.get_by_role("status")).to_contain_text("Sent to tom.chen@example.com")

    page.goto("/practices/demo/outbox")
    email = page.locator(".email").first
    expect(email.locator(".subject")).to_have_text("Your balance at Maple Street Pediatrics")
    expect(email.locator(".email-body")).to_contain_text("No payment is due at this time.")
    expect(email.locator(".email-body a")).to_have_count(0)
    snap(page, "7-outbox-email-zero-balance")

    page.goto("/pay/demo/g-tom")
    expect(page.get_by_role("status")).to_have_text("No payment is due at this time.")
    expect(page.get_by_role("button")).to_have_count(0)


def offered(page: Page) -> list[str]:
    """The Send To options the dialog shows."""
    options: list[str] = page.locator("#od-send-to").evaluate(
        "select => Array.from(select.options).filter(o => !o.hidden).map(o => o.textContent)"
    )
    return options


def test_send_to_follows_the_chosen_guarantor(page: Page) -> None:
    page.goto("/practices/demo/patients/p-lily")
    open_send_dialog(page)
    dialog = page.get_by_role("dialog", name="Send Balance Notification")
    send_to = dialog.get_by_label("Send To")
    assert TOM_EMAIL not in offered(page) and MEI_TEXT in offered(page)
    dialog.get_by_label("Send To").select_option(label=MEI_TEXT)
    # Choosing Tom moves Send To off Mei: Tom's balance is not hers to see.
    dialog.get_by_label("Guarantor").select_option(label=TOM)
    assert offered(page) and all("Mei Chen" not in text for text in offered(page))
    expect(send_to.locator("option:checked")).to_have_text(TOM_EMAIL)
    dialog.get_by_label("Message").fill("Your balance is {{BalanceDue}}")
    page.keyboard.press("F2")
    expect(dialog.get_by_role("status")).to_contain_text("Sent to tom.chen@example.com")


def test_a_refused_send_shows_its_reason_and_sends_nothing(page: Page) -> None:
    page.goto("/practices/demo/patients/p-lily")
    open_send_dialog(page)
    dialog = page.get_by_role("dialog", name="Send Balance Notification")
    dialog.get_by_label("Send To").select_option(label=MEI_TEXT)
    dialog.get_by_role("button", name="Modify").click()
    dialog.get_by_label("Corrected address or number").fill("555")
    dialog.get_by_label("Save to the record").check()
    dialog.get_by_label("Message").fill("Your balance is {{BalanceDue}}")
    page.keyboard.press("F2")
    alert = dialog.locator("#od-error")
    expect(alert).to_have_attribute("data-code", "invalid_address")
    expect(alert).to_contain_text("not a valid number")
    expect(alert).to_be_focused()
    snap(page, "8-refused")
    page.goto("/practices/demo/outbox")
    expect(page.locator(".message")).to_have_count(0)


def reply_as_mei(page: Page, text: str) -> None:
    page.goto("/practices/demo/outbox")
    page.get_by_label("Reply as +15035550123").first.fill(text)
    page.get_by_role("button", name="Send reply").first.click()
    expect(page.get_by_role("status")).to_contain_text(
        f"Reply “{text}” sent from +15035550123 to +15035550101 through Twilio's webhook: "
        "the practice's system answered 200."
    )


def test_a_stop_reply_refuses_the_next_text_until_start(page: Page) -> None:
    page.goto("/practices/demo/patients/p-lily")
    open_send_dialog(page)
    dialog = page.get_by_role("dialog", name="Send Balance Notification")
    dialog.get_by_label("Send To").select_option(label=MEI_TEXT)
    dialog.get_by_label("Message").fill("Your balance is {{BalanceDue}}: {{QuickPayLink}}")
    page.keyboard.press("F2")
    expect(dialog.get_by_role("status")).to_contain_text("Sent to +15035550123 by text")

    # Mei replies STOP on her phone while the receptionist still has the dialog open.
    phone = page.context.new_page()
    reply_as_mei(phone, "STOP")
    expect(phone.locator(".opted-out").first).to_contain_text(
        "+15035550123 opted out of texts from the practice (STOP"
    )
    snap(phone, "11-outbox-reply-stop")

    page.bring_to_front()
    page.keyboard.press("F2")
    alert = dialog.locator("#od-error")
    expect(alert).to_have_attribute("data-code", "opted_out")
    expect(alert).to_contain_text("Mei Chen opted out of text messages.")
    expect(alert).to_be_focused()
    snap(page, "12-refused-after-stop")
    page.keyboard.press("Escape")

    page.goto("/practices/demo/guarantors/g-mei")
    expect(page.locator("#opted-out-of")).to_have_text("texts")
    expect(page.locator("#contacts")).to_contain_text("opted out of texts (STOP")

    reply_as_mei(phone, "START")
    expect(phone.locator(".opted-out")).to_have_count(0)
    phone.close()

    page.goto("/practices/demo/patients/p-lily")
    open_send_dialog(page)
    dialog.get_by_label("Send To").select_option(label=MEI_TEXT)
    dialog.get_by_label("Message").fill("Thank you, {{GuarantorFirstName}}.")
    page.keyboard.press("F2")
    expect(dialog.get_by_role("status")).to_contain_text("Sent to +15035550123 by text")


def test_with_the_addon_switched_off_no_link_is_shown_anywhere(page: Page) -> None:
    page.goto("/practices/demo/account")
    page.get_by_label("Your name").fill("Ann Manager")
    page.get_by_label("Reason").fill("Trial ended")
    page.get_by_role("button", name="Switch off").click()
    expect(page.get_by_role("status")).to_contain_text("now OFF for practice demo")
    expect(page.locator("tbody tr").first).to_contain_text("Ann Manager")
    snap(page, "9-account-manager")

    for url in ("/practices/demo/patients/p-lily", "/practices/demo/guarantors/g-mei"):
        deadline = time.monotonic() + 15
        page.goto(url)
        # Running hosts see a switch within the plugin's refresh interval.
        while page.get_by_role("button", name="Send Balance Notification").count():
            assert time.monotonic() < deadline, f"{url} still shows the action"
            page.wait_for_timeout(500)
            page.reload()
        expect(page.get_by_role("heading", level=1)).to_be_visible()


def test_templates_are_managed_from_the_dialog_by_keyboard(page: Page) -> None:
    page.goto("/practices/demo/patients/p-lily")
    open_send_dialog(page)
    send_dialog = page.get_by_role("dialog", name="Send Balance Notification")
    send_dialog.get_by_label("Send To").select_option(label=MEI_TEXT)
    send_dialog.get_by_label("Template").select_option(label="-MANAGE-")
    manager = page.get_by_role("dialog", name="On-Demand templates")
    expect(manager).to_be_visible()
    manager.get_by_role("button", name="Add template").click()
    manager.get_by_label("Label").fill("Quick note")
    manager.get_by_label("Message").fill("Please pay {{BalanceDue}}: ")
    manager.get_by_label("Insert a field").select_option("{{QuickPayLink}}")
    manager.get_by_role("button", name="Insert").click()
    page.keyboard.press("F2")
    expect(manager.get_by_role("row", name=re.compile("Quick note"))).to_be_visible()
    manager.get_by_role("button", name="Copy Quick note").click()
    expect(manager.get_by_role("row", name=re.compile("Copy of Quick note"))).to_be_visible()
    expect(manager.get_by_role("status")).to_have_text("Copied.")
    manager.get_by_role("button", name="Deactivate Copy of Quick note").click()
    expect(manager.get_by_role("button", name="Activate Copy of Quick note")).to_be_visible()
    manager.get_by_role("button", name="Edit Copy of Quick note").click()
    manager.get_by_label("Label").fill("Old note")
    page.keyboard.press("F2")
    expect(manager.get_by_role("row", name=re.compile("Old note"))).to_be_visible()
    page.once("dialog", lambda confirm: confirm.accept())
    manager.get_by_role("button", name="Delete Old note").click()
    expect(manager.get_by_role("row", name=re.compile("Old note"))).to_have_count(0)
    expect(manager.get_by_role("status")).to_have_text("Deleted.")
    snap(page, "10-template-manager")
    page.keyboard.press("Escape")
    expect(manager).to_be_hidden()
    expect(send_dialog).to_be_visible()

    template = send_dialog.get_by_label("Template")
    expect(template.locator("option", has_text="Quick note")).to_have_count(1)
    template.select_option(label="Quick note")
    expect(send_dialog.get_by_label("Message")).to_have_value(
        "Please pay {{BalanceDue}}: {{QuickPayLink}}"
    )
    page.keyboard.press("F2")
    expect(send_dialog.get_by_role("status")).to_contain_text("Sent to +15035550123")


def test_cancelling_a_template_edit_gives_focus_back_to_add_template(page: Page) -> None:
    page.goto("/practices/demo/patients/p-lily")
    open_send_dialog(page)
    page.get_by_role("dialog", name="Send Balance Notification").get_by_label(
        "Template"
    ).select_option(label="-MANAGE-")
    manager = page.get_by_role("dialog", name="On-Demand templates")
    manager.get_by_role("button", name="Add template").click()
    expect(manager.get_by_label("Label")).to_be_focused()
    manager.get_by_role("button", name="Cancel").click()
    expect(manager.get_by_label("Label")).to_be_hidden()
    expect(manager.get_by_role("button", name="Add template")).to_be_focused()


def test_the_dialog_follows_the_send_to_delivered_opened_and_paid_without_a_reload(
    page: Page,
) -> None:
    page.goto("/practices/demo/patients/p-lily")
    open_send_dialog(page)
    dialog = page.get_by_role("dialog", name="Send Balance Notification")
    dialog.get_by_label("Guarantor").select_option(label="Mei Chen · $120.50")
    dialog.get_by_label("Send To").select_option(label=MEI_TEXT)
    dialog.get_by_label("Template").select_option(label="Balance by text")
    page.evaluate("window.sameDocument = true")  # gone if the page reloads
    page.keyboard.press("F2")
    expect(dialog.get_by_role("status")).to_contain_text("Sent to +15035550123 by text")
    timeline = dialog.get_by_role("list", name="Progress of the notification")
    done = re.compile(r"\bdone\b")
    step = {
        name: timeline.locator(f"[data-step={name}]")
        for name in ("sent", "delivered", "opened", "paid")
    }
    expect(step["sent"]).to_have_class(done)
    expect(step["delivered"]).to_have_class(done)
    expect(step["opened"]).not_to_have_class(done)
    expect(step["paid"]).not_to_have_class(done)

    # The patient, on the phone: the text's link, then QuickPay.
    phone = page.context.new_page()
    phone.goto("/practices/demo/outbox")
    link = phone.locator(".bubble").first.get_by_role("link")
    expect(link).to_have_attribute("href", re.compile(r"/plugins/ondemand/pay/[\w-]{22,}$"))
    link.click()
    expect(phone.locator("#pay-balance")).to_have_text("$120.50")
    expect(step["opened"]).to_have_class(done)
    expect(step["paid"]).not_to_have_class(done)
    snap(page, "6-timeline-opened")

    phone.get_by_role("button", name="Pay $120.50 (test payment)").click()
    expect(phone.get_by_role("status")).to_contain_text("Thank you: $120.50 was paid")
    expect(step["paid"]).to_have_class(done)
    expect(step["paid"]).to_contain_text("$120.50")
    expect(dialog).to_be_visible()
    assert page.evaluate("window.sameDocument") is True
    snap(page, "7-timeline-paid")
