"""The sandbox's own practice-management data: a small SQLite file the platform hooks answer from.

A real platform has its own database; this one holds just what the hooks need: practices,
patients, guarantors and their links, contacts, opt-outs, balances (in cents), batched statements
with the dunning count they raise, and QuickPay payments.

Opt-outs come two ways: a guarantor's own wish, kept by the office on the account
(``guarantor_account.opt_out_*``), and a recipient's STOP or START reply, which the plugin reports
through ``pm_set_opt_out`` and which marks every contact with that address (``contact_opt_out``).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE practice (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, phone TEXT NOT NULL, timezone TEXT NOT NULL,
    sender_email TEXT, text_from TEXT
);
CREATE TABLE person (
    practice_id TEXT NOT NULL, kind TEXT NOT NULL CHECK (kind IN ('patient', 'guarantor')),
    id TEXT NOT NULL, first_name TEXT NOT NULL, last_name TEXT NOT NULL,
    PRIMARY KEY (practice_id, kind, id)
);
CREATE TABLE guarantor_account (
    practice_id TEXT NOT NULL, guarantor_id TEXT NOT NULL, balance_cents INTEGER NOT NULL,
    dunning_count INTEGER NOT NULL DEFAULT 0,
    opt_out_email INTEGER NOT NULL DEFAULT 0, opt_out_text INTEGER NOT NULL DEFAULT 0,
    opt_out_voice INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (practice_id, guarantor_id)
);
CREATE TABLE responsibility (
    practice_id TEXT NOT NULL, patient_id TEXT NOT NULL, guarantor_id TEXT NOT NULL,
    position INTEGER NOT NULL, PRIMARY KEY (practice_id, patient_id, guarantor_id)
);
CREATE TABLE contact (
    practice_id TEXT NOT NULL, entity_type TEXT NOT NULL, entity_id TEXT NOT NULL,
    kind TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (practice_id, entity_type, entity_id, kind)
);
CREATE TABLE statement (
    id INTEGER PRIMARY KEY, practice_id TEXT NOT NULL, guarantor_id TEXT NOT NULL,
    issued_at TEXT NOT NULL, balance_cents INTEGER NOT NULL, dunning_count INTEGER NOT NULL
);
CREATE TABLE payment (
    id INTEGER PRIMARY KEY, practice_id TEXT NOT NULL, guarantor_id TEXT NOT NULL,
    paid_at TEXT NOT NULL, amount_cents INTEGER NOT NULL
);
CREATE INDEX statement_by_guarantor ON statement (practice_id, guarantor_id, issued_at);
CREATE INDEX payment_by_guarantor ON payment (practice_id, guarantor_id, paid_at);
"""
# Added after the first sandboxes were made: created on opening when missing.
LATER_TABLES = """
CREATE TABLE IF NOT EXISTS contact_opt_out (
    practice_id TEXT NOT NULL, mode TEXT NOT NULL, address TEXT NOT NULL,
    changed_at TEXT NOT NULL, source TEXT NOT NULL, keyword TEXT,
    PRIMARY KEY (practice_id, mode, address)
);
-- One row once the demo practice has the add-on and its templates in the plugin's database.
CREATE TABLE IF NOT EXISTS sandbox_setup (done_at TEXT NOT NULL);
"""
# The contact kinds each mode reaches (contracts/contact.json).
MODE_KINDS = {"email": ("email",), "text": ("mobile",), "voice": ("mobile", "home", "work")}


def cents(amount: Decimal | str) -> int:
    return int((Decimal(amount) * 100).to_integral_value())


def money(amount_cents: int) -> str:
    """Cents as the contracts' money string: ``"120.50"``, ``"-35.00"``."""
    return str((Decimal(amount_cents) / 100).quantize(Decimal("0.01")))


