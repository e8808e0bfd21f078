"""R1, the premium add-on: is it on for a practice, and who switched it, when and why.

Dashboards ask on every render, so the set of entitled practices is cached in memory and
re-read at most every ``REFRESH_SECONDS``: a switch made anywhere is seen within that time.
While the database is away, dashboards (and the dialog's timeline) answer from the state last
read, without waiting on it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable

from ondemand_plugin.clock import utc_now
from ondemand_plugin.errors import InvalidRequest, NotEntitled, StoreUnavailable
from ondemand_plugin.stores import AddonChange, Store

log = logging.getLogger(__name__)

REFRESH_SECONDS = 2.0
# How long a dashboard render waits for a re-read before it answers from the state last read.
DASHBOARD_WAIT_SECONDS = 0.5


class Entitlement:
    def __init__(self, store: Store, clock: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._clock = clock
        self._enabled: frozenset[str] = frozenset()
        # Whether this worker ever read the state: before, there is none to answer from.
        self._read = False
        self._fresh_until = float("-inf")
        self._store_away = False
        self._lock = threading.Lock()
        self._rereading: threading.Thread | None = None

    def is_enabled(self, practice_id: str) -> bool:
        if self._clock() >= self._fresh_until:
            self._refresh()
        return practice_id in self._enabled

    def shown_on_dashboards(self, practice_id: str) -> bool:
        """``is_enabled`` for the dashboards' hot path: the re-read runs aside, and a render
        waits for it at most ``DASHBOARD_WAIT_SECONDS`` (not at all while the database is
        known to be away), then answers from the state last read."""
        if self._clock() >= self._fresh_until:
            rereading = self._reread_aside()
            if not self._store_away:
                rereading.join(DASHBOARD_WAIT_SECONDS)
        return practice_id in self._enabled

    def require(self, practice_id: str, *, as_last_read: bool = False) -> None:
        """``as_last_read``, for a step that answers from the last known state (the timeline's
        ``status``): once this worker has read the state, judge as the dashboards do, without
        waiting on a database known to be away."""
        if as_last_read and self._read:
            enabled = self.shown_on_dashboards(practice_id)
        else:
            enabled = self.is_enabled(practice_id)
        if not enabled:
            raise NotEntitled(
                "On-Demand Balance Notifications are a premium add-on that this practice does "
                "not have. Contact Support or your Account Manager to switch it on.",
                field="practice_id",
            )

    def switch(
        self, practice_id: str, enabled: bool, changed_by: str, reason: str | None = None
    ) -> AddonChange:
        """Switch the add-on and keep who did it, when and why."""
        if not changed_by.strip():
            raise InvalidRequest(
                "Say who switches the add-on (--by NAME): the audit trail needs a name.",
                field="changed_by",
            )
        change = AddonChange(
            practice_id=practice_id,
            enabled=enabled,
            changed_by=changed_by.strip(),
            reason=reason.strip() if reason and reason.strip() else None,
            changed_at=utc_now(),
        )
        self._store.record_addon_change(change)
        self._refresh()
        return change

    def log(self, practice_id: str) -> list[AddonChange]:
        return self._store.addon_log(practice_id)

    def _reread_aside(self) -> threading.Thread:
        """The re-read in flight, or a new one: one at a time, however many renders ask."""
        with self._lock:
            if self._rereading is None or not self._rereading.is_alive():
                self._rereading = threading.Thread(
                    target=self._refresh_quietly, name="ondemand-addon-reread", daemon=True
                )
                self._rereading.start()
            return self._rereading

    def _refresh_quietly(self) -> None:
        # Logged once by _refresh; the renders keep the state last read.
        with contextlib.suppress(StoreUnavailable):
            self._refresh()

    def _refresh(self) -> None:
        try:
            enabled = self._store.enabled_practices()
        except StoreUnavailable as error:
            with self._lock:
                # Tried again at the next refresh, not on every render in between.
                self._fresh_until = self._clock() + REFRESH_SECONDS
                if not self._store_away:
                    self._store_away = True
                    log.warning(
                        "%s Until it is back, dashboards show the add-on as last read, the "
                        "dialog's timeline the statuses last known, and the dialog and sends "
                        "are refused (store_unavailable).",
                        error.outage,
                    )
            raise
        with self._lock:
            self._enabled = enabled
            self._read = True
            self._fresh_until = self._clock() + REFRESH_SECONDS
            if self._store_away:
                self._store_away = False
                log.warning("The On-Demand database is back: the add-on state is read again.")
