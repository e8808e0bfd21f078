"""R1, the premium add-on: is it on for a practice, and who switched it, when and why.

Dashboards ask on every render, so the set of entitled practices is cached in memory and
re-read at most every ``REFRESH_SECONDS``: a switch made anywhere is seen within that time.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ondemand_plugin.errors import InvalidRequest, NotEntitled
from ondemand_plugin.stores.base import AddonChange, Store, utc_now

REFRESH_SECONDS = 2.0


class Entitlement:
    def __init__(self, store: Store, clock: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._clock = clock
        self._enabled: frozenset[str] = frozenset()
        self._fresh_until = float("-inf")

    def is_enabled(self, practice_id: str) -> bool:
        if self._clock() >= self._fresh_until:
            self._refresh()
        return practice_id in self._enabled

    def require(self, practice_id: str) -> None:
        if not self.is_enabled(practice_id):
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

    def _refresh(self) -> None:
        self._enabled = self._store.enabled_practices()
        self._fresh_until = self._clock() + REFRESH_SECONDS