def timestamp(moment: datetime) -> str:
    """RFC 3339 UTC with a Z, as the plugin's history entries write their times."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class PaymentRefused(Exception):
    """No payment can be made: the balance is $0.00 or a credit."""


class Database:
    """One SQLite file; a connection per thread, as uvicorn serves sync routes from a pool."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    @property
    def db(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self.path, check_same_thread=False)
            connection.row_factory = sqlite3.Row
            connection.execute("PRAGMA journal_mode=WAL")
            self._local.connection = connection
            with self._lock:
                self._connections.append(connection)
        return connection

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self.db as connection:
            yield connection

    def close(self) -> None:
        with self._lock:
            for connection in self._connections:
                connection.close()
            self._connections.clear()

    def is_empty(self) -> bool:
        found = self.db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'practice'"
        ).fetchone()
        return found is None

    def create(self) -> None:
        with self.transaction() as connection:
            connection.executescript(SCHEMA)

    def add_later_tables(self) -> None:
        with self.transaction() as connection:
            connection.executescript(LATER_TABLES)

    def set_up(self) -> bool:
        return self.db.execute("SELECT 1 FROM sandbox_setup").fetchone() is not None

    def mark_set_up(self, now: datetime) -> None:
        with self.transaction() as connection:
            connection.execute("INSERT INTO sandbox_setup (done_at) VALUES (?)", (timestamp(now),))

    # Reading, in the shapes of contracts/*.json

    def practice_ids(self) -> list[str]:
        return [row["id"] for row in self.db.execute("SELECT id FROM practice ORDER BY name")]

    def practice(self, practice_id: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT * FROM practice WHERE id = ?", (practice_id,)).fetchone()
        return dict(row) if row else None

    def contacts(self, practice_id: str, entity_type: str, entity_id: str) -> list[dict[str, str]]:
        rows = self.db.execute(
            "SELECT kind, value FROM contact WHERE practice_id = ? AND entity_type = ? "
            "AND entity_id = ? ORDER BY kind",
            (practice_id, entity_type, entity_id),
        )
        return [{"kind": row["kind"], "value": row["value"]} for row in rows]

    def contact_opt_outs(
        self, practice_id: str, contacts: list[dict[str, str]]
    ) -> list[dict[str, Any]]:
        """The replies that opted these contacts out, one per contact and mode it reaches."""
        found = []
        for contact in contacts:
            for mode, kinds in MODE_KINDS.items():
                if contact["kind"] not in kinds:
                    continue
                opt_out = self.opt_out_of(practice_id, mode, contact["value"])
                if opt_out is not None:
                    found.append({**contact, **opt_out})
        return found

    def opt_out_of(self, practice_id: str, mode: str, address: str) -> dict[str, Any] | None:
        """The reply that opted ``address`` out of ``mode`` messages, or None."""
        row = self.db.execute(
            "SELECT * FROM contact_opt_out WHERE practice_id = ? AND mode = ? AND address = ?",
            (practice_id, mode, address),
        ).fetchone()
        return dict(row) if row else None

    def _person(self, practice_id: str, kind: str, person_id: str) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self.db.execute(
            "SELECT * FROM person WHERE practice_id = ? AND kind = ? AND id = ?",
            (practice_id, kind, person_id),
        ).fetchone()
        return row

    def patient(self, practice_id: str, patient_id: str) -> dict[str, Any] | None:
        row = self._person(practice_id, "patient", patient_id)
        if row is None:
            return None
        guarantor_ids = [
            link["guarantor_id"]
            for link in self.db.execute(
                "SELECT guarantor_id FROM responsibility WHERE practice_id = ? AND patient_id = ? "
                "ORDER BY position",
                (practice_id, patient_id),
            )
        ]
        return {
            "id": row["id"],
            "first_name": row["first_name"],
            "last_name": row["last_name"],
            "guarantor_ids": guarantor_ids,
            "contacts": self.contacts(practice_id, "patient", patient_id),
        }

    def guarantor(self, practice_id: str, guarantor_id: str) -> dict[str, Any] | None:
        row = self._person(practice_id, "guarantor", guarantor_id)
        account = self.db.execute(
            "SELECT * FROM guarantor_account WHERE practice_id = ? AND guarantor_id = ?",
            (practice_id, guarantor_id),
        ).fetchone()
        if row is None or account is None:
            return None
        contacts = self.contacts(practice_id, "guarantor", guarantor_id)
        replied = {opt_out["mode"] for opt_out in self.contact_opt_outs(practice_id, contacts)}
        patient_ids = [
            link["patient_id"]
            for link in self.db.execute(
                "SELECT patient_id FROM responsibility WHERE practice_id = ? AND guarantor_id = ? "
                "ORDER BY patient_id",
                (practice_id, guarantor_id),
            )
        ]
        return {
            "id": row["id"],
            "first_name": row["first_name"],
            "last_name": row["last_name"],
            "pops_balance": money(account["balance_cents"]),
            "dunning_count": account["dunning_count"],
            "batched_statement_count": self.statement_count(practice_id, guarantor_id),
            "patient_ids": patient_ids,
            "contacts": contacts,
            "opt_out": {
                mode: bool(account[f"opt_out_{mode}"]) or mode in replied for mode in MODE_KINDS
            },
        }

    def statement_count(self, practice_id: str, guarantor_id: str) -> int:
        row = self.db.execute(
            "SELECT count(*) FROM statement WHERE practice_id = ? AND guarantor_id = ?",
            (practice_id, guarantor_id),
        ).fetchone()
        return int(row[0])

    def patients(self, practice_id: str) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT id FROM person WHERE practice_id = ? AND kind = 'patient' "
            "ORDER BY last_name, first_name",
            (practice_id,),
        ).fetchall()
        return [p for row in rows if (p := self.patient(practice_id, row["id"])) is not None]

    def history(
        self, practice_id: str, guarantor_id: str, before: str | None, limit: int
    ) -> list[dict[str, Any]]:
        """Statements and payments, newest first, older than the key ``before``.

        The key is ``"<time>|<kind>:<id>"``, so that a page continues exactly where the last ended.
        """
        rows = self.db.execute(
            """
            SELECT * FROM (
                SELECT 'statement' AS kind, id, issued_at AS at, balance_cents AS cents,
                       dunning_count FROM statement WHERE practice_id = ? AND guarantor_id = ?
                UNION ALL
                SELECT 'payment', id, paid_at, amount_cents, NULL
                FROM payment WHERE practice_id = ? AND guarantor_id = ?
            ) WHERE ? IS NULL OR at || '|' || kind || ':' || printf('%012d', id) < ?
            ORDER BY at DESC, kind DESC, id DESC LIMIT ?
            """,
            (practice_id, guarantor_id, practice_id, guarantor_id, before, before, limit),
        )
        return [
            {
                "kind": row["kind"],
                "occurred_at": row["at"],
                "amount": money(row["cents"]),
                "dunning_count": row["dunning_count"],
                "key": f"{row['at']}|{row['kind']}:{row['id']:012d}",
            }
            for row in rows
        ]

    # Changing

    def save_contact(
        self, practice_id: str, entity: dict[str, Any], contact: dict[str, Any]
    ) -> bool:
        if self._person(practice_id, entity["type"], entity["id"]) is None:
            return False
        with self.transaction() as connection:
            connection.execute(
                "INSERT INTO contact VALUES (?, ?, ?, ?, ?) ON CONFLICT "
                "(practice_id, entity_type, entity_id, kind) DO UPDATE SET value = excluded.value",
                (practice_id, entity["type"], entity["id"], contact["kind"], contact["value"]),
            )
        return True

    def set_contact_opt_out(
        self, practice_id: str, mode: str, address: str, opted_out: bool, context: dict[str, Any]
    ) -> bool:
        """Mark (or clear) every contact of the practice at ``address`` as opted out of ``mode``."""
        if self.practice(practice_id) is None:
            return False
        with self.transaction() as connection:
            if opted_out:
                connection.execute(
                    "INSERT INTO contact_opt_out VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT "
                    "(practice_id, mode, address) DO UPDATE SET changed_at = excluded.changed_at, "
                    "source = excluded.source, keyword = excluded.keyword",
                    (
                        practice_id,
                        mode,
                        address,
                        context["changed_at"],
                        context["source"],
                        context["keyword"],
                    ),
                )
            else:
                connection.execute(
                    "DELETE FROM contact_opt_out WHERE practice_id = ? AND mode = ? "
                    "AND address = ?",
                    (practice_id, mode, address),
                )
        return True

    def pay(
        self, practice_id: str, guarantor_id: str, now: datetime, asked_cents: int | None = None
    ) -> int:
        """A test payment of the amount the link asked for (at most the balance; None: the whole
        balance); returns the cents paid."""
        with self.transaction() as connection:
            row = connection.execute(
                "SELECT balance_cents FROM guarantor_account WHERE practice_id = ? "
                "AND guarantor_id = ?",
                (practice_id, guarantor_id),
            ).fetchone()
            if row is None or row["balance_cents"] <= 0:
                raise PaymentRefused
            balance = int(row["balance_cents"])
            amount = balance if asked_cents is None else max(1, min(asked_cents, balance))
            # Paid in full, the account is no longer in collection.
            connection.execute(
                "UPDATE guarantor_account SET balance_cents = balance_cents - ?, "
                "dunning_count = CASE WHEN balance_cents = ? THEN 0 ELSE dunning_count END "
                "WHERE practice_id = ? AND guarantor_id = ?",
                (amount, amount, practice_id, guarantor_id),
            )
            connection.execute(
                "INSERT INTO payment (practice_id, guarantor_id, paid_at, amount_cents) "
                "VALUES (?, ?, ?, ?)",
                (practice_id, guarantor_id, timestamp(now), amount),
            )
        return amount

    def run_statement_batch(self, practice_id: str, now: datetime) -> int:
        """A statement to every guarantor who owes money, each raising the dunning count by one."""
        with self.transaction() as connection:
            owing = connection.execute(
                "SELECT guarantor_id, balance_cents, dunning_count FROM guarantor_account "
                "WHERE practice_id = ? AND balance_cents > 0 ORDER BY guarantor_id",
                (practice_id,),
            ).fetchall()
            for account in owing:
                connection.execute(
                    "UPDATE guarantor_account SET dunning_count = dunning_count + 1 "
                    "WHERE practice_id = ? AND guarantor_id = ?",
                    (practice_id, account["guarantor_id"]),
                )
                connection.execute(
                    "INSERT INTO statement (practice_id, guarantor_id, issued_at, balance_cents, "
                    "dunning_count) VALUES (?, ?, ?, ?, ?)",
                    (
                        practice_id,
                        account["guarantor_id"],
                        timestamp(now),
                        account["balance_cents"],
                        account["dunning_count"] + 1,
                    ),
                )
        return len(owing)

    # The demo data

    def add_practice(self, practice: dict[str, Any]) -> None:
        with self.transaction() as connection:
            connection.execute(
                "INSERT INTO practice VALUES (:id, :name, :phone, :timezone, :sender_email, "
                ":text_from)",
                practice,
            )

    def add_person(
        self,
        practice_id: str,
        kind: str,
        person_id: str,
        name: tuple[str, str],
        contacts: dict[str, str] | None = None,
    ) -> None:
        with self.transaction() as connection:
            connection.execute(
                "INSERT INTO person VALUES (?, ?, ?, ?, ?)", (practice_id, kind, person_id, *name)
            )
            for contact_kind, value in (contacts or {}).items():
                connection.execute(
                    "INSERT INTO contact VALUES (?, ?, ?, ?, ?)",
                    (practice_id, kind, person_id, contact_kind, value),
                )

    def add_guarantor(
        self,
        practice_id: str,
        guarantor_id: str,
        name: tuple[str, str],
        balance: str,
        *,
        contacts: dict[str, str],
        patients: tuple[str, ...],
        statements: int = 0,
        opt_out: tuple[str, ...] = (),
        now: datetime,
    ) -> None:
        self.add_person(practice_id, "guarantor", guarantor_id, name, contacts)
        with self.transaction() as connection:
            connection.execute(
                "INSERT INTO guarantor_account VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    practice_id,
                    guarantor_id,
                    cents(balance),
                    statements if cents(balance) > 0 else 0,
                    *(int(mode in opt_out) for mode in ("email", "text", "voice")),
                ),
            )
            for patient_id in patients:
                position = connection.execute(
                    "SELECT count(*) FROM responsibility WHERE practice_id = ? AND patient_id = ?",
                    (practice_id, patient_id),
                ).fetchone()[0]
                connection.execute(
                    "INSERT INTO responsibility VALUES (?, ?, ?, ?)",
                    (practice_id, patient_id, guarantor_id, position),
                )
            for number in range(statements):
                connection.execute(
                    "INSERT INTO statement (practice_id, guarantor_id, issued_at, balance_cents, "
                    "dunning_count) VALUES (?, ?, ?, ?, ?)",
                    (
                        practice_id,
                        guarantor_id,
                        timestamp(now - timedelta(days=30 * (statements - number))),
                        cents(balance),
                        number + 1,
                    ),
                )
