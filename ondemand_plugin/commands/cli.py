"""The ``ondemand`` command: the add-on switch, templates, history, the monthly report, recovery of
unfinished sends, installed plugins, a new channel's project, the demo.

It works on the same database as the hosts, through the same classes the plugin uses, so what it
changes is what running hosts see. Every refusal prints ``error: <sentence> [<code>]`` on stderr
and exits with status 2.
"""

from __future__ import annotations

import csv
import importlib.metadata
import json
import logging
import os
import shlex
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import click
import pluggy
import sqlalchemy as sa

import hookspecs
from hookspecs.types import MODES, Channel, Template, TemplateStore
from ondemand_plugin import __version__, admin
from ondemand_plugin.boundary.config import (
    CONFIG_FILE_VARIABLE,
    Config,
    load_config,
    ondemand_home,
    read_config_file,
)
from ondemand_plugin.boundary.extensions import (
    ChannelOffer,
    ChannelSurvey,
    SkippedPlugin,
    choose_template_store,
    collect_channels,
    disabled_plugins,
    distribution,
    load_plugins,
    survey_channels,
)
from ondemand_plugin.channels import (
    BUILT_IN_CHANNEL_PLUGINS,
    CONFIGURABLE_CHANNELS,
    register_built_in_channels,
)
from ondemand_plugin.commands import demo, scaffold
from ondemand_plugin.commands.report import REPORT_COLUMNS, month_report
from ondemand_plugin.errors import OnDemandError
from ondemand_plugin.plugin import INSTANCE_NAME, OnDemandPlugin, channels_by_mode
from ondemand_plugin.rules.audit import COLUMNS as AUDIT_COLUMNS
from ondemand_plugin.rules.audit import audit_rows
from ondemand_plugin.rules.entitlement import Entitlement
from ondemand_plugin.rules.history import MAX_PAGE, history_page
from ondemand_plugin.rules.templates import TemplateManager, template_to_dict
from ondemand_plugin.sending.recovery import MARGIN_SECONDS, Recovery
from ondemand_plugin.stores import Backend, Store, backend_for, migrate, open_store

MODE = click.Choice(MODES)
DISTRIBUTION = "ondemand-plugin"
logger = logging.getLogger(__name__)
practice_option = click.option("--practice", required=True, metavar="ID")
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


class Refusal(click.ClickException):
    """An ``OnDemandError``, shown the way every refusal of this command is shown."""

    exit_code = 2

    def __init__(self, error: OnDemandError) -> None:
        super().__init__(error.message)
        self.error = error

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"error: {self.error.message} [{self.error.code}]", file=file, err=file is None)


class OnDemandGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except OnDemandError as error:
            raise Refusal(error) from error


def configuration(ctx: click.Context) -> Config:
    """The plugin's configuration as a host given the same file would have it: the --config
    file (else ONDEMAND_CONFIG's) over the ONDEMAND_* variables over the defaults, with
    --database-url over them all."""
    root = ctx.find_root()
    config_file: str | None = root.params["config_file"]
    settings = dict(root.obj or {})
    if root.params["database_url"]:
        settings["database_url"] = root.params["database_url"]
    where = f"the configuration file {config_file}, " if config_file else ""
    return load_config(settings, source=f"{where}--database-url or the ONDEMAND_* variables")


def open_database(ctx: click.Context) -> Store:
    """The store named by --database-url, else the configuration file, else
    ONDEMAND_DATABASE_URL, else the default file."""
    store = open_store(configuration(ctx).database_url)
    ctx.call_on_close(store.close)
    return store


def print_json(value: object) -> None:
    click.echo(json.dumps(value, indent=2))


