"""The sandbox's web pages: a practice-management host's screens around the plugin's hooks.

Each route asks the host (``Sandbox``) for its records and the plugins' answers, and renders
them; a plugin's refusal is shown in its own words (``message``), recognised by its ``code``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from markupsafe import Markup, escape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from ondemand_sandbox import phone
from ondemand_sandbox.accounts import SwitchRefused
from ondemand_sandbox.database import PaymentRefused, money
from ondemand_sandbox.host import MANAGE_ACTION_ID, OPT_OUTS_ACTION_ID, USER, Sandbox, refusal

HERE = Path(__file__).parent
PANELS = {"patient": "balance", "guarantor": "statement_notification_history"}
# The dialogs' headings (id, text): base.html names each <dialog> by its heading's id.
SEND_DIALOG_TITLE = ("send-dialog-title", "Send Balance Notification")
MANAGER_TITLE = ("template-manager-title", "On-Demand templates")


def dollars(amount: str | Decimal) -> str:
    """Money as office staff read it: ``$120.50``, ``$0.00``, ``$35.00 credit``."""
    value = Decimal(amount)
    text = f"${abs(value):,.2f}"
    return f"{text} credit" if value < 0 else text


def local_time(moment: str, zone: str) -> str:
    """A stored UTC time as the practice's staff read it: ``Dec 6, 2026, 9:05 AM PST``."""
    local = datetime.fromisoformat(moment).astimezone(ZoneInfo(zone))
    hour = local.strftime("%I").lstrip("0")
    return f"{local:%b} {local.day}, {local.year}, {hour}:{local:%M %p %Z}"


URL = re.compile(r"https?://[^\s<>\"]+[^\s<>\".,;:!?)]")


def linkify(text: str) -> Markup:
    """Plain text with its web addresses clickable, as a phone or a mail reader shows them."""
    parts = []
    last = 0
    for match in URL.finditer(text):
        parts.append(escape(text[last : match.start()]))
        parts.append(Markup('<a href="{0}">{0}</a>').format(match.group(0)))
        last = match.end()
    parts.append(escape(text[last:]))
    return Markup("").join(parts)


templates = Jinja2Templates(directory=HERE / "templates")
templates.env.filters["dollars"] = dollars
templates.env.filters["linkify"] = linkify
templates.env.filters["local_time"] = local_time


def sandbox_of(request: Request) -> Sandbox:
    sandbox: Sandbox = request.app.state.sandbox
    return sandbox


def practice_of(request: Request) -> dict[str, Any]:
    practice = sandbox_of(request).database.practice(request.path_params["practice_id"])
    if practice is None:
        raise HTTPException(404, "No such practice in the sandbox.")
    return practice


def page(request: Request, name: str, status_code: int = 200, **context: Any) -> Response:
    """A whole page, in the layout with the practice switcher."""
    sandbox = sandbox_of(request)
    practices = [sandbox.database.practice(pid) for pid in sandbox.database.practice_ids()]
    return templates.TemplateResponse(
        request,
        name,
        {"practices": practices, "user": USER, **context},
        status_code=status_code,
    )


def panel_actions(
    sandbox: Sandbox, practice_id: str, dashboard: str, subject_id: str
) -> list[dict[str, Any]]:
    """The actions plugins put on this dashboard's panel; the panel is where they ask."""
    return [
        action
        for action in sandbox.actions(practice_id, dashboard, subject_id)
        if action["panel"] == PANELS[dashboard]
    ]


# Pages


async def home(request: Request) -> Response:
    """The practice the top bar's switch names, or the first one."""
    known = sandbox_of(request).database.practice_ids()
    chosen = request.query_params.get("practice")
    practice_id = chosen if chosen in known else known[0]
    return RedirectResponse(request.url_for("patients", practice_id=practice_id), status_code=303)


def patients(request: Request) -> Response:
    practice = practice_of(request)
    sandbox = sandbox_of(request)
    rows = []
    for patient in sandbox.database.patients(practice["id"]):
        guarantors = [
            sandbox.database.guarantor(practice["id"], gid) for gid in patient["guarantor_ids"]
        ]
        rows.append({"patient": patient, "guarantors": [g for g in guarantors if g]})
    return page(
        request,
        "patients.html",
        practice=practice,
        rows=rows,
        batch=request.query_params.get("batch"),
    )


