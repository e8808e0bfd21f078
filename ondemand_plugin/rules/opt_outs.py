"""Opt-outs the plugin learns of itself: a recipient's reply that asks to stop (or to start
again), a key press in a call, or a provider's refusal because the recipient opted out. Each is
kept in the store, honoured at once by the send criteria, and told to the host
(``pm_set_opt_out``) so that its records catch up.

Replies are read the way a reasonable person would read them (47 CFR 64.1200(a)(10)): the
keywords count in any case, with any punctuation, spacing or full-width letters, alone or leading
a short reply, and a reply that asks to stop in other words counts too. Where a reply could be
read either way it is read as an opt-out: texting someone who asked not to be texted costs far
more than asking someone to reply START.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from typing import Any, Literal

from ondemand_plugin import telemetry
from ondemand_plugin.boundary import contracts
from ondemand_plugin.boundary.host import Host
from ondemand_plugin.clock import format_timestamp, utc_now
from ondemand_plugin.errors import InvalidRequest
from ondemand_plugin.logsafe import summary
from ondemand_plugin.rules.addresses import (
    mask,
    normalize_email,
    normalize_phone,
    practice_region,
)
from ondemand_plugin.stores import ConsentChange, OptOut, Store

log = logging.getLogger(__name__)

Meaning = Literal["opt_out", "opt_in", "help"]

# The FCC's and carriers' opt-out keywords, with their Spanish equivalents, as read_reply
# normalises them (lower case, no accents, words separated by one space).
STOP_KEYWORDS = frozenset(
    {
        "stop",
        "stopall",
        "stop all",
        "unsubscribe",
        "end",
        "quit",
        "revoke",
        "opt out",
        "optout",
        "cancel",
        "alto",
        "parar",
        "para",
        "cancelar",
        "no mas",
        "basta",
    }
)
# Words that ask to stop wherever they stand in a reply ("please stop texting me").
STOP_ANYWHERE = re.compile(
    r"\b(stop|stopall|unsubscribe|revoke|opt ?out|alto|no mas|no more|remove me|take me off"
    r"|(do not|dont|don t|never) (text|message|contact|call|send))\b"
)
START_KEYWORDS = frozenset({"start", "unstop", "yes", "si"})
HELP_KEYWORDS = frozenset({"help", "info", "ayuda"})
# A reply of at most this many words that begins with a keyword means that keyword
# ("Stop please", "cancel now").
SHORT_REPLY_WORDS = 4


def normalise(text: str) -> str:
    """Lower case ASCII words separated by single spaces: full-width letters become ASCII
    (NFKC), accents go (NO MÁS is NO MAS), punctuation is a space and apostrophes vanish."""
    folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text).casefold())
    letters = "".join(char for char in folded if not unicodedata.combining(char))
    letters = re.sub(r"['\u2019]", "", letters)
    return " ".join(re.sub(r"[^a-z0-9]+", " ", letters).split())


def read_reply(text: str) -> Meaning | None:
    """What a recipient's reply asks for: to opt out, to opt back in, help, or None."""
    words = normalise(text)
    if not words:
        return None
    if words in STOP_KEYWORDS or STOP_ANYWHERE.search(words):
        return "opt_out"
    split = words.split()
    leading = (split[0], " ".join(split[:2]))
    if len(split) <= SHORT_REPLY_WORDS and any(word in STOP_KEYWORDS for word in leading):
        return "opt_out"
    if words in START_KEYWORDS:
        return "opt_in"
    if words in HELP_KEYWORDS:
        return "help"
    return None


def keyword_choice(keyword: str) -> bool | None:
    """True for a reply that opts out, False for one that opts back in, None for any other."""
    meaning = read_reply(keyword)
    if meaning == "opt_out":
        return True
    if meaning == "opt_in":
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
        words: str | None = None,
        sender: str | None = None,
        actor: str | None = None,
    ) -> None:
        """Keep the change, in the opt-outs the sends read and in the consent ledger, and tell
        the host. ``actor`` is who recorded it (a member of staff), else the channel."""
        now = utc_now()
        self.store.set_opt_out(OptOut(practice_id, mode, address, opted_out, source, now))
        self.store.record_consent_change(
            ConsentChange(
                practice_id,
                mode,
                address,
                opted_out,
                source,
                actor or channel,
                words if words is not None else keyword,
                sender,
                now,
            )
        )
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


class StaffOptOuts:
    """The ``ondemand.opt_outs`` action: an opt-out (or opt-in) a recipient asked staff for in
    person or on the phone, honoured at once and kept with who recorded it and when."""

    def __init__(self, opt_outs: OptOuts, host: Host) -> None:
        self.opt_outs = opt_outs
        self.host = host

    def record(self, payload: Any, context: dict[str, Any]) -> dict[str, Any]:
        contracts.check(
            "opt-out-request",
            payload,
            lambda path, problem: InvalidRequest(f"The request's {path} {problem}.", field=path),
        )
        practice_id = context["practice_id"]
        practice = self.host.practice(practice_id)
        mode = payload["mode"]
        address = (
            normalize_email(payload["address"])
            if mode == "email"
            else normalize_phone(
                payload["address"], practice_region(practice.phone), for_text=False
            )
        )
        opted_out = payload["op"] == "opt_out"
        user = context["user"]
        self.opt_outs.change(
            practice_id,
            mode,
            address,
            opted_out,
            source="staff",
            keyword=None,
            channel="dashboard",
            words=payload.get("note"),
            actor=f"{user['name']} ({user['id']})",
        )
        return {
            "mode": mode,
            "address": address,
            "opted_out": opted_out,
            "changed_by": user["name"],
            "changed_at": format_timestamp(utc_now()),
        }
