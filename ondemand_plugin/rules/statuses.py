"""A notification's status, and the order it may move in."""

from __future__ import annotations

# A notification's status only moves forward: a late "sent" callback must not undo "delivered".
# "unknown" (the worker died mid-delivery) ranks above "sending" so that recovery can mark it, and
# below every outcome so that a status lookup or a provider callback can settle it.
STATUS_RANK = {
    "sending": 0,
    "unknown": 1,
    "sent": 2,
    "delivered": 3,
    "undelivered": 3,
    "failed": 3,
}


def statuses_below(status: str) -> list[str]:
    """The statuses a notification may move to ``status`` from."""
    return [known for known, rank in STATUS_RANK.items() if rank < STATUS_RANK[status]]