def patient_dashboard(request: Request) -> Response:
    practice = practice_of(request)
    sandbox = sandbox_of(request)
    patient = sandbox.database.patient(practice["id"], request.path_params["patient_id"])
    if patient is None:
        raise HTTPException(404, "No such patient in this practice.")
    guarantors = [sandbox.database.guarantor(practice["id"], g) for g in patient["guarantor_ids"]]
    return page(
        request,
        "patient.html",
        practice=practice,
        patient=patient,
        guarantors=[g for g in guarantors if g],
        actions=panel_actions(sandbox, practice["id"], "patient", patient["id"]),
    )


def history_context(request: Request, practice_id: str, guarantor_id: str) -> dict[str, Any]:
    """One page of the history panel; its links lead to the Guarantor Dashboard's pages."""
    position = {
        "own": request.query_params.get("own"),
        "cursor": request.query_params.get("cursor"),
    }
    entries, next_page = sandbox_of(request).history(practice_id, guarantor_id, position)
    dashboard = str(
        request.url_for("guarantor", practice_id=practice_id, guarantor_id=guarantor_id)
    )
    older = None
    if next_page is not None:
        older = dashboard + "?" + urlencode({k: v for k, v in next_page.items() if v})
    return {
        "entries": entries,
        "older": older,
        "newest": None if not any(position.values()) else dashboard,
    }


def guarantor_dashboard(request: Request) -> Response:
    practice = practice_of(request)
    sandbox = sandbox_of(request)
    guarantor = sandbox.database.guarantor(practice["id"], request.path_params["guarantor_id"])
    if guarantor is None:
        raise HTTPException(404, "No such guarantor in this practice.")
    patients = [sandbox.database.patient(practice["id"], p) for p in guarantor["patient_ids"]]
    return page(
        request,
        "guarantor.html",
        practice=practice,
        guarantor=guarantor,
        patients=[p for p in patients if p],
        actions=panel_actions(sandbox, practice["id"], "guarantor", guarantor["id"]),
        contact_opt_outs=sandbox.database.contact_opt_outs(practice["id"], guarantor["contacts"]),
        recorded=request.query_params.get("recorded"),
        refused=request.query_params.get("refused"),
        history_url=request.url_for(
            "history", practice_id=practice["id"], guarantor_id=guarantor["id"]
        ),
        **history_context(request, practice["id"], guarantor["id"]),
    )


async def record_opt_out(request: Request) -> Response:
    """Record an opt-out (or opt-in) the guarantor asked for at the desk or on the phone."""
    practice = practice_of(request)
    guarantor_id = request.path_params["guarantor_id"]
    form = await request.form()
    payload = {
        "op": "opt_in" if form.get("op") == "opt_in" else "opt_out",
        "mode": str(form.get("mode", "")),
        "address": str(form.get("address", "")).strip(),
        "note": str(form.get("note", "")).strip() or None,
    }
    try:
        result = await run_in_threadpool(
            sandbox_of(request).submit_action,
            practice["id"],
            OPT_OUTS_ACTION_ID,
            {"type": "guarantor", "id": guarantor_id},
            payload,
        )
        change = "opted out of" if result["opted_out"] else "opted back in to"
        said = {
            "recorded": f"{result['address']} {change} {result['mode']} messages "
            f"(recorded by {result['changed_by']})."
        }
    except Exception as error:
        found = refusal(error)
        if found is None:
            raise
        said = {"refused": found["message"]}
    target = request.url_for(
        "guarantor", practice_id=practice["id"], guarantor_id=guarantor_id
    ).include_query_params(**said)
    return RedirectResponse(target, status_code=303)


def history(request: Request) -> Response:
    """The history panel alone: the dialog refreshes it after a send, without a reload."""
    practice = practice_of(request)
    guarantor_id = request.path_params["guarantor_id"]
    return templates.TemplateResponse(
        request,
        "history_panel.html",
        {
            "practice": practice,
            **history_context(request, practice["id"], guarantor_id),
        },
    )


def subject_of(request: Request) -> dict[str, str]:
    subject_type = request.query_params.get("type", "")
    if subject_type not in PANELS:
        raise HTTPException(400, "type must be patient or guarantor.")
    return {"type": subject_type, "id": request.query_params.get("id", "")}


def refusal_page(request: Request, error: dict[str, Any], title: tuple[str, str]) -> Response:
    """A refusal drawn in a dialog, under the dialog's own heading (``title``: id and text),
    which names the dialog for a screen reader."""
    context = {"error": error, "title_id": title[0], "title": title[1]}
    return templates.TemplateResponse(request, "refusal.html", context, status_code=409)