def utc_text(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


@click.group(cls=OnDemandGroup)
@click.option(
    "--config",
    "config_file",
    metavar="FILE",
    envvar=CONFIG_FILE_VARIABLE,
    help="The plugin's configuration, a .json or .toml file of the settings a host's "
    "pm_plugin_config returns (database, channels and their settings, deadline); "
    f"default: ${CONFIG_FILE_VARIABLE}. Give each command the hosts' file, so that it works "
    "on their database, routes and template store as they do.",
)
@click.option(
    "--database-url",
    metavar="URL",
    help="sqlite:////absolute/path.db, postgresql://user@host:5432/database or "
    "mysql://user:password@host:3306/database; "
    "default: the configuration file's, else $ONDEMAND_DATABASE_URL, else "
    "$ONDEMAND_HOME/ondemand.db ($ONDEMAND_HOME defaults to ~/.local/share/ondemand).",
)
@click.version_option(__version__, prog_name="ondemand")
@click.pass_context
def cli(ctx: click.Context, config_file: str | None, database_url: str | None) -> None:
    """On-Demand Balance Notifications: the add-on switch, templates, history, recovery,
    plugins, a demo."""
    # Read and checked here, so that a bad file is refused by every command, before it acts.
    ctx.obj = read_config_file(config_file) if config_file else {}


def main() -> None:
    cli(prog_name="ondemand")


# The premium add-on (R1)


@cli.group()
def addon() -> None:
    """The premium add-on switch and its audit trail.

    Switch the add-on per practice, and see who switched it, when and why.
    """


def entitlement(ctx: click.Context) -> Entitlement:
    return Entitlement(open_database(ctx))


def switch(ctx: click.Context, practice: str, enabled: bool, by: str, reason: str | None) -> None:
    store = open_database(ctx)
    done = admin.switch(
        Entitlement(store),
        lambda: template_manager(ctx, store),
        practice,
        enabled=enabled,
        by=by,
        reason=reason,
    )
    state = "ON" if enabled else "OFF"
    record = done.record
    if done.changed and record is not None:
        click.echo(
            f"On-Demand Balance Notifications are now {state} for practice {practice} "
            f"(by {record.changed_by}, {utc_text(record.changed_at)}). Running hosts see it "
            f"within {admin.REFRESH_SECONDS:g} seconds."
        )
        return
    since = f" since {utc_text(record.changed_at)} (by {record.changed_by})" if record else ""
    click.echo(
        f"On-Demand Balance Notifications are already {state} for practice {practice}{since}: "
        "nothing recorded."
    )


def switch_command(enabled: bool, name: str, summary: str) -> click.Command:
    @addon.command(name, help=summary)
    @practice_option
    @click.option("--by", required=True, metavar="NAME", help="Who switches it (kept in the log).")
    @click.option("--reason", metavar="TEXT", help="Why (kept in the log).")
    @click.pass_context
    def command(ctx: click.Context, practice: str, by: str, reason: str | None) -> None:
        switch(ctx, practice, enabled, by, reason)

    return command


enable = switch_command(
    True, "enable", "Switch the add-on on for a practice (already on: nothing is recorded)."
)
disable = switch_command(
    False, "disable", "Switch the add-on off for a practice (already off: nothing is recorded)."
)


@addon.command()
@practice_option
@json_option
@click.pass_context
def status(ctx: click.Context, practice: str, as_json: bool) -> None:
    """Whether the practice has the add-on, and its last switch."""
    state = admin.state(entitlement(ctx), practice)
    last = state.last_change
    if as_json:
        print_json(state.to_dict())
    elif last is None:
        click.echo(f"OFF for practice {practice}: the add-on was never switched on.")
    else:
        click.echo(
            f"{'ON' if state.enabled else 'OFF'} for practice {practice} since "
            f"{utc_text(last.changed_at)} (by {last.changed_by}"
            f"{': ' + last.reason if last.reason else ''})."
        )


@addon.command()
@practice_option
@json_option
@click.pass_context
def log(ctx: click.Context, practice: str, as_json: bool) -> None:
    """Every switch of the add-on for a practice, oldest first: who, when, why."""
    changes = admin.log(entitlement(ctx), practice)
    if as_json:
        print_json([admin.change_to_dict(change) for change in changes])
    elif not changes:
        click.echo(f"The add-on was never switched for practice {practice}.")
    else:
        for change in changes:
            click.echo(
                f"{utc_text(change.changed_at)}  {'ON ' if change.enabled else 'OFF'}  "
                f"by {change.changed_by}: {change.reason or '(no reason given)'}"
            )


# Templates (R7)


@cli.group()
def templates() -> None:
    """A practice's On-Demand templates (the dialog's -MANAGE- entry)."""


def template_manager(ctx: click.Context, database: Store | None = None) -> TemplateManager:
    """The templates where the hosts' plugin keeps them: the third party's store that its start
    would choose from the installed plugins and the configuration (``template_store``), else
    the built-in one in the database (``database`` when it is open already). A choice left
    open is refused as at the plugin's start."""
    config = configuration(ctx)
    pm, _skipped = entry_point_manager(config)
    chosen = choose_template_store(pm, config.raw)
    if chosen is None:
        return TemplateManager(database or open_database(ctx))
    store, label = chosen
    ctx.call_on_close(lambda: close_template_store(store, label))
    return TemplateManager(store, label)


def close_template_store(store: TemplateStore, label: str) -> None:
    """A third party's store may hold connections, and have ``close()`` to let them go. The
    command has done its work by then: a store that fails to close is only warned of."""
    close = getattr(store, "close", None)
    if callable(close):
        try:
            close()
        except Exception as error:
            logger.warning("Template store %s did not close: %s", label, type(error).__name__)


def show_template(template: Template, as_json: bool) -> None:
    if as_json:
        print_json(template_to_dict(template))
        return
    click.echo(f"id:           {template.id}")
    click.echo(f"label:        {template.label}")
    click.echo(f"mode:         {template.mode}")
    click.echo(f"active:       {'yes' if template.active else 'no'}")
    if template.mode == "email":
        click.echo(f"sender_email: {template.sender_email or '(the practice sender)'}")
        click.echo(f"subject:      {template.subject or '(the default subject)'}")
    click.echo("body:")
    for line in template.body.splitlines():
        click.echo(f"  {line}")


def given(**options: object) -> dict[str, object]:
    """The template fields given on the command line; the others stay as they are."""
    return {name: value for name, value in options.items() if value is not None}


@templates.command("list")
@practice_option
@json_option
@click.pass_context
def list_templates(ctx: click.Context, practice: str, as_json: bool) -> None:
    """The practice's templates."""
    found = template_manager(ctx).list(practice)
    if as_json:
        print_json([template_to_dict(template) for template in found])
        return
    if not found:
        click.echo(
            f"Practice {practice} has no On-Demand templates yet. Add one with "
            f"'ondemand templates add --practice {practice} ...'."
        )
        return
    click.echo(f"{'ID':<22}  {'MODE':<5}  {'ACTIVE':<6}  LABEL")
    for template in found:
        active = "yes" if template.active else "no"
        click.echo(f"{template.id:<22}  {template.mode:<5}  {active:<6}  {template.label}")


@templates.command()
@practice_option
@click.argument("template_id")
@json_option
@click.pass_context
def show(ctx: click.Context, practice: str, template_id: str, as_json: bool) -> None:
    """One template."""
    show_template(template_manager(ctx).get(practice, template_id), as_json)


@templates.command()
@practice_option
@click.option("--label", required=True)
@click.option("--mode", required=True, type=MODE)
@click.option("--body", required=True, help="The message, with {{Field}}s.")
@click.option("--subject", help="E-mail only.")
@click.option("--sender-email", help="E-mail only; default: the practice's sender.")
@click.option("--inactive", is_flag=True, help="Save it without offering it in the dialog.")
@json_option
@click.pass_context
def add(
    ctx: click.Context,
    practice: str,
    label: str,
    mode: str,
    body: str,
    subject: str | None,
    sender_email: str | None,
    inactive: bool,
    as_json: bool,
) -> None:
    """Add a template."""
    fields = given(
        label=label,
        mode=mode,
        body=body,
        subject=subject,
        sender_email=sender_email,
        active=not inactive,
    )
    show_template(template_manager(ctx).create(practice, fields), as_json)


@templates.command()
@practice_option
@click.argument("template_id")
@click.option("--label")
@click.option("--mode", type=MODE)
@click.option("--body")
@click.option("--subject", help="E-mail only.")
@click.option("--sender-email", help="E-mail only.")
@click.option("--active/--inactive", default=None, help="Offer it in the dialog, or not.")
@json_option
@click.pass_context
def edit(
    ctx: click.Context,
    practice: str,
    template_id: str,
    label: str | None,
    mode: str | None,
    body: str | None,
    subject: str | None,
    sender_email: str | None,
    active: bool | None,
    as_json: bool,
) -> None:
    """Change a template; what is not given stays as it is."""
    fields = given(
        label=label,
        mode=mode,
        body=body,
        subject=subject,
        sender_email=sender_email,
        active=active,
    )
    if not fields:
        raise click.UsageError(
            "Say what to change: --label, --mode, --body, --subject, --sender-email, "
            "--active or --inactive."
        )
    show_template(template_manager(ctx).update(practice, template_id, fields), as_json)


@templates.command()
@practice_option
@click.argument("template_id")
@click.option("--label", help="Default: 'Copy of <label>'.")
@json_option
@click.pass_context
def copy(
    ctx: click.Context, practice: str, template_id: str, label: str | None, as_json: bool
) -> None:
    """Copy a template into a new one."""
    show_template(template_manager(ctx).copy(practice, template_id, given(label=label)), as_json)


@templates.command()
@practice_option
@click.argument("template_id")
@json_option
@click.pass_context
def delete(ctx: click.Context, practice: str, template_id: str, as_json: bool) -> None:
    """Delete a template."""
    deleted = template_manager(ctx).delete(practice, template_id)
    if as_json:
        print_json(template_to_dict(deleted))
    else:
        click.echo(f"Deleted template {deleted.id} ({deleted.label}).")


# History (R4)


@cli.group()
def db() -> None:
    """The database's schema: the revision it is at, and bringing it to this release's ahead of
    a deploy (workers also do so when they start)."""


def database_backend(ctx: click.Context) -> Backend:
    return backend_for(configuration(ctx).database_url)


def current_revisions(backend: Backend) -> tuple[str, ...]:
    engine = backend.engine()
    try:
        return migrate.current(engine)
    except sa.exc.OperationalError as error:
        raise backend.unreachable(error.orig or error) from None
    finally:
        engine.dispose()


@db.command()
@click.pass_context
def upgrade(ctx: click.Context) -> None:
    """Migrate the database to this release's schema (nothing to do if it is there)."""
    backend = database_backend(ctx)
    backend.migrate()
    click.echo(f"{backend.where}: at revision {', '.join(current_revisions(backend))}.")


@db.command()
@click.pass_context
def current(ctx: click.Context) -> None:
    """The revision the database is at, and whether this release's workers would migrate it."""
    backend = database_backend(ctx)
    at = current_revisions(backend)
    migrate.refuse_unknown(at, backend.where)
    if not at:
        state = "no schema yet: the first worker to start, or ondemand db upgrade, creates it"
    elif at == (migrate.HEAD,):
        state = "this release's schema"
    else:
        state = "behind this release: the next worker to start, or ondemand db upgrade, migrates it"
    click.echo(f"{backend.where}: revision {', '.join(at) or 'none'} ({state}).")


@db.command("history")
def db_history() -> None:
    """The schema's revisions this release knows, oldest first."""
    for revision, doc, head in migrate.history():
        click.echo(f"{revision}{' (head)' if head else ''}  {doc.strip().splitlines()[0]}")


@cli.command()
@practice_option
@click.option("--guarantor", required=True, metavar="ID")
@click.option(
    "--limit", type=click.IntRange(min=1), help="Show only the newest N entries (default: all)."
)
@json_option
@click.pass_context
def history(
    ctx: click.Context, practice: str, guarantor: str, limit: int | None, as_json: bool
) -> None:
    """A guarantor's On-Demand notifications and the patients' replies to them.

    Newest first, as the Statement/Notification History panel shows them.
    """
    recovery = Recovery(open_database(ctx), {}, configuration(ctx).deadline_seconds)
    entries = history_entries(recovery, practice, guarantor, limit)
    if as_json:
        print_json(entries)
        return
    if not entries:
        click.echo(f"No On-Demand notifications for guarantor {guarantor} in practice {practice}.")
    for entry in entries:
        occurred_at = datetime.fromisoformat(entry["occurred_at"])
        click.echo(f"{utc_text(occurred_at)}  {entry['display']['title']}")
        click.echo(f"    {entry['display']['summary']}")


def history_entries(
    recovery: Recovery, practice_id: str, guarantor_id: str, limit: int | None
) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    before = None
    while limit is None or len(entries) < limit:
        size = MAX_PAGE if limit is None else min(MAX_PAGE, limit - len(entries))
        page = history_page(recovery.store, practice_id, guarantor_id, before, size, recovery)
        entries.extend(page)
        if len(page) < size:
            break
        before = page[-1]["cursor"]
    return entries


@cli.command()
@practice_option
@click.option("--month", metavar="YYYY-MM", help="The month, in UTC (default: this month).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV: a header and one row.")
@click.pass_context
def report(
    ctx: click.Context, practice: str, month: str | None, as_json: bool, as_csv: bool
) -> None:
    """A month of a practice's On-Demand notifications, from sent to paid.

    Notifications sent, delivered, links opened, paid, the amount collected and the median
    minutes from send to payment.
    """
    if as_json and as_csv:
        raise click.UsageError("Give --json or --csv, not both.")
    figures = month_report(open_database(ctx), practice, month, datetime.now(UTC))
    if as_json:
        print_json(figures)
    elif as_csv:
        rows = csv.writer(sys.stdout, lineterminator="\n")
        rows.writerow(REPORT_COLUMNS)
        rows.writerow(["" if figures[key] is None else figures[key] for key in REPORT_COLUMNS])
    else:
        median = figures["median_minutes_to_payment"]
        click.echo(f"Practice {practice}, {figures['month']} (UTC)")
        click.echo(f"  Sent:              {figures['sent']}")
        click.echo(f"  Delivered:         {figures['delivered']}")
        click.echo(f"  Links opened:      {figures['links_opened']}")
        click.echo(f"  Paid:              {figures['paid']}")
        click.echo(f"  Amount collected:  ${Decimal(figures['amount_collected']):,.2f}")
        click.echo("  Median to payment: " + ("-" if median is None else f"{median} minutes"))


# Sends cut short


@cli.command()
@practice_option
@click.option(
    "--from",
    "start",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="From this day (UTC), inclusive; default: the beginning.",
)
@click.option(
    "--to",
    "end",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="To this day (UTC), inclusive; default: now.",
)
@json_option
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV (for a spreadsheet).")
@click.pass_context
def audit(
    ctx: click.Context,
    practice: str,
    start: datetime | None,
    end: datetime | None,
    as_json: bool,
    as_csv: bool,
) -> None:
    """Every send, add-on switch and consent change of a practice.

    Oldest first: when, what, who, the mode, the address (masked), the status and the detail.
    """
    if as_json and as_csv:
        raise click.UsageError("Choose one of --json and --csv.")
    since = start.replace(tzinfo=UTC) if start else None
    until = end.replace(tzinfo=UTC) + timedelta(days=1) if end else None
    if since and until and until <= since:
        raise click.BadParameter("--to must not be before --from.", param_hint="--to")
    rows = audit_rows(open_database(ctx), practice, since, until)
    if as_json:
        print_json(rows)
    elif as_csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(AUDIT_COLUMNS)
        writer.writerows([[row[column] for column in AUDIT_COLUMNS] for row in rows])
    elif not rows:
        click.echo(f"Nothing happened for practice {practice} in that time.")
    else:
        for row in rows:
            where = " ".join(part for part in (row["mode"], row["address"]) if part)
            click.echo(
                f"{row['at']}  {row['kind']:<7}  {row['status']:<10}  {where}  "
                f"by {row['who']}: {row['detail']}"
            )


@cli.command()
@click.option(
    "--older-than",
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    help="Only sends begun at least this long ago; default: the deadline plus "
    f"{MARGIN_SECONDS:g} seconds. 0 once every worker is stopped.",
)
@json_option
@click.pass_context
def recover(ctx: click.Context, older_than: float | None, as_json: bool) -> None:
    """Settle the sends whose worker stopped mid-delivery.

    Each is marked unknown, then the channels its send was routed to are asked whether they
    have it: sent if one has, failed if all are sure they never got it. Nothing is delivered
    again. Channels, their settings and the deadline come from the configuration file
    (--config or ONDEMAND_CONFIG): give it the hosts' file. A send routed to a channel this
    configuration lacks stays unknown, and says which.
    """
    config = configuration(ctx)
    pm, _skipped = entry_point_manager(config)
    channels = collect_channels(pm, config.raw)
    routes = channels_by_mode(config, channels)
    recovery = Recovery(open_database(ctx), routes, config.deadline_seconds, channels)
    rows = [
        {
            "notification_id": record.id,
            "practice_id": record.practice_id,
            "status": record.status,
            "detail": record.detail,
        }
        for record in recovery.run(older_than)
    ]
    if as_json:
        print_json(rows)
        return
    for row in rows:
        click.echo(f"{row['practice_id']}  {row['notification_id']}  {row['status']}")
    # A channel that says the message arrived (the outbox) settles it as delivered: sent too.
    sent = sum(row["status"] in ("sent", "delivered") for row in rows)
    failed = sum(row["status"] == "failed" for row in rows)
    click.echo(
        f"{len(rows)} unfinished send(s): {sent} sent, {failed} failed, "
        f"{len(rows) - sent - failed} still unknown."
    )


# Plugins


@cli.command()
@json_option
@click.pass_context
def plugins(ctx: click.Context, as_json: bool) -> None:
    """Installed plugins and channels, and whether each is active.

    Every plugin a host would load (name, distribution, version, hooks, status) and every
    channel they offer with the configuration (name, distribution, version, modes, status).
    A broken one is listed as "skipped: <why>"; a built-in channel without its settings as
    "not configured: <the key that enables it>".
    """
    listing = plugin_listing(configuration(ctx))
    if as_json:
        print_json(listing)
        return
    for row in listing["plugins"]:
        click.echo(
            f"{row['name']} {row['version']} ({row['distribution'] or '-'}): {row['status']}"
        )
        click.echo(f"  hooks:    {', '.join(row['hooks']) or '-'}")
        click.echo(f"  channels: {', '.join(row['channels']) or '-'}")
    click.echo("channels:")
    for row in listing["channels"]:
        click.echo(
            f"  {row['name'] or '?'} [{', '.join(row['modes']) or '-'}] from {row['plugin']} "
            f"({row['distribution'] or '-'} {row['version'] or ''}): {row['status']}"
        )


def plugin_listing(config: Config) -> dict[str, list[dict[str, Any]]]:
    """The entry-point plugins, what their ``pm_configure`` registers and the channels they
    offer with this configuration, without a database."""
    with problems_listed_not_logged():
        pm, skipped = entry_point_manager(config)
        survey = survey_channels(pm, config.raw)
    channels = [channel_row(pm, offer) for offer in survey.offers]
    offered = {offer.plugin for offer in survey.offers}
    channels += [
        unconfigured_channel_row(pm, module, channel)
        for module, channel in CONFIGURABLE_CHANNELS.items()
        if module not in offered and pm.is_registered(module)
    ]
    rows = [plugin_row(pm, plugin, survey, channels) for plugin in pm.get_plugins()]
    rows += [
        {
            "name": plugin.name,
            "distribution": plugin.distribution,
            "version": plugin.version,
            "hooks": [],
            "channels": [],
            "status": f"skipped: {plugin.problem}",
        }
        for plugin in skipped
    ]
    rows += [disabled_row(name) for name in disabled_plugins(config.raw)]
    # The per-manager instance holds the store, so it is described rather than started.
    rows.append(
        {
            "name": INSTANCE_NAME,
            "distribution": DISTRIBUTION,
            "version": __version__,
            "hooks": sorted(
                attribute
                for attribute in dir(OnDemandPlugin)
                if pm.parse_hookimpl_opts(OnDemandPlugin, attribute) is not None
            ),
            "channels": [],
            "status": "active",
        }
    )
    return {
        "plugins": sorted(rows, key=lambda row: str(row["name"])),
        "channels": sorted(channels, key=lambda row: (str(row["name"]), str(row["plugin"]))),
    }


def disabled_row(name: str) -> dict[str, Any]:
    """A plugin switched off by name: never imported, so its hooks and channels are unknown."""
    dist: tuple[str | None, str | None] = (None, None)
    for entry_point in importlib.metadata.entry_points(group=hookspecs.PROJECT_NAME):
        if entry_point.name == name and entry_point.dist is not None:
            dist = (entry_point.dist.metadata["Name"], entry_point.dist.version)
    if name in {module.__name__ for module in BUILT_IN_CHANNEL_PLUGINS}:
        dist = (DISTRIBUTION, __version__)
    status = "disabled"
    if dist[0] is None:
        status += ", but no plugin of this name is installed: check its spelling"
    return {
        "name": name,
        "distribution": dist[0],
        "version": dist[1],
        "hooks": [],
        "channels": [],
        "status": status,
    }


@contextmanager
def problems_listed_not_logged() -> Iterator[None]:
    """The listing shows every plugin's problem: warning of it as well would say it twice."""
    logger = logging.getLogger("ondemand_plugin.boundary.extensions")
    was_disabled = logger.disabled
    logger.disabled = True
    try:
        yield
    finally:
        logger.disabled = was_disabled


def not_configured(key: str) -> str:
    return f"not configured: add its settings under {key!r} in the configuration file to enable it"


def unconfigured_channel_row(
    pm: pluggy.PluginManager, module: object, channel: type[Channel]
) -> dict[str, Any]:
    return {
        "name": channel.name,
        "plugin": pm.get_name(module),
        "distribution": DISTRIBUTION,
        "version": __version__,
        "modes": sorted(channel.modes),
        "status": not_configured(channel.name),
    }


def entry_point_manager(config: Config) -> tuple[pluggy.PluginManager, list[SkippedPlugin]]:
    """The installed plugins and the built-in channels but the disabled ones, left
    unconfigured: no store opened. Also the plugins that could not be loaded."""
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    hookspecs.add_hookspecs(pm)
    skipped = load_plugins(pm, disabled=disabled_plugins(config.raw))
    register_built_in_channels(pm)
    return pm, skipped


def plugin_row(
    pm: pluggy.PluginManager,
    plugin: object,
    survey: ChannelSurvey,
    channels: list[dict[str, Any]],
) -> dict[str, Any]:
    name = pm.get_name(plugin) or repr(plugin)
    dist, version = distribution_of(pm, plugin)
    fault = survey.faults.get(plugin)
    offered = [
        row["name"] for row in channels if row["plugin"] == name and row["status"] == "active"
    ]
    return {
        "name": name,
        "distribution": dist,
        "version": version,
        "hooks": sorted(caller.name for caller in pm.get_hookcallers(plugin) or []),
        "channels": offered,
        "status": plugin_status(plugin, fault, offered),
    }


def plugin_status(plugin: object, fault: str | None, offered: list[str]) -> str:
    if fault:
        return f"skipped: {fault}"
    channel = CONFIGURABLE_CHANNELS.get(plugin)  # type: ignore[call-overload]
    if channel is not None and not offered:
        return not_configured(channel.name)
    return "active"


def channel_row(pm: pluggy.PluginManager, offer: ChannelOffer) -> dict[str, Any]:
    dist, version = distribution_of(pm, offer.plugin)
    return {
        "name": offer.name,
        "plugin": pm.get_name(offer.plugin) or repr(offer.plugin),
        "distribution": dist,
        "version": version,
        "modes": list(offer.modes),
        "status": f"skipped: {offer.problem}" if offer.problem else "active",
    }


def distribution_of(pm: pluggy.PluginManager, plugin: object) -> tuple[str | None, str | None]:
    """Its entry point's distribution; the plugin's own for the channels built into it."""
    found = distribution(pm, plugin)
    if found is not None:
        return found
    if getattr(plugin, "__name__", "").startswith("ondemand_plugin."):
        return DISTRIBUTION, __version__
    return None, None


# A channel of one's own


@cli.command("new-channel")
@click.argument("name")
@click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path),
    help="Folder to write the project into (new or empty); default: ./ondemand-NAME.",
)
def new_channel(name: str, directory: Path | None) -> None:
    """Write a starter project for a channel distributed on its own.

    NAME is the channel's name, a lowercase identifier: its configuration key and entry point.
    The project (pyproject, channel, inbound route, tests running the conformance kit, README,
    .ci/run) passes its own tests as written: pip install -e '.[test]' && pytest.
    """
    folder = directory or Path(f"ondemand-{name.replace('_', '-')}")
    written = scaffold.new_channel(name, folder)
    click.echo(f"Wrote the {name} channel's project in {folder} ({len(written)} files).")
    click.echo(f"Try it: cd {shlex.quote(str(folder))} && pip install -e '.[test]' && pytest")


