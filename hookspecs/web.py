"""Hooks the host calls when an HTTP request reaches a plugin: provider callbacks and replies.

The host mounts a prefix of its choosing (for example ``/plugins/``) in its web framework and
hands every request under ``<prefix><plugin_name>/`` to the plugins, with the rest of the path.
Shapes are JSON Schemas in ``contracts/``: ``inbound-request.json``, ``inbound-response.json``.
"""

from __future__ import annotations

from typing import Any

from hookspecs._markers import hookspec


@hookspec(firstresult=True)
def pm_inbound_request(
    plugin_name: str,
    method: str,
    path: str,
    url: str,
    headers: dict[str, str],
    form: dict[str, str],
    body: str,
) -> dict[str, Any] | None:
    """Answer an HTTP request addressed to ``plugin_name``; None when it is another plugin's.

    ``path`` is what follows ``<prefix><plugin_name>/`` (``"twilio/status"``); ``url`` the full
    URL exactly as the caller used it (providers sign it); ``headers`` the request headers;
    ``form`` the decoded ``application/x-www-form-urlencoded`` fields (one value per name);
    ``body`` the raw body as text. The answer is ``{"status": int, "headers": {...},
    "body": str}``, which the host sends back as it is.

    Example::

        answer = pm.hook.pm_inbound_request(
            plugin_name="ondemand", method="POST", path="twilio/status",
            url="https://pm.example.com/plugins/ondemand/twilio/status",
            headers={"X-Twilio-Signature": "0/KCTR6DLpKmkAf8muzZqo1nDgQ="},
            form={"MessageSid": "SM1", "MessageStatus": "delivered"}, body="MessageSid=SM1&...")
        # {"status": 200, "headers": {"Content-Type": "text/plain; charset=utf-8"}, "body": ""}
    """