def send_dialog(request: Request) -> Response:
    """The dialog, from the ``open`` step's model, with the templates for the text editor."""
    practice = practice_of(request)
    sandbox = sandbox_of(request)
    subject = subject_of(request)
    action_id = request.query_params.get("action", "")
    try:
        form = sandbox.open_action(practice["id"], action_id, subject)
        manage = sandbox.open_action(
            practice["id"], MANAGE_ACTION_ID, {"type": "practice", "id": practice["id"]}
        )
    except Exception as error:
        found = refusal(error)
        if found is None:
            raise
        return refusal_page(request, found, SEND_DIALOG_TITLE)
    if form is None:
        raise HTTPException(404, "No plugin answers this action.")
    active = {t["id"]: t for t in manage["templates"] if t["active"]}
    subject_query = {"type": subject["type"], "id": subject["id"], "action": action_id}
    return templates.TemplateResponse(
        request,
        "send_dialog.html",
        {
            "practice": practice,
            "subject": subject,
            "form": form,
            "fields": manage["fields"],
            "template_texts": {
                t["id"]: {"subject": active[t["id"]]["subject"], "body": active[t["id"]]["body"]}
                for t in form["templates"]
                if t["id"] in active
            },
            "send_to": send_to_lines(form["send_to"]),
            "send_url": request.url_for("send", practice_id=practice["id"]).include_query_params(
                **subject_query
            ),
            "preview_url": request.url_for(
                "preview", practice_id=practice["id"]
            ).include_query_params(**subject_query),
            "status_url": request.url_for(
                "send_status", practice_id=practice["id"]
            ).include_query_params(**subject_query),
            # The key of this opened dialog: a second press of Send Now repeats the first send.
            "idempotency_key": form["idempotency_key"],
        },
    )


ENTITY_WORDS = {"patient": "patient", "guarantor": "guarantor"}


