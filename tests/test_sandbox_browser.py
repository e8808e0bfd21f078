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
from typing import Any

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
ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
# axe-core, from the npm registry (package.json at the root: `npm ci`).
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
# The front desk's screen.
RECEPTION_SCREEN = {"width": 1366, "height": 768}
MEI_TEXT = "Mei Chen (guarantor) · Text · +15035550123"
TOM = "Tom Chen · $0.00 · no payment can be made"
TOM_EMAIL = "Tom Chen (guarantor) · E-mail · tom.chen@example.com"

for needed, remedy in (
    (CHROMIUM, "install Debian's chromium package"),
    (AXE, "run `npm ci` at the repository's root"),
):
    if not needed.exists():
        reason = f"{needed} is missing: {remedy} to run the browser tests"
        if os.environ.get("CI"):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason, allow_module_level=True)

from playwright.sync_api import (  # noqa: E402
    Browser,
    Dialog,
    Page,
    Route,
    expect,
    sync_playwright,
)


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
    context = browser.new_context(base_url=base_url, viewport=RECEPTION_SCREEN)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    context.close()
    assert errors == [], f"JavaScript errors: {errors}"


def check_accessibility(page: Page, name: str) -> None:
    """A screenshot of the screen as it is, and axe-core's check of it: no violation at all."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png")
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    results = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    found = [
        f"{violation['id']} ({violation['help']}): "
        + ", ".join(str(node["target"]) for node in violation["nodes"])
        for violation in results["violations"]
    ]
    assert found == [], f"axe-core on {name}: {found}"


def open_send_dialog(page: Page) -> None:
    page.get_by_role("button", name="Send Balance Notification").click()
    expect(page.get_by_role("dialog", name="Send Balance Notification")).to_be_visible()


def test_the_whole_story_from_patient_to_payment(page: Page) -> None:
    page.goto("/")
    page.get_by_role("link", name="Chen, Lily").click()
    expect(page.get_by_role("heading", name="Lily Chen")).to_be_visible()
    check_accessibility(page, "1-patient-dashboard")

    open_send_dialog(page)
    dialog = page.get_by_role("dialog", name="Send Balance Notification")
    dialog.get_by_label("Guarantor").select_option(label="Mei Chen · $120.50")
    dialog.get_by_label("Send To").select_option(label=MEI_TEXT)
    dialog.get_by_label("Template").select_option(label="Balance by text")
    expect(dialog.get_by_label("Message")).to_have_value(re.compile(r"\{\{QuickPayLink\}\}"))
    dialog.get_by_label("Message").press("End")
    dialog.get_by_label("Message").type(" Thank you!")
    check_accessibility(page, "2-send-dialog")
    page.keyboard.press("F2")
    expect(dialog.get_by_role("status")).to_contain_text("Sent to +15035550123 by text")
    check_accessibility(page, "3-sent")
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
    check_accessibility(page, "4-outbox")

    bubble.get_by_role("link").click()
    expect(page.locator("#pay-balance")).to_have_text("$120.50")
    page.get_by_role("button", name="Pay $120.50 (test payment)").click()
    expect(page.get_by_role("status")).to_contain_text("Thank you: $120.50 was paid")
    expect(page.locator("#pay-balance")).to_have_text("$0.00")
    check_accessibility(page, "5-paid")

    page.goto("/practices/demo/guarantors/g-mei")
    expect(page.locator("#guarantor-balance")).to_have_text("$0.00")
    rows = page.locator("#history tbody tr")
    expect(rows.nth(0)).to_contain_text("QuickPay payment")
    expect(rows.nth(1)).to_contain_text("On-Demand")
    check_accessibility(page, "6-guarantor-dashboard")


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
    check_accessibility(page, "7-outbox-email-zero-balance")

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
    # Refused at the box where the number was typed, which takes the focus.
    box = dialog.get_by_label("Corrected address or number")
    expect(box).to_have_attribute("aria-invalid", "true")
    expect(box).to_be_focused()
    message = dialog.locator("#od-address-error")
    expect(message).to_have_attribute("data-code", "invalid_address")
    expect(message).to_contain_text("not a valid number")
    expect(message).not_to_contain_text("Modify")
    assert "od-address-error" in (box.get_attribute("aria-describedby") or "").split()
    expect(dialog.locator("#od-error")).to_be_hidden()
    check_accessibility(page, "8-refused")
    page.goto("/practices/demo/outbox")
    expect(page.locator(".message")).to_have_count(0)


def reply_as_mei(page: Page, text: str) -> None:
    page.goto("/practices/demo/outbox")
    page.get_by_label("Reply as +15035550123").first.fill(text)
    page.get_by_role("button", name="Send reply").first.click()
    expect(page.get_by_role("status")).to_have_text(
        f"Reply “{text}” sent from +15035550123 to +15035550101: the practice received it."
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
    check_accessibility(phone, "11-outbox-reply-stop")

    page.bring_to_front()
    dialog.get_by_role("button", name="Send another").click()
    send_to = dialog.get_by_label("Send To")
    expect(send_to).to_have_attribute("aria-invalid", "true")
    expect(send_to).to_be_focused()
    message = dialog.locator("#od-send-to-error")
    expect(message).to_have_attribute("data-code", "opted_out")
    expect(message).to_contain_text("Mei Chen opted out of text messages")
    check_accessibility(page, "12-refused-after-stop")
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
    check_accessibility(page, "9-account-manager")

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
    check_accessibility(page, "10-template-manager")
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


def outbox_count(page: Page) -> int:
    """How many messages the outbox holds, read in a page of its own."""
    other = page.context.new_page()
    other.goto("/practices/demo/outbox")
    count = other.locator(".message").count()
    other.close()
    return count


def test_a_second_f2_after_a_send_sends_nothing_until_send_another(page: Page) -> None:
    page.goto("/practices/demo/patients/p-lily")
    open_send_dialog(page)
    dialog = page.get_by_role("dialog", name="Send Balance Notification")
    page.keyboard.press("F2")
    expect(dialog.get_by_role("status")).to_contain_text("Sent to +15035550123 by text message.")
    key = dialog.locator("#od-key").input_value()
    page.keyboard.press("F2")
    page.keyboard.press("F2")
    expect(dialog.get_by_role("alert")).to_have_text(
        "This notification was sent. To send it again, press “Send another”."
    )
    check_accessibility(page, "13-sent-then-f2")
    assert outbox_count(page) == 1
    # The same message again minutes later: the sandbox asks first, and the answer is yes.
    page.once("dialog", lambda question: question.accept())
    dialog.get_by_role("button", name="Send another").click()
    expect(dialog.get_by_role("status")).to_contain_text("Sent to +15035550123")
    deadline = time.monotonic() + 10
    while outbox_count(page) != 2:
        assert time.monotonic() < deadline, "the deliberate second send did not go"
        page.wait_for_timeout(200)
    assert dialog.locator("#od-key").input_value() != key


def test_the_dialog_opens_on_the_best_contact_with_its_first_template(page: Page) -> None:
    page.goto("/practices/demo/patients/p-lily")
    open_send_dialog(page)
    dialog = page.get_by_role("dialog", name="Send Balance Notification")
    expect(dialog.get_by_label("Send To").locator("option:checked")).to_have_text(MEI_TEXT)
    expect(dialog.get_by_label("Template").locator("option:checked")).to_have_text(
        "Balance by text"
    )
    expect(dialog.get_by_label("Message")).to_have_value(re.compile(r"^Hi \{\{GuarantorFirstName"))
    # Another mode's contact, untouched text: that mode's first template follows.
    dialog.get_by_label("Send To").select_option(
        label="Mei Chen (guarantor) · E-mail · mei.chen@example.com"
    )
    expect(dialog.get_by_label("Template").locator("option:checked")).to_have_text(
        "Balance by e-mail"
    )
    expect(dialog.get_by_label("Subject")).to_have_value("Your balance at {{PracticeName}}")


def test_picking_another_template_asks_before_discarding_typed_text(page: Page) -> None:
    page.goto("/practices/demo/patients/p-lily")
    open_send_dialog(page)
    dialog = page.get_by_role("dialog", name="Send Balance Notification")
    message = dialog.get_by_label("Message")
    message.fill("Please call us about your bill.")
    asked: list[str] = []

    def answer(confirm: Dialog, accept: bool) -> None:
        asked.append(confirm.message)
        if accept:
            confirm.accept()
        else:
            confirm.dismiss()

    page.once("dialog", lambda confirm: answer(confirm, False))
    dialog.get_by_label("Template").select_option(label="(none: type your own text)")
    expect(message).to_have_value("Please call us about your bill.")
    expect(dialog.get_by_label("Template").locator("option:checked")).to_have_text(
        "Balance by text"
    )
    page.once("dialog", lambda confirm: answer(confirm, True))
    dialog.get_by_label("Template").select_option(label="(none: type your own text)")
    expect(message).to_have_value("")
    assert (
        asked
        == [
            "Replace the message you typed with “(none: type your own text)”?",
        ]
        * 2
    )


def test_a_saved_address_shows_in_send_to_at_once(page: Page) -> None:
    page.goto("/practices/demo/patients/p-lily")
    open_send_dialog(page)
    dialog = page.get_by_role("dialog", name="Send Balance Notification")
    dialog.get_by_role("button", name="Modify").click()
    check_accessibility(page, "14-modify")
    dialog.get_by_label("Corrected address or number").fill("(503) 555-0199")
    dialog.get_by_label("Save to the record").check()
    page.keyboard.press("F2")
    expect(dialog.get_by_role("status")).to_contain_text("Sent to +15035550199")
    expect(dialog.get_by_label("Send To").locator("option:checked")).to_have_text(
        "Mei Chen (guarantor) · Text · +15035550199"
    )
    expect(dialog.get_by_label("Corrected address or number")).to_be_hidden()


def test_the_template_manager_names_the_empty_field(page: Page) -> None:
    page.goto("/practices/demo/patients/p-lily")
    open_send_dialog(page)
    page.get_by_role("dialog", name="Send Balance Notification").get_by_label(
        "Template"
    ).select_option(label="-MANAGE-")
    manager = page.get_by_role("dialog", name="On-Demand templates")
    check_accessibility(page, "15-template-manager-list")
    # The modes in the front desk's words.
    call_row = manager.get_by_role("row", name=re.compile("Balance by phone call"))
    expect(call_row.get_by_role("cell").first).to_have_text("Call")
    manager.get_by_role("button", name="Add template").click()
    manager.get_by_label("Label").fill("Empty one")
    page.keyboard.press("F2")
    body = manager.get_by_label("Message")
    expect(body).to_have_attribute("aria-invalid", "true")
    expect(body).to_be_focused()
    expect(manager.locator("#tm-body-error")).to_have_text("Message is empty: fill it in.")
    expect(manager).not_to_contain_text("character(s)")
    check_accessibility(page, "16-template-manager-empty-field")
    body.fill("Your balance is {{BalanceDue}}.")
    page.keyboard.press("F2")
    expect(manager.get_by_role("row", name=re.compile("Empty one"))).to_be_visible()


def test_send_now_is_on_screen_at_1366_by_768(page: Page) -> None:
    page.goto("/practices/demo/patients/p-lily")
    open_send_dialog(page)
    dialog = page.get_by_role("dialog", name="Send Balance Notification")
    dialog.get_by_role("button", name="Modify").click()
    dialog.get_by_label("Guarantor").select_option(label=TOM)
    send = dialog.get_by_role("button", name="Send Now (F2)")
    box = send.bounding_box()
    assert box is not None
    assert box["y"] + box["height"] <= RECEPTION_SCREEN["height"]
    assert page.evaluate("document.getElementById('send-dialog').scrollTop") == 0


def test_times_are_in_the_practices_zone(page: Page) -> None:
    page.goto("/practices/demo/guarantors/g-mei")
    first = page.locator("#history tbody tr time").first
    # Maple Street Pediatrics is in Los Angeles.
    expect(first).to_have_text(
        re.compile(r"^[A-Z][a-z]{2} \d{1,2}, \d{4}, \d{1,2}:\d{2} [AP]M P[SD]T$")
    )
    expect(page.locator("#history thead")).not_to_contain_text("UTC")


def test_the_account_pages_switch_and_audits_are_in_the_practices_zone(page: Page) -> None:
    page.goto("/practices/demo/account")
    page.get_by_label("Your name").fill("Ann Manager")
    page.get_by_label("Reason").fill("Trial ended")
    page.get_by_role("button", name="Switch off").click()
    # Maple Street Pediatrics is in Los Angeles.
    local = r"[A-Z][a-z]{2} \d{1,2}, \d{4}, \d{1,2}:\d{2} [AP]M P[SD]T"
    expect(page.get_by_role("status")).to_have_text(
        re.compile(rf"^.* now OFF for practice demo \(by Ann Manager, {local}\)\.$")
    )
    for name in ("Audit trail", "Compliance audit"):
        audit = page.get_by_role("region", name=name)
        expect(audit.locator("tbody tr time").first).to_have_text(re.compile(f"^{local}$"))
        expect(audit.locator("thead")).not_to_contain_text("UTC")


def test_the_front_desks_words_throughout(page: Page) -> None:
    for url in (
        "/practices/demo",
        "/practices/demo/patients/p-lily",
        "/practices/demo/guarantors/g-mei",
    ):
        page.goto(url)
        expect(page.locator("main")).not_to_contain_text("POPS")
    page.goto("/practices/demo/patients/p-lily")
    open_send_dialog(page)
    dialog = page.get_by_role("dialog", name="Send Balance Notification")
    page.keyboard.press("F2")
    expect(dialog.get_by_role("status")).to_contain_text("Sent to +15035550123 by text message.")
    expect(dialog.get_by_role("status")).not_to_contain_text("Accepted")


def test_a_disabled_action_can_be_reached_by_keyboard_with_its_reason(page: Page) -> None:
    page.goto("/practices/demo/patients/p-noah")
    action = page.get_by_role("button", name="Send Balance Notification")
    expect(action).to_have_attribute("aria-disabled", "true")
    expect(action).to_have_accessible_description(re.compile("batched statement"))
    for _ in range(20):
        page.keyboard.press("Tab")
        if action.evaluate("element => element === document.activeElement"):
            break
    expect(action).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("dialog")).to_have_count(0)
    check_accessibility(page, "17-disabled-action")


def test_every_screen_passes_axe(page: Page) -> None:
    screens = {
        "20-patients": "/practices/demo",
        "21-patient-ruth": "/practices/demo/patients/p-ruth",
        "22-guarantor-ada": "/practices/demo/guarantors/g-ada",
        "23-outbox-empty": "/practices/demo/outbox",
        "24-account": "/practices/demo/account",
        "25-pay-due": "/pay/demo/g-mei",
        "26-pay-nothing-due": "/pay/demo/g-tom",
        "27-oak-patients": "/practices/oak",
    }
    for name, url in screens.items():
        page.goto(url)
        check_accessibility(page, name)
    # A dialog the plugin refuses to open (Oak Hill has not the add-on): its refusal.
    page.goto("/practices/oak")
    page.evaluate(
        "openFragment(sendDialog(), '/practices/oak/send?type=patient&id=p-omar"
        "&action=ondemand.send_balance_notification')"
    )
    expect(page.get_by_role("dialog", name="Send Balance Notification")).to_be_visible()
    check_accessibility(page, "28-dialog-refused")
    page.goto("/practices/demo/patients/p-ruth")
    open_send_dialog(page)
    # Ruth is her own guarantor, with one number: one line.
    assert offered(page) == ["Ruth Diaz (patient and guarantor) · Call · +15035550188"]
    check_accessibility(page, "29-dialog-credit")


def focused(page: Page) -> str:
    """The focused element, as a keyboard user hears it: its label or its text."""
    name: str = page.evaluate(
        """() => {
          const element = document.activeElement;
          const label = element.labels && element.labels[0];
          return (label ? label.textContent : element.getAttribute("aria-label")
                  || element.textContent || "").trim();
        }"""
    )
    return name


def tab_to(page: Page, name: str, backwards: bool = False) -> None:
    """Tab (or Shift+Tab) until the element named ``name`` has the focus."""
    for _ in range(40):
        page.keyboard.press("Shift+Tab" if backwards else "Tab")
        if focused(page) == name:
            return
    pytest.fail(f"{name!r} cannot be reached with the Tab key")


def test_the_whole_story_by_keyboard_alone(page: Page) -> None:
    page.goto("/practices/demo")
    tab_to(page, "Chen, Lily")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Lily Chen")).to_be_visible()
    tab_to(page, "Send Balance Notification")
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Send Balance Notification")
    expect(dialog.get_by_label("Guarantor")).to_be_focused()
    # Mei's mobile and the text template are already chosen: add a line and send.
    tab_to(page, "Message")
    page.keyboard.press("Control+End")
    page.keyboard.type(" Thank you!")
    check_accessibility(page, "30-keyboard-dialog")
    page.keyboard.press("F2")
    expect(dialog.get_by_role("status")).to_contain_text("Sent to +15035550123 by text message.")
    expect(dialog.get_by_role("status")).to_be_focused()
    tab_to(page, "See it in the outbox", backwards=True)
    tab_to(page, "Send another")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    # Focus comes back to the action that opened the dialog.
    assert focused(page) == "Send Balance Notification"
    tab_to(page, "Mei Chen", backwards=True)
    page.keyboard.press("Enter")
    expect(page.locator("#history .notification")).to_have_count(1)
    tab_to(page, "Outbox", backwards=True)
    page.keyboard.press("Enter")
    expect(page.locator(".bubble").first).to_contain_text("Thank you!")
    tab_to(page, "Reply as +15035550123")
    page.keyboard.type("STOP")
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("the practice received it.")
    check_accessibility(page, "31-keyboard-outbox")


def test_the_preview_shows_what_the_patient_will_read_and_sends_nothing(page: Page) -> None:
    page.goto("/practices/demo/patients/p-lily")
    open_send_dialog(page)
    dialog = page.get_by_role("dialog", name="Send Balance Notification")
    preview = dialog.get_by_role("region", name="What they will get")
    expect(preview.locator("#od-preview")).to_contain_text(
        "Hi Mei, this is Maple Street Pediatrics. Your balance is $120.50."
    )
    expect(preview.locator("#od-preview")).not_to_contain_text("{{")
    expect(preview).to_contain_text("Text message to +15035550123")
    # One or two: the sandbox's tracked pay link carries its loopback address and port.
    expect(preview.locator("#od-segments")).to_have_text(
        re.compile(r"^\d+ characters · [12] text messages? \(GSM-7\)$")
    )
    check_accessibility(page, "18-preview")
    message = dialog.get_by_label("Message")
    message.fill("Hi {{GuarantorFirstName}}, your balance is {{BalanceDue}} 😊 " + "a" * 40)
    # The first text to Mei: the plugin adds the opt-out line, counted in the length.
    expect(preview.locator("#od-segments")).to_have_text("97 characters · 2 text messages (UCS-2)")
    expect(preview.locator("#od-preview")).to_contain_text("Reply STOP to opt out.")
    warnings = preview.locator("#od-warnings li")
    expect(warnings).to_have_text(
        [
            "There is no pay link in the message: insert {{QuickPayLink}} so they can pay online.",
            "This text goes out as 2 text messages. A shorter one arrives as one.",
        ]
    )
    check_accessibility(page, "19-preview-warnings")
    assert outbox_count(page) == 0


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
    check_accessibility(page, "20-timeline-opened")

    phone.get_by_role("button", name="Pay $120.50 (test payment)").click()
    expect(phone.get_by_role("status")).to_contain_text("Thank you: $120.50 was paid")
    expect(step["paid"]).to_have_class(done)
    expect(step["paid"]).to_contain_text("$120.50")
    expect(dialog).to_be_visible()
    assert page.evaluate("window.sameDocument") is True
    check_accessibility(page, "21-timeline-paid")


def test_the_timeline_keeps_following_through_answers_marked_stale(page: Page) -> None:
    """While the plugin's database is away, the status step answers what the worker last knew,
    marked ``stale`` with ``as_of`` (``test_outages.py`` takes the database away for real). The
    sandbox's worker threads keep their SQLite connections, so here each answer is marked so on
    its way to the page: the timeline shows it, says it is the last known, shows no error, keeps
    asking, and drops the remark once a current answer comes."""
    answers: list[dict[str, Any]] = []
    database_away = [True]

    def marked_stale(route: Route) -> None:
        response = route.fetch()
        answer = response.json()
        answers.append(answer)
        if database_away[0]:
            answer = {**answer, "stale": True, "as_of": answer["status_changed_at"]}
        route.fulfill(response=response, json=answer)

    page.route(re.compile(r"/send/status\?"), marked_stale)
    page.goto("/practices/demo/patients/p-lily")
    open_send_dialog(page)
    dialog = page.get_by_role("dialog", name="Send Balance Notification")
    dialog.get_by_label("Guarantor").select_option(label="Mei Chen · $120.50")
    dialog.get_by_label("Send To").select_option(label=MEI_TEXT)
    dialog.get_by_label("Template").select_option(label="Balance by text")
    page.keyboard.press("F2")
    timeline = dialog.get_by_role("list", name="Progress of the notification")
    done = re.compile(r"\bdone\b")
    expect(timeline.locator("[data-step=delivered]")).to_have_class(done)

    phone = page.context.new_page()
    phone.goto("/practices/demo/outbox")
    phone.locator(".bubble").first.get_by_role("link").click()
    expect(timeline.locator("[data-step=opened]")).to_have_class(done)
    expect(dialog.get_by_role("alert")).to_have_count(0)
    expect(dialog.get_by_role("status")).to_contain_text("Sent to +15035550123 by text")
    stale = dialog.locator("#od-timeline-stale")
    expect(stale).to_be_visible()
    expect(stale).to_contain_text("As last known at")
    check_accessibility(page, "21-timeline-stale")
    assert len(answers) >= 2

    database_away[0] = False
    expect(stale).to_be_hidden()


def test_an_amount_of_the_staffs_choosing_is_checked_at_its_field_and_asked_for(
    page: Page,
) -> None:
    page.goto("/practices/demo/patients/p-lily")
    open_send_dialog(page)
    dialog = page.get_by_role("dialog", name="Send Balance Notification")
    dialog.get_by_label("Guarantor").select_option(label="Mei Chen · $120.50")
    dialog.get_by_label("Send To").select_option(label=MEI_TEXT)
    amount = dialog.get_by_label("Amount to ask for")
    amount.fill("500")
    page.keyboard.press("F2")
    expect(dialog.locator("#od-amount-error")).to_contain_text("more than Mei Chen's balance")
    expect(amount).to_be_focused()
    assert outbox_count(page) == 0
    amount.fill("45.10")
    page.keyboard.press("F2")
    expect(dialog.get_by_role("status")).to_contain_text("Sent to +15035550123")

    phone = page.context.new_page()
    phone.goto("/practices/demo/outbox")
    phone.locator(".bubble").first.get_by_role("link").click()
    expect(phone.get_by_role("button", name="Pay $45.10 (test payment)")).to_be_visible()
