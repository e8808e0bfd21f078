"""The demo practices a sandbox starts with.

Maple Street Pediatrics has the add-on, and with it the plugin's starter templates; Oak Hill
Family Medicine does not, so the account manager's page has something to switch on.

- Lily Chen has two guarantors: her mother Mei ($120.50, mobile and e-mail; two statements) and
  her father Tom ($0.00, e-mail only).
- Noah Park's guarantor Grace never had a batched statement (R6): the action is disabled until a
  statement batch runs.
- Ruth Diaz is her own guarantor, with a $35.00 credit and a home phone only.
- Sam Okafor's guarantor Ada opted out of texts.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any

from ondemand_sandbox.database import Database

PRACTICE_ID = "demo"
SETUP_BY = "Sandbox setup"
SETUP_REASON = "The demo practice starts with the add-on."


def open_database(path: Path, now: datetime) -> Database:
    """The sandbox's database, made with the demo data on the first start.

    It is built beside its place and moved in when complete, so a start that fails half way leaves
    no half-seeded database behind and the next start builds it again.
    """
    if path.exists():
        database = Database(path)
        if not database.is_empty():
            return database
        database.close()
    partial = path.with_name(path.name + ".partial")
    for leftover in (partial, *(partial.with_name(partial.name + end) for end in ("-wal", "-shm"))):
        leftover.unlink(missing_ok=True)
    building = Database(partial)
    try:
        building.create()
        add_demo_data(building, now)
    finally:
        building.close()
    os.replace(partial, path)
    return Database(path)


def add_demo_data(database: Database, now: datetime) -> None:
    database.add_practice(
        {
            "id": PRACTICE_ID,
            "name": "Maple Street Pediatrics",
            "phone": "+15035550100",
            "timezone": "America/Los_Angeles",
            "sender_email": "billing@maplestreet.example.com",
            "text_from": "+15035550101",
        }
    )
    patient = "patient"
    database.add_person(PRACTICE_ID, patient, "p-lily", ("Lily", "Chen"))
    database.add_person(PRACTICE_ID, patient, "p-noah", ("Noah", "Park"))
    database.add_person(PRACTICE_ID, patient, "p-ruth", ("Ruth", "Diaz"), {"home": "+15035550188"})
    database.add_person(PRACTICE_ID, patient, "p-sam", ("Sam", "Okafor"))
    guarantors: list[tuple[str, tuple[str, str], str, dict[str, Any]]] = [
        (
            "g-mei",
            ("Mei", "Chen"),
            "120.50",
            {
                "contacts": {"mobile": "+15035550123", "email": "mei.chen@example.com"},
                "patients": ("p-lily",),
                "statements": 2,
            },
        ),
        (
            "g-tom",
            ("Tom", "Chen"),
            "0.00",
            {
                "contacts": {"email": "tom.chen@example.com"},
                "patients": ("p-lily",),
                "statements": 1,
            },
        ),
        (
            "g-grace",
            ("Grace", "Park"),
            "80.00",
            {"contacts": {"mobile": "+15035550177"}, "patients": ("p-noah",)},
        ),
        (
            "g-ruth",
            ("Ruth", "Diaz"),
            "-35.00",
            {"contacts": {"home": "+15035550188"}, "patients": ("p-ruth",), "statements": 3},
        ),
        (
            "g-ada",
            ("Ada", "Okafor"),
            "64.25",
            {
                "contacts": {"mobile": "+15035550166", "email": "ada.okafor@example.com"},
                "patients": ("p-sam",),
                "statements": 1,
                "opt_out": ("text",),
            },
        ),
    ]
    for guarantor_id, name, balance, details in guarantors:
        database.add_guarantor(PRACTICE_ID, guarantor_id, name, balance, now=now, **details)
    database.add_practice(
        {
            "id": "oak",
            "name": "Oak Hill Family Medicine",
            "phone": "+15415550200",
            "timezone": "America/Los_Angeles",
            "sender_email": "billing@oakhill.example.com",
            "text_from": "+15415550201",
        }
    )
    database.add_person("oak", patient, "p-omar", ("Omar", "Haddad"))
    database.add_guarantor(
        "oak",
        "g-omar",
        ("Omar", "Haddad"),
        "42.00",
        contacts={"mobile": "+15415550222"},
        patients=("p-omar",),
        statements=1,
        now=now,
    )
