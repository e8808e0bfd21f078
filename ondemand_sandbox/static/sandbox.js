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
  if (dialog === sendDialog() && byId("od-guarantor")) refreshSendForm();
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

// The send dialog

function selectedContact() {
  const option = byId("od-send-to").selectedOptions[0];
  return option ? option.dataset : null;
}

// Only those who may get the chosen guarantor's balance are offered: that guarantor, or a patient
// they are responsible for (the plugin's guarantor_ids), never another guarantor.
function followGuarantor(guarantorId) {
  const sendTo = byId("od-send-to");
  for (const option of sendTo.options) {
    option.hidden = !option.dataset.guarantorIds.split(" ").includes(guarantorId);
  }
  const chosen = sendTo.selectedOptions[0];
  if (!chosen || chosen.hidden) {
    const first = Array.from(sendTo.options).find((option) => !option.hidden && !option.disabled);
    sendTo.selectedIndex = first ? first.index : -1;
  }
}

function refreshSendForm() {
  const guarantor = byId("od-guarantor").selectedOptions[0];
  followGuarantor(guarantor ? guarantor.value : "");
  // The plugin's notice for the chosen guarantor (R5), shown only while that one is chosen.
  const notice = guarantor ? guarantor.dataset.notice : "";
  byId("od-payment-notice").textContent = notice;
  byId("od-payment-notice").hidden = !notice;
  const contact = selectedContact();
  const mode = contact ? contact.mode : null;
  byId("od-subject-row").hidden = mode !== "email";
  byId("od-address").value = contact ? contact.address : "";
  const template = byId("od-template");
  for (const option of template.options) {
    if (option.dataset.mode) option.hidden = option.dataset.mode !== mode;
  }
  if (template.selectedOptions[0] && template.selectedOptions[0].hidden) template.value = "";
}

function templateTexts() {
  return JSON.parse(byId("od-templates").textContent);
}

function applyTemplate() {
  const template = byId("od-template");
  if (template.value === "-MANAGE-") {
    const url = template.selectedOptions[0].dataset.manageUrl;
    template.value = "";
    openFragment(managerDialog(), url);
    return;
  }
  const texts = templateTexts()[template.value];
  byId("od-body").value = texts ? texts.body : "";
  byId("od-subject").value = texts && texts.subject ? texts.subject : "";
}

function sendPayload() {
  const contact = selectedContact();
  const templateId = byId("od-template").value || null;
  const texts = templateId ? templateTexts()[templateId] : null;
  const body = byId("od-body").value;
  const subject = byId("od-subject").value;
  const sendTo = {
    entity: { type: contact.entityType, id: contact.entityId },
    mode: contact.mode,
  };
  if (!byId("od-modify-box").hidden && byId("od-address").value !== contact.address) {
    sendTo.address = byId("od-address").value;
    sendTo.save_contact = byId("od-save-contact").checked;
  }
  return {
    guarantor_id: byId("od-guarantor").value,
    send_to: sendTo,
    template_id: templateId,
    // Unchanged template text is left to the template; edited or typed text replaces it.
    body: texts && body === texts.body ? null : body || null,
    subject: contact.mode !== "email" || (texts && subject === (texts.subject || "")) ? null : subject || null,
    idempotency_key: byId("od-key").value,
  };
}

async function sendNow() {
  const form = byId("send-form");
  const button = byId("od-send");
  if (!form || !button || button.disabled) return;
  if (!selectedContact()) {
    const message = "No one who may get this guarantor's balance can be reached: pick another guarantor.";
    showError(byId("od-error"), { code: "no_contact", message });
    return;
  }
  button.disabled = true;
  showError(byId("od-error"), null);
  byId("od-result").textContent = "Sending…";
  try {
    const answer = await postJson(form.dataset.sendUrl, sendPayload());
    if (answer.error) {
      byId("od-result").textContent = "";
      showError(byId("od-error"), answer.error);
      return;
    }
    byId("od-key").value = answer.next_key;
    showResult(answer.result, form.dataset.outboxUrl);
    refreshHistory();
  } finally {
    button.disabled = false;
  }
}

function showResult(result, outboxUrl) {
  const box = byId("od-result");
  box.replaceChildren();
  const line = document.createElement("p");
  line.className = result.status === "sent" ? "success" : "error";
  line.textContent =
    result.status === "sent"
      ? `Sent to ${result.to} by ${result.mode}. ${result.detail}`
      : `Not delivered: ${result.detail}`;
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

async function manage(payload) {
  const root = byId("tm");
  const answer = await postJson(root.dataset.manageUrl, payload);
  if (answer.error) {
    showError(byId("tm-error"), answer.error);
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
  if (target.dataset.openAction) openFragment(sendDialog(), target.dataset.openAction);
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
  if (id === "od-guarantor" || id === "od-send-to") refreshSendForm();
  else if (id === "od-template") applyTemplate();
  else if (id === "tm-mode") refreshTemplateForm();
});

document.addEventListener("submit", (event) => {
  if (event.target.id === "send-form") {
    event.preventDefault();
    sendNow();
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
  else if (sendDialog().open && !manager.open) sendNow();
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
  refreshSendForm();
  byId("od-template").focus();
}
