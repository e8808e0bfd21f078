// The sandbox's little script: open the dialog the server rendered from the plugin's "open" model,
// send its values to the "submit" step, manage templates, and refresh the history panel.
"use strict";

const sendDialog = () => document.getElementById("send-dialog");
const managerDialog = () => document.getElementById("template-manager");
const byId = (id) => document.getElementById(id);

async function openFragment(dialog, url) {
  const response = await fetch(url, { headers: { Accept: "text/html" } });
  dialog.innerHTML = await response.text();
  // Kept to redraw the dialog after a change (the template manager) or reread it.
  dialog.dataset.url = url;
  if (dialog === sendDialog() && byId("od-guarantor")) {
    filledFrom = { template: "", body: "", subject: "" };
    refreshSendForm(true);
  }
  if (!dialog.open) dialog.showModal();
  const first = dialog.querySelector("select, input:not([type=hidden]), textarea, button");
  if (first) first.focus();
}

async function postJson(url, payload) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify(payload),
  });
  return response.json();
}

function showError(element, error) {
  element.textContent = error ? error.message : "";
  if (error) {
    element.dataset.code = error.code;
    element.focus();
  }
}

// A refusal is shown at the field it names (the plugin's ``field``): marked invalid, described by
// the message, and focused; a refusal of no field, or of one the dialog does not show, at the foot.
function clearFieldErrors(root) {
  for (const input of root.querySelectorAll("[aria-invalid=true]")) {
    input.removeAttribute("aria-invalid");
    const described = (input.getAttribute("aria-describedby") || "").split(" ");
    const kept = described.filter((id) => !id.endsWith("-error"));
    if (kept.length) input.setAttribute("aria-describedby", kept.join(" "));
    else input.removeAttribute("aria-describedby");
  }
  for (const message of root.querySelectorAll(".field-error")) {
    message.textContent = "";
    message.hidden = true;
    delete message.dataset.code;
  }
}