# The demo


@cli.command("demo")
def run_demo() -> None:
    """Run a whole session on a demo practice.

    It works in $ONDEMAND_HOME/demo, deleted and recreated at each run, and sends to its own
    outbox only, whatever --config and --database-url say: a demo practice must never reach
    the hosts' database or text through their channels.
    """
    demo.run(sys.stdout, ondemand_home(os.environ))


# The sandbox


@cli.command("sandbox")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the sandbox's data; default: $ONDEMAND_HOME/sandbox.",
)
def run_sandbox(host: str, port: int, home: Path | None) -> None:
    """Serve the practice-management sandbox in the browser.

    A demo practice to try the plugin as office staff do: its data, the plugin's database and its
    outbox live in the --home folder, kept between runs (delete the folder to start afresh).
    """
    try:
        # Imported here: the sandbox's web stack is an extra the plugin itself does not need.
        import ondemand_sandbox
    except ImportError as error:
        missing = (error.name or "a module").partition(".")[0]
        raise click.ClickException(
            f"The sandbox needs its extra ({missing} is missing): "
            "pip install 'ondemand-plugin[sandbox]'"
        ) from None
    folder = home or ondemand_home(os.environ) / "sandbox"
    click.echo(f"Practice sandbox: open http://{host}:{port}/ in your browser (Ctrl+C stops it).")
    click.echo(f"Its data lives in {folder}. To work on it with the ondemand command, run:")
    click.echo(
        f"  export {CONFIG_FILE_VARIABLE}={shlex.quote(str(ondemand_sandbox.config_path(folder)))}"
    )
    ondemand_sandbox.serve(folder, host, port)
