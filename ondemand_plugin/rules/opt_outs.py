"""Opt-outs the plugin learns of itself: a recipient's STOP or START reply, or a provider's refusal
because the recipient opted out. Each is kept in the store, honoured at once by the send criteria,
and told to the host (``pm_set_opt_out``) so that its records catch up."""

from __future__ import annotations

import logging

from ondemand_plugin import telemetry
from ondemand_plugin.boundary.host import Host
from ondemand_plugin.clock import format_timestamp, utc_now
from ondemand_plugin.logsafe import summary
from ondemand_plugin.rules.addresses import mask
from ondemand_plugin.stores import OptOut, Store

log = logging.getLogger(__name__)

# The keywords carriers and Twilio treat as opting out of, or back into, texts from a number.
STOP_KEYWORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "END", "QUIT", "REVOKE", "OPTOUT", "CANCEL"}
)
START_KEYWORDS = frozenset({"START", "UNSTOP"})


def keyword_choice(keyword: str) -> bool | None:
    """True for an opt-out keyword, False for an opt-in one, None for any other reply."""
    if keyword in STOP_KEYWORDS:
        return True
    if keyword in START_KEYWORDS:
        return False
    return None


class OptOuts:
    def __init__(self, store: Store, host: Host) -> None:
        self.store = store
        self.host = host

    def change(
        self,
        practice_id: str,
        mode: str,
        address: str,
        opted_out: bool,
        *,
        source: str,
        keyword: str | None,
        channel: str,
    ) -> None:
        now = utc_now()
        self.store.set_opt_out(OptOut(practice_id, mode, address, opted_out, source, now))
        telemetry.opt_out_changed(mode, opted_out, source)
        log.info(
            "%s %s of %s messages from practice %s (%s through %s)",
            mask(address),
            "opted out" if opted_out else "opted back in",
            mode,
            practice_id,
            source,
            channel,
        )
        context = {
            "source": source,
            "keyword": keyword,
            "channel": channel,
            "changed_at": format_timestamp(now),
        }
        try:
            self.host.set_opt_out(practice_id, mode, address, opted_out, context)
        except Exception as error:
            # The plugin honours the change from its own store whatever the host does.
            log.error(
                "The host's pm_set_opt_out (%s) raised; the opt-out of %s is kept by the "
                "plugin: %s",
                self.host.implementers("pm_set_opt_out"),
                mask(address),
                summary(error, addresses=(address,)),
            )