// What the contract's checks say of a field ("The request's template.body must have at least 1
// character(s).") is put as the front desk says it, naming the box by its label.
function inFrontDeskWords(error, input) {
  // Said at the box Modify opened, "Correct it with Modify." points where the user already is.
  if (input.id === "od-address") return error.message.replace(/ Correct it with Modify\.$/, "");
  if (!/^The (request|template)'s /.test(error.message)) return error.message;
  const label = document.querySelector(`label[for="${input.id}"]`).textContent.trim();
  if (!input.value.trim()) return `${label} is empty: fill it in.`;
  return `${label} is not right: ${error.message.replace(/^The (request|template)'s [\w.]+ /, "it ")}`;
}

function showFieldError(root, fieldInputs, general, error) {
  const input = fieldInputs(error.field);
  if (!input || input.closest("[hidden]")) {
    showError(general, error);
    return;
  }
  const message = byId(`${input.id}-error`);
  message.textContent = inFrontDeskWords(error, input);
  message.dataset.code = error.code;
  message.hidden = false;
  input.setAttribute("aria-invalid", "true");
  const described = (input.getAttribute("aria-describedby") || "").split(" ").filter(Boolean);
  input.setAttribute("aria-describedby", [...described, message.id].join(" "));
  input.focus();
}

// The send dialog

function sendDialogInput(field) {
  if (field === "address" || field === "send_to.address") {
    return byId("od-modify-box").hidden ? byId("od-send-to") : byId("od-address");
  }
  if (field && field.startsWith("send_to")) return byId("od-send-to");
  const inputs = {
    guarantor_id: "od-guarantor",
    template_id: "od-template",
    body: "od-body",
    subject: "od-subject",
    amount: "od-amount",
  };
  return field in inputs ? byId(inputs[field]) : null;
}

function selectedContact() {
  // A preview's timer may fire after the dialog was redrawn without Send To (a refusal).
  const sendTo = byId("od-send-to");
  const option = sendTo ? sendTo.selectedOptions[0] : null;
  return option && !option.hidden ? option : null;
}

// The entity a Send To line sends as: the chosen guarantor themself, else a patient they are
// responsible for (one line may stand for a patient who is also their own guarantor).
function entityFor(option, guarantorId) {
  const entities = JSON.parse(option.dataset.entities);
  const carrying = entities.filter((entity) => entity.guarantor_ids.includes(guarantorId));
  return carrying.find((entity) => entity.type === "guarantor" && entity.id === guarantorId) || carrying[0] || null;
}

// The way to reach someone first offered: the guarantor themself before a patient, and a text
// (read at once) before an e-mail before a call.
const MODE_ORDER = ["text", "email", "voice"];

function bestContact(options, guarantorId) {
  const usable = options.filter((option) => !option.hidden && !option.disabled);
  const rank = (option) => {
    const own = entityFor(option, guarantorId).type === "guarantor" ? 0 : 1;
    return own * 10 + MODE_ORDER.indexOf(option.dataset.mode);
  };
  return usable.sort((a, b) => rank(a) - rank(b))[0] || null;
}

// Only those who may get the chosen guarantor's balance are offered: that guarantor, or a patient
// they are responsible for (the plugin's guarantor_ids), never another guarantor.
function followGuarantor(guarantorId, opening) {
  const sendTo = byId("od-send-to");
  for (const option of sendTo.options) option.hidden = entityFor(option, guarantorId) === null;
  const chosen = sendTo.selectedOptions[0];
  if (opening || !chosen || chosen.hidden || chosen.disabled) {
    const best = bestContact(Array.from(sendTo.options), guarantorId);
    sendTo.selectedIndex = best ? best.index : -1;
  }
}

// The typed text the dialog would lose: what differs from the template (or the empty box) it
// was last filled from.
let filledFrom = { template: "", body: "", subject: "" };

function typedText() {
  return byId("od-body").value !== filledFrom.body || byId("od-subject").value !== filledFrom.subject;
}

function fillFrom(templateId) {
  const texts = templateTexts()[templateId];
  byId("od-body").value = texts ? texts.body : "";
  byId("od-subject").value = texts && texts.subject ? texts.subject : "";
  byId("od-template").value = templateId;
  filledFrom = { template: templateId, body: byId("od-body").value, subject: byId("od-subject").value };
}

function refreshSendForm(opening) {
  const guarantor = byId("od-guarantor").selectedOptions[0];
  followGuarantor(guarantor ? guarantor.value : "", opening);
  // The plugin's notice for the chosen guarantor (R5), shown only while that one is chosen.
  const notice = guarantor ? guarantor.dataset.notice : "";
  byId("od-payment-notice").textContent = notice;
  byId("od-payment-notice").hidden = !notice;
  const contact = selectedContact();
  const mode = contact ? contact.dataset.mode : null;
  byId("od-subject-row").hidden = mode !== "email";
  byId("od-address").value = contact ? contact.dataset.address : "";
  const template = byId("od-template");
  for (const option of template.options) {
    if (option.dataset.mode) option.hidden = option.dataset.mode !== mode;
  }
  // Untouched text follows the mode: that mode's first template. Typed text stays as typed.
  const current = template.selectedOptions[0];
  if (!typedText() && (!current || current.hidden || !current.value)) {
    const first = Array.from(template.options).find((option) => option.dataset.mode === mode);
    fillFrom(first ? first.value : "");
  } else if (current && current.hidden) template.value = "";
  schedulePreview();
}

function templateTexts() {
  return JSON.parse(byId("od-templates").textContent);
}

function applyTemplate() {
  const template = byId("od-template");
  if (template.value === "-MANAGE-") {
    const url = template.selectedOptions[0].dataset.manageUrl;
    template.value = filledFrom.template;
    openFragment(managerDialog(), url);
    return;
  }
  const label = template.selectedOptions[0].textContent;
  if (typedText() && !window.confirm(`Replace the message you typed with “${label}”?`)) {
    template.value = filledFrom.template;
    return;
  }
  fillFrom(template.value);
  schedulePreview();
}

function sendPayload() {
  const contact = selectedContact();
  const guarantorId = byId("od-guarantor").value;
  const entity = entityFor(contact, guarantorId);
  const templateId = byId("od-template").value || null;
  const texts = templateId ? templateTexts()[templateId] : null;
  const body = byId("od-body").value;
  const subject = byId("od-subject").value;
  const mode = contact.dataset.mode;
  const sendTo = { entity: { type: entity.type, id: entity.id }, mode };
  if (!byId("od-modify-box").hidden && byId("od-address").value !== contact.dataset.address) {
    sendTo.address = byId("od-address").value;
    sendTo.save_contact = byId("od-save-contact").checked;
  }
  return {
    guarantor_id: guarantorId,
    send_to: sendTo,
    template_id: templateId,
    // Unchanged template text is left to the template; edited or typed text replaces it.
    body: texts && body === texts.body ? null : body || null,
    subject: mode !== "email" || (texts && subject === (texts.subject || "")) ? null : subject || null,
    amount: byId("od-amount").value.trim().replace(/^\$/, "") || null,
    idempotency_key: byId("od-key").value,
  };
}

// The preview follows the editor, a moment after the last keystroke.
let previewTimer = null;
let previewAsked = 0;

function schedulePreview() {
  clearTimeout(previewTimer);
  previewTimer = setTimeout(refreshPreview, 250);
}

async function refreshPreview() {
  const form = byId("send-form");
  if (!form || !selectedContact()) return;
  const payload = sendPayload();
  if (!payload.body && !payload.template_id) {
    showPreview(null, "Pick a template or type the message to see what they will get.");
    return;
  }
  const asked = ++previewAsked;
  const answer = await postJson(form.dataset.previewUrl, payload);
  // A slower answer to an earlier version of the text is not shown over a newer one.
  if (asked !== previewAsked || !byId("send-form")) return;
  if (answer.error) showPreview(null, answer.error.message);
  else showPreview(answer, "");
}

const MODE_WORDS = { text: "Text message", email: "E-mail", voice: "Call" };

function showPreview(preview, problem) {
  byId("od-preview-to").textContent = preview ? `${MODE_WORDS[preview.mode]} to ${preview.to}` : problem;
  byId("od-preview-subject").hidden = !(preview && preview.subject);
  byId("od-preview-subject").textContent = preview && preview.subject ? `Subject: ${preview.subject}` : "";
  byId("od-preview").textContent = preview ? preview.body : "";
  byId("od-preview").className = `preview-body ${preview ? `mode-${preview.mode}` : ""}`;
  let size = "";
  if (preview && preview.mode === "text") {
    const parts = preview.segments === 1 ? "1 text message" : `${preview.segments} text messages`;
    size = `${preview.characters} characters · ${parts} (${preview.encoding})`;
  } else if (preview) size = `${preview.characters} characters`;
  byId("od-segments").textContent = size;
  const warnings = byId("od-warnings");
  warnings.replaceChildren(
    ...(preview ? preview.warnings : []).map((warning) => {
      const item = document.createElement("li");
      item.textContent = warning;
      return item;
    }),
  );
}

// After a send the dialog shows its result and Send Now becomes "Send another": F2 or a second
// press never repeats a send by accident; a second notification takes a deliberate click, and
// goes with the new key the answer gave.
function markSent(button, nextKey) {
  byId("od-key").value = nextKey;
  button.dataset.sent = "true";
  button.textContent = "Send another";
  button.removeAttribute("aria-keyshortcuts");
}

async function sendNow(deliberate) {
  const form = byId("send-form");
  const button = byId("od-send");
  if (!form || !button || button.disabled) return;
  if (button.dataset.sent && !deliberate) {
    showError(byId("od-error"), {
      code: "already_sent",
      message: "This notification was sent. To send it again, press “Send another”.",
    });
    return;
  }
  clearFieldErrors(form);
  showError(byId("od-error"), null);
  if (!selectedContact()) {
    const message = "No one who may get this guarantor's balance can be reached: pick another guarantor.";
    showFieldError(form, sendDialogInput, byId("od-error"), { code: "no_contact", field: "send_to", message });
    return;
  }
  const payload = sendPayload();
  button.disabled = true;
  byId("od-result").textContent = "Sending…";
  try {
    let answer = await postJson(form.dataset.sendUrl, payload);
    // The same message went to this address minutes ago: ask, as the plugin's refusal says.
    if (answer.error && answer.error.code === "recent_duplicate") {
      const question = answer.error.message.slice(0, answer.error.message.indexOf("?") + 1);
      if (window.confirm(question)) {
        answer = await postJson(form.dataset.sendUrl, { ...payload, confirm_repeat: true });
      }
    }
    if (answer.error) {
      byId("od-result").textContent = "";
      showFieldError(form, sendDialogInput, byId("od-error"), answer.error);
      return;
    }
    markSent(button, answer.next_key);
    if (payload.send_to.save_contact && answer.result.status === "sent") showSavedAddress(answer.result.to);
    showResult(answer.result, form.dataset.outboxUrl);
    refreshHistory();
  } finally {
    button.disabled = false;
  }
}

// "Save to the record": Send To shows the saved address at once, and Modify closes on it.
function showSavedAddress(address) {
  const option = selectedContact();
  option.dataset.address = address;
  option.textContent = `${option.dataset.label} · ${address}`;
  byId("od-modify-box").hidden = true;
  byId("od-modify").setAttribute("aria-expanded", "false");
  byId("od-address").value = address;
}

const SENT_BY = { text: "text message", email: "e-mail", voice: "phone call" };

function showResult(result, outboxUrl) {
  const box = byId("od-result");
  box.replaceChildren();
  const line = document.createElement("p");
  line.className = result.status === "sent" ? "success" : "error";
  line.textContent =
    result.status === "sent"
      ? `Sent to ${result.to} by ${SENT_BY[result.mode]}.`
      : `Not sent: the message could not go out just now. Try again in a moment, or pick another way to reach them. (${result.detail})`;
  box.append(line);
  if (result.status === "sent") {
    const link = document.createElement("a");
    link.href = outboxUrl;
    link.textContent = "See it in the outbox";
    box.append(link);
    followTimeline(result.notification_id);
  }
  box.focus();
}

async function refreshHistory() {
  const panel = byId("history");
  if (!panel) return;
  const response = await fetch(panel.dataset.historyUrl);
  panel.innerHTML = await response.text();
}

// The template manager

const DONE = { create: "Saved.", update: "Saved.", copy: "Copied.", delete: "Deleted." };

function editTemplate(template) {
  byId("tm-form").hidden = false;
  byId("tm-form-title").textContent = template ? `Edit “${template.label}”` : "New template";
  byId("tm-id").value = template ? template.id : "";
  byId("tm-label").value = template ? template.label : "";
  byId("tm-mode").value = template ? template.mode : "text";
  byId("tm-active").checked = template ? template.active : true;
  byId("tm-sender").value = template && template.sender_email ? template.sender_email : "";
  byId("tm-subject").value = template && template.subject ? template.subject : "";
  byId("tm-body").value = template ? template.body : "";
  refreshTemplateForm();
  byId("tm-label").focus();
}

function refreshTemplateForm() {
  const email = byId("tm-mode").value === "email";
  for (const row of document.querySelectorAll("[data-email-only]")) row.hidden = !email;
}

function managerInput(field) {
  const inputs = {
    "template.label": "tm-label",
    "template.mode": "tm-mode",
    "template.body": "tm-body",
    "template.subject": "tm-subject",
    "template.sender_email": "tm-sender",
  };
  return field in inputs ? byId(inputs[field]) : null;
}

async function manage(payload) {
  const root = byId("tm");
  clearFieldErrors(root);
  showError(byId("tm-error"), null);
  const answer = await postJson(root.dataset.manageUrl, payload);
  if (answer.error) {
    showFieldError(root, managerInput, byId("tm-error"), answer.error);
    return;
  }
  const url = root.closest("dialog").dataset.url;
  await openFragment(managerDialog(), url);
  byId("tm-status").textContent = DONE[payload.op];
}

async function saveTemplate() {
  const id = byId("tm-id").value;
  const email = byId("tm-mode").value === "email";
  const template = {
    label: byId("tm-label").value,
    mode: byId("tm-mode").value,
    active: byId("tm-active").checked,
    body: byId("tm-body").value,
    subject: email ? byId("tm-subject").value || null : null,
    sender_email: email ? byId("tm-sender").value || null : null,
  };
  await manage(id ? { op: "update", template_id: id, template } : { op: "create", template });
}

function insertField(button) {
  const target = byId(button.dataset.insertInto);
  const field = byId(button.dataset.insertFrom).value;
  const start = target.selectionStart ?? target.value.length;
  const end = target.selectionEnd ?? start;
  target.value = target.value.slice(0, start) + field + target.value.slice(end);
  target.focus();
  target.selectionStart = target.selectionEnd = start + field.length;
}

// Wiring, by delegation: the dialogs' content is replaced as they are used.

document.addEventListener("click", (event) => {
  const target = event.target.closest("button");
  if (!target) return;
  // A disabled action stays focusable (aria-disabled), so its reason can be reached and read.
  if (target.getAttribute("aria-disabled") === "true") return;
  if (target.dataset.openAction) openFragment(sendDialog(), target.dataset.openAction);
  else if (target.id === "od-send") {
    event.preventDefault();
    sendNow(true);
  }
  else if (target.hasAttribute("data-close")) target.closest("dialog").close();
  else if (target.id === "od-modify") {
    const box = byId("od-modify-box");
    box.hidden = !box.hidden;
    target.setAttribute("aria-expanded", String(!box.hidden));
    if (!box.hidden) byId("od-address").focus();
  } else if (target.dataset.insertInto) insertField(target);
  else if (target.id === "tm-add") editTemplate(null);
  else if (target.id === "tm-cancel") {
    // Focus would be lost with the hidden form: it goes back to where a new edit starts.
    byId("tm-form").hidden = true;
    byId("tm-add").focus();
  }
  else if (target.dataset.tmEdit) {
    const all = JSON.parse(byId("tm-templates").textContent);
    editTemplate(all.find((t) => t.id === target.dataset.tmEdit));
  } else if (target.dataset.tmOp) {
    const op = target.dataset.tmOp;
    if (op === "delete" && !window.confirm("Delete this template?")) return;
    const payload = { op, template_id: target.dataset.id };
    if (op === "update") payload.template = { active: target.dataset.active === "true" };
    manage(payload);
  }
});

document.addEventListener("change", (event) => {
  const id = event.target.id;
  if (id === "od-guarantor" || id === "od-send-to") refreshSendForm(false);
  else if (id === "od-template") applyTemplate();
  else if (id === "tm-mode") refreshTemplateForm();
});

document.addEventListener("submit", (event) => {
  if (event.target.id === "send-form") {
    event.preventDefault();
    sendNow(false);
  } else if (event.target.id === "tm-form") {
    event.preventDefault();
    saveTemplate();
  }
});

// F2 is Send Now in the send dialog, and Save in the template manager (Escape closes dialogs).
document.addEventListener("keydown", (event) => {
  if (event.key !== "F2") return;
  event.preventDefault();
  const manager = managerDialog();
  if (manager.open && !byId("tm-form").hidden) saveTemplate();
  else if (sendDialog().open && !manager.open) sendNow(false);
});

document.addEventListener("input", (event) => {
  if (["od-body", "od-subject", "od-address", "od-amount"].includes(event.target.id)) schedulePreview();
});

// Templates may have changed in the manager: the send dialog rereads its template list.
document.addEventListener("DOMContentLoaded", () => {
  managerDialog().addEventListener("close", () => {
    const dialog = sendDialog();
    if (dialog.open && dialog.dataset.url) reloadTemplates(dialog.dataset.url);
  });
});

async function reloadTemplates(url) {
  const response = await fetch(url);
  const holder = document.createElement("div");
  holder.innerHTML = await response.text();
  const fresh = holder.querySelector("#od-template");
  if (!fresh) return;
  byId("od-template").replaceChildren(...fresh.children);
  byId("od-templates").textContent = holder.querySelector("#od-templates").textContent;
  refreshSendForm(false);
  byId("od-template").focus();
}
