"use strict";
// The send dialog's timeline: after Send, it asks the plugin's status step (through the host's
// /send/status) every 1.5 seconds while the dialog stays open, and fills in Sent, Delivered,
// Link opened and Paid as they happen, until the payment lands. An answer the plugin marks
// stale (its database away) is shown with when it was last known.

const TIMELINE_POLL_MS = 1500;

function followTimeline(notificationId) {
  const list = document.getElementById("od-timeline");
  if (!list) return;
  list.hidden = false;
  list.dataset.notificationId = notificationId;
  document.getElementById("od-timeline-stale").hidden = true;
  for (const step of list.querySelectorAll("[data-step]")) {
    step.classList.remove("done");
    step.querySelector("time").textContent = "";
  }
  pollTimeline(list, notificationId);
}

async function pollTimeline(list, notificationId) {
  const dialog = list.closest("dialog");
  // A new send or a closed dialog ends this one's polling.
  if (list.dataset.notificationId !== notificationId || !list.isConnected || (dialog && !dialog.open)) {
    return;
  }
  try {
    const url = new URL(list.dataset.statusUrl, location.href);
    url.searchParams.set("notification_id", notificationId);
    const response = await fetch(url, { headers: { Accept: "application/json" } });
    if (response.ok && showStatus(list, await response.json())) return;
  } catch (error) {
    // The host did not answer this time: the next poll asks again.
  }
  setTimeout(() => pollTimeline(list, notificationId), TIMELINE_POLL_MS);
}

// Marks the steps the status reached; true once paid (nothing more to wait for).
function showStatus(list, status) {
  showStale(status);
  const left = ["sent", "delivered", "undelivered"].includes(status.status);
  markStep(list, "sent", left, null);
  markStep(list, "delivered", status.status === "delivered", status.status_changed_at);
  markStep(list, "opened", status.link_opened_at !== null, status.link_opened_at);
  markStep(list, "paid", status.paid_at !== null, status.paid_at);
  if (status.paid_amount !== null) {
    list.querySelector("[data-step=paid] .amount").textContent =
      `$${Number(status.paid_amount).toFixed(2)}`;
  }
  return status.paid_at !== null;
}

// While the plugin cannot read its records, it answers the status it last knew ("stale"): say so,
// and when that was, until a current answer comes.
function showStale(status) {
  const note = document.getElementById("od-timeline-stale");
  note.hidden = !status.stale;
  if (status.stale) {
    const asOf = new Date(status.as_of).toLocaleTimeString();
    note.textContent = `As last known at ${asOf}: the latest cannot be read just now.`;
  }
}

function markStep(list, name, reached, at) {
  const step = list.querySelector(`[data-step=${name}]`);
  if (!reached || step.classList.contains("done")) return;
  step.classList.add("done");
  const time = step.querySelector("time");
  const moment = at ? new Date(at) : new Date();
  time.dateTime = moment.toISOString();
  time.textContent = moment.toLocaleTimeString();
}