def send_to_lines(send_to: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The open model's Send To entries, one line per person and address: a patient who is
    their own guarantor has one number, listed once, with both entities behind it (the dialog
    sends as the one that carries the chosen guarantor's balance)."""
    lines: dict[tuple[str, str, str], dict[str, Any]] = {}
    for entry in send_to:
        key = (entry["entity"]["name"], entry["mode"], entry["address"])
        line = lines.setdefault(
            key,
            {
                "name": entry["entity"]["name"],
                "mode": entry["mode"],
                "address": entry["address"],
                "roles": [],
                "entities": [],
                "allowed": entry["allowed"],
                "reason": entry["reason"],
            },
        )
        line["roles"].append(ENTITY_WORDS[entry["entity"]["type"]])
        line["entities"].append(
            {
                "type": entry["entity"]["type"],
                "id": entry["entity"]["id"],
                "guarantor_ids": entry["guarantor_ids"],
            }
        )
        # One person: a refusal for either role (an opt-out) holds for the line.
        if line["allowed"] and not entry["allowed"]:
            line["allowed"], line["reason"] = False, entry["reason"]
    return list(lines.values())


async def preview(request: Request) -> Response:
    """The live preview: the dialog's values go to the ``preview`` step; nothing is sent."""
    practice = practice_of(request)
    subject = subject_of(request)
    action_id = request.query_params.get("action", "")
    payload = await json_body(request)
    return await json_answer(
        lambda: sandbox_of(request).preview_action(practice["id"], action_id, subject, payload)
    )


async def send(request: Request) -> Response:
    """Send Now: the dialog's values go to the ``submit`` step as they are."""
    practice = practice_of(request)
    subject = subject_of(request)
    action_id = request.query_params.get("action", "")
    payload = await json_body(request)
    return await json_answer(
        lambda: sandbox_of(request).submit_action(practice["id"], action_id, subject, payload),
        wrap="result",
    )


async def send_status(request: Request) -> Response:
    """How far a sent notification got: the dialog's timeline asks every 1.5 seconds."""
    practice = practice_of(request)
    subject = subject_of(request)
    notification_id = request.query_params.get("notification_id", "")
    return await json_answer(
        lambda: sandbox_of(request).notification_status(practice["id"], subject, notification_id)
    )


def template_manager(request: Request) -> Response:
    practice = practice_of(request)
    try:
        manage = sandbox_of(request).open_action(
            practice["id"], MANAGE_ACTION_ID, {"type": "practice", "id": practice["id"]}
        )
    except Exception as error:
        found = refusal(error)
        if found is None:
            raise
        return refusal_page(request, found, MANAGER_TITLE)
    return templates.TemplateResponse(
        request,
        "template_manager.html",
        {
            "practice": practice,
            "manage": manage,
            "manage_url": request.url_for("templates_submit", practice_id=practice["id"]),
        },
    )


async def templates_submit(request: Request) -> Response:
    practice = practice_of(request)
    payload = await json_body(request)
    return await json_answer(lambda: sandbox_of(request).manage(practice["id"], payload))


async def json_body(request: Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        raise HTTPException(400, "The request body must be JSON.") from None


async def json_answer(call: Callable[[], dict[str, Any]], wrap: str | None = None) -> Response:
    """Run a hook call off the event loop; a refusal becomes ``{"error": ...}`` with status 409.

    A send's answer carries the idempotency key for the next send from the same dialog.
    """
    try:
        answer = await run_in_threadpool(call)
    except Exception as error:
        found = refusal(error)
        if found is None:
            raise
        return JSONResponse({"error": found}, status_code=409)
    body = {wrap: answer, "next_key": uuid.uuid4().hex} if wrap else answer
    return JSONResponse(body)


async def statement_batch(request: Request) -> Response:
    practice = practice_of(request)
    count = sandbox_of(request).run_statement_batch(practice["id"])
    target = request.url_for("patients", practice_id=practice["id"]).include_query_params(
        batch=count
    )
    return RedirectResponse(target, status_code=303)


def outbox(request: Request) -> Response:
    practice = practice_of(request)
    sandbox = sandbox_of(request)
    messages = sandbox.outbox(practice["id"])
    for message in messages:
        message["opt_out"] = sandbox.database.opt_out_of(
            practice["id"], message["mode"], message["to"]
        )
    return page(
        request,
        "outbox.html",
        practice=practice,
        messages=messages,
        replied=request.query_params.get("replied"),
        replied_from=request.query_params.get("from"),
        answered=request.query_params.get("answered"),
    )


async def reply(request: Request) -> Response:
    """A reply typed as the recipient: Twilio's signed webhook, POSTed to the host's own route."""
    practice = practice_of(request)
    form = await request.form()
    sender = str(form.get("from", "")).strip()
    text = str(form.get("body", "")).strip()
    if not sender or not text:
        raise HTTPException(
            400, "Type a reply (STOP, HELP, START or any text) from a number texted."
        )
    if not practice["text_from"]:
        raise HTTPException(400, "This practice has no text number to reply to.")
    url = str(request.url_for("plugin_request", plugin_name="ondemand", path="twilio/inbound"))
    params = phone.reply_params(sender, practice["text_from"], text)
    token = sandbox_of(request).adapter.twilio_auth_token
    try:
        answered = await run_in_threadpool(phone.relay_reply, url, params, token)
    except phone.ReplyNotRelayed as failed:
        raise HTTPException(502, str(failed)) from None
    target = request.url_for("outbox", practice_id=practice["id"]).include_query_params(
        replied=text, answered=answered, **{"from": sender}
    )
    return RedirectResponse(target, status_code=303)


async def plugin_request(request: Request) -> Response:
    """The host's mount of the plugins (``/plugins/<plugin>/<rest>``), like the README's Flask
    route: providers' callbacks and replies reach the plugin named in the path this way."""
    body = await request.body()
    form = await request.form()
    try:
        answer = await run_in_threadpool(
            sandbox_of(request).inbound,
            request.path_params["plugin_name"],
            request.method,
            request.path_params["path"],
            str(request.url),
            dict(request.headers),
            {name: value for name, value in form.items() if isinstance(value, str)},
            body.decode("utf-8", "replace"),
        )
    except Exception as error:
        found = refusal(error)
        if found is None:
            raise
        return PlainTextResponse(found["message"], status_code=400)
    if answer is None:
        return PlainTextResponse("No plugin answers this address.", status_code=404)
    return Response(answer["body"], status_code=answer["status"], headers=answer["headers"])


async def account(request: Request) -> Response:
    practice = practice_of(request)
    sandbox = sandbox_of(request)
    switched = problem = None
    if request.method == "POST":
        form = await request.form()
        by = str(form.get("by", "")).strip()
        reason = str(form.get("reason", "")).strip()
        if not by or not reason:
            problem = "Give your name and the reason: both are kept in the audit trail."
        else:
            try:
                switched = await run_in_threadpool(
                    sandbox.switch_addon, practice["id"], form.get("enabled") == "on", by, reason
                )
            except SwitchRefused as refused:
                problem = str(refused)
    changes = await run_in_threadpool(sandbox.addon_log, practice["id"])
    audit = await run_in_threadpool(sandbox.audit, practice["id"])
    month = request.query_params.get("month") or None
    try:
        report = await run_in_threadpool(sandbox.report, practice["id"], month)
    except SwitchRefused as refused:
        raise HTTPException(400, str(refused)) from None
    return page(
        request,
        "account.html",
        practice=practice,
        changes=changes,
        audit=audit,
        report=report,
        bars=report_bars(report),
        enabled=bool(changes) and changes[0]["enabled"],
        switched=switched,
        problem=problem,
        status_code=400 if problem else 200,
    )


# The report's chart: each step of the walk-through to payment, as a share of those sent.
REPORT_STEPS = (
    ("sent", "Sent"),
    ("delivered", "Delivered"),
    ("links_opened", "Link opened"),
    ("paid", "Paid"),
)


def report_bars(report: dict[str, Any]) -> list[dict[str, Any]]:
    most = max([report[key] for key, _ in REPORT_STEPS] + [1])
    return [
        {"key": key, "label": label, "count": report[key], "percent": 100 * report[key] // most}
        for key, label in REPORT_STEPS
    ]


def asked_amount(request: Request) -> Decimal | None:
    """The amount the QuickPay link asks for (``?amount=``); None: the whole balance."""
    text = request.query_params.get("amount")
    if text is None:
        return None
    if not re.fullmatch(r"[0-9]{1,9}(\.[0-9]{1,2})?", text) or Decimal(text) <= 0:
        raise HTTPException(400, "This payment link's amount is not valid.")
    return Decimal(text)


async def pay(request: Request) -> Response:
    """The QuickPay page the host's ``pm_quickpay_link`` points to: a test payment, no card."""
    sandbox = sandbox_of(request)
    practice = practice_of(request)
    guarantor_id = request.path_params["guarantor_id"]
    asked = asked_amount(request)
    paid = None
    refused = False
    if request.method == "POST":
        try:
            paid = money(await run_in_threadpool(sandbox.pay, practice["id"], guarantor_id, asked))
        except PaymentRefused:
            refused = True
    guarantor = sandbox.database.guarantor(practice["id"], guarantor_id)
    if guarantor is None:
        raise HTTPException(404, "This payment link is not valid.")
    balance = Decimal(guarantor["pops_balance"])
    response = templates.TemplateResponse(
        request,
        "pay.html",
        {
            "practice": practice,
            "guarantor": guarantor,
            "due": balance > 0,
            "amount": balance if asked is None else min(asked, balance),
            "paid": paid,
            "refused": refused,
        },
        status_code=409 if refused else 200,
    )
    return response


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if "application/json" in request.headers.get("content-type", ""):
        error = {"code": "invalid_request", "message": exc.detail, "field": None}
        return JSONResponse({"error": error}, status_code=exc.status_code)
    return templates.TemplateResponse(
        request, "http_error.html", {"message": exc.detail}, status_code=exc.status_code
    )


def create_app(sandbox: Sandbox) -> Starlette:
    """The web application around one sandbox; the sandbox is closed when the app stops."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        sandbox.close()

    practice = "/practices/{practice_id}"
    app = Starlette(
        routes=[
            Route("/", home, name="home"),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
            Route("/pay/{practice_id}/{guarantor_id}", pay, methods=["GET", "POST"]),
            Route(practice, patients, name="patients"),
            Route(practice + "/patients/{patient_id}", patient_dashboard, name="patient"),
            Route(practice + "/guarantors/{guarantor_id}", guarantor_dashboard, name="guarantor"),
            Route(practice + "/guarantors/{guarantor_id}/history", history, name="history"),
            Route(
                practice + "/guarantors/{guarantor_id}/opt-outs",
                record_opt_out,
                methods=["POST"],
                name="record_opt_out",
            ),
            Route(practice + "/send", send_dialog, name="send_dialog"),
            Route(practice + "/send", send, methods=["POST"], name="send"),
            Route(practice + "/preview", preview, methods=["POST"], name="preview"),
            Route(practice + "/send/status", send_status, name="send_status"),
            Route(practice + "/templates", template_manager, name="template_manager"),
            Route(
                practice + "/templates", templates_submit, methods=["POST"], name="templates_submit"
            ),
            Route(
                practice + "/statement-batch",
                statement_batch,
                methods=["POST"],
                name="statement_batch",
            ),
            Route(practice + "/outbox", outbox, name="outbox"),
            Route(practice + "/outbox/reply", reply, methods=["POST"], name="reply"),
            Route(
                "/plugins/{plugin_name}/{path:path}",
                plugin_request,
                methods=["GET", "POST"],
                name="plugin_request",
            ),
            Route(practice + "/account", account, methods=["GET", "POST"], name="account"),
        ],
        exception_handlers={HTTPException: http_error},
        lifespan=lifespan,
    )
    app.state.sandbox = sandbox
    return app
