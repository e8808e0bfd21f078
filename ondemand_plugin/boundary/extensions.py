"""Loading and calling extension plugins one by one, so that a broken one is named and skipped.

A plugin whose import fails, whose hook raises or answers something that breaks the contract is
reported in a warning naming it and its distribution, and the host keeps working. With
``ONDEMAND_STRICT_PLUGINS=1`` each of these is an error instead, for CI. Plugins named in
``ONDEMAND_DISABLE_PLUGINS`` or the configuration's ``disabled_plugins`` are switched off.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
from collections.abc import Collection, Iterator, Mapping
from difflib import get_close_matches
from types import ModuleType
from typing import Any

import attrs
import pluggy

from hookspecs import PROJECT_NAME
from hookspecs.types import MODES, Channel, InboundRoute, TemplateStore
from ondemand_plugin import PLUGIN_NAME
from ondemand_plugin.errors import ConfigError, PluginError
from ondemand_plugin.inbound.requests import ServedRoute

log = logging.getLogger(__name__)

DISABLE_VARIABLE = "ONDEMAND_DISABLE_PLUGINS"
# The plugin reads the setting: it cannot switch itself off with it.
NOT_DISABLEABLE = frozenset({PLUGIN_NAME, f"{PLUGIN_NAME}.instance"})


def strict_plugins() -> bool:
    return os.environ.get("ONDEMAND_STRICT_PLUGINS", "") not in ("", "0")


def distribution(pm: pluggy.PluginManager, plugin: object) -> tuple[str, str] | None:
    """The (name, version) of the distribution whose entry point loaded ``plugin``, if one did."""
    for loaded, dist in pm.list_plugin_distinfo():
        if loaded is plugin:
            return dist.project_name, dist.version
    return None


def plugin_name(pm: pluggy.PluginManager, plugin: object) -> str:
    """The name ``plugin`` was registered under, else its class's (or module's) name.

    pluggy names a plugin registered without a name by ``str(id(plugin))``, which tells a reader
    nothing.
    """
    name = pm.get_name(plugin)
    if name is not None and name != str(id(plugin)):
        return name
    if isinstance(plugin, ModuleType):
        return plugin.__name__
    return type(plugin).__name__


def plugin_label(pm: pluggy.PluginManager, plugin: object) -> str:
    """``name`` with ``(provided by: dist version)`` when it came from an entry point."""
    name = plugin_name(pm, plugin)
    dist = distribution(pm, plugin)
    return f"{name} (provided by: {dist[0]} {dist[1]})" if dist else name


def report(pm: pluggy.PluginManager, plugin: object, problem: str) -> None:
    report_label(plugin_label(pm, plugin), problem)


def report_label(label: str, problem: str) -> None:
    message = f"On-Demand plugin {label}: {problem}"
    if strict_plugins():
        raise PluginError(message + " (ONDEMAND_STRICT_PLUGINS is set).")
    log.warning("%s; it is skipped.", message)


@attrs.frozen
class SkippedPlugin:
    """An entry point that could not be loaded."""

    name: str
    distribution: str
    version: str
    problem: str


def disabled_plugins(
    config: Mapping[str, Any] | None = None, environ: Mapping[str, str] = os.environ
) -> frozenset[str]:
    """The names of the plugins to switch off: ``ONDEMAND_DISABLE_PLUGINS`` (comma-separated)
    and the configuration's ``disabled_plugins``. Naming On-Demand itself is a ``ConfigError``."""
    names = {name.strip() for name in environ.get(DISABLE_VARIABLE, "").split(",")} - {""}
    names |= set((config or {}).get("disabled_plugins", ()))
    refused = sorted(names & NOT_DISABLEABLE)
    if refused:
        raise ConfigError(
            f"{DISABLE_VARIABLE} or disabled_plugins names {', '.join(map(repr, refused))}, the "
            "On-Demand plugin itself, which reads that setting and cannot switch itself off. "
            "Remove the name; to stop On-Demand for a practice, switch its add-on off (ondemand "
            "addon disable); to remove it from a host, uninstall ondemand-plugin.",
            field="disabled_plugins",
        )
    return frozenset(names)


def _host_setting(pm: pluggy.PluginManager, key: str) -> dict[str, Any]:
    """``{key: value}`` from the host's ``pm_plugin_config`` for On-Demand, when it answers one
    of the right form; else ``{}``. Only a hint: the plugin's start reads the configuration
    again, validates it and names the host plugin at fault if asking fails."""
    try:
        config = pm.hook.pm_plugin_config(plugin_name=PLUGIN_NAME)
    except Exception:
        return {}
    value = config.get(key) if isinstance(config, dict) else None
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return {key: value}
    return {}


def disable_plugins(pm: pluggy.PluginManager, names: Collection[str]) -> None:
    """Switch off the plugins of these names: pluggy unregisters one registered already and
    refuses to register one of the names from then on (``set_blocked``).

    On-Demand switches plugins off from its own ``pm_configure``, and pluggy's historic call
    runs over a copy of the implementations taken when it began: unregistering alone would
    still let a disabled plugin's ``pm_configure`` run later in that same call. So each of its
    implementations is emptied first, as pluggy calls the implementation's ``function``.
    """
    for name in names:
        plugin = pm.get_plugin(name)
        if plugin is not None:
            for caller in pm.get_hookcallers(plugin) or []:
                for impl in caller.get_hookimpls():
                    if impl.plugin is plugin:
                        impl.function = _switched_off  # type: ignore[misc]  # Final in pluggy
        pm.set_blocked(name)


def _switched_off(*args: object) -> None:
    """A disabled plugin's hook: answers nothing, as a plugin without the hook would."""
    return None


def known_plugin_names(pm: pluggy.PluginManager, group: str = PROJECT_NAME) -> set[str]:
    """The names of the installed entry points and of the plugins registered now."""
    installed = {entry_point.name for entry_point in importlib.metadata.entry_points(group=group)}
    return installed | {name for name, plugin in pm.list_name_plugin() if plugin is not None}


def warn_of_unknown_names(names: Collection[str]) -> None:
    """A name no plugin has is most likely misspelled, and switches nothing off."""
    for name in sorted(names):
        log.warning(
            "%s or disabled_plugins names %r, but no plugin of that name is installed or "
            "registered, so nothing is switched off by it: check its spelling (ondemand "
            "plugins lists the names).",
            DISABLE_VARIABLE,
            name,
        )


def load_plugins(
    pm: pluggy.PluginManager,
    group: str = PROJECT_NAME,
    disabled: Collection[str] | None = None,
) -> list[SkippedPlugin]:
    """``pm.load_setuptools_entrypoints(group)``, one entry point at a time.

    pluggy stops at the first plugin whose import fails, and the host with it; here that plugin
    is named with its distribution and skipped (an error under ``ONDEMAND_STRICT_PLUGINS=1``),
    and the others load. Returns the skipped ones. The ``disabled`` plugins are not imported
    at all: by default those of ``ONDEMAND_DISABLE_PLUGINS`` and of the ``disabled_plugins``
    that the host registered already answers in ``pm_plugin_config``.
    """
    if disabled is None:
        disabled = disabled_plugins(_host_setting(pm, "disabled_plugins"))
    disable_plugins(pm, disabled)
    skipped = []
    for entry_point in importlib.metadata.entry_points(group=group):
        if pm.has_plugin(entry_point.name) or pm.is_blocked(entry_point.name):
            continue
        try:
            pm.load_setuptools_entrypoints(group, name=entry_point.name)
        except Exception as error:
            dist = entry_point.dist
            name, version = (dist.metadata["Name"], dist.version) if dist else ("unknown", "?")
            problem = f"importing it failed: {type(error).__name__}: {error}"
            report_label(f"{entry_point.name} (provided by: {name} {version})", problem)
            skipped.append(SkippedPlugin(entry_point.name, name, version, problem))
    return skipped


def call_each(
    pm: pluggy.PluginManager,
    hook_name: str,
    kwargs: Mapping[str, Any],
    faults: dict[object, str] | None = None,
) -> Iterator[tuple[object, Any]]:
    """Each implementation's answer, in pluggy's order; a raising one is reported and skipped
    (and its problem kept in ``faults``, when given)."""
    for impl in reversed(getattr(pm.hook, hook_name).get_hookimpls()):
        try:
            answer = impl.function(*(kwargs[name] for name in impl.argnames))
        except Exception as error:
            problem = f"its {hook_name} hook raised {type(error).__name__}: {error}"
            report(pm, impl.plugin, problem)
            if faults is not None:
                faults[impl.plugin] = problem
            continue
        yield impl.plugin, answer


def check_hooks(pm: pluggy.PluginManager) -> None:
    """pluggy's ``check_pending()``: a hook implementation that no specification declares (a
    misspelled name) would never be called, so it is an error naming its plugin."""
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as error:
        unknown = sorted(
            name
            for name, caller in vars(pm.hook).items()
            if not name.startswith("_")
            and not caller.has_spec()
            and any(impl.plugin is error.plugin for impl in caller.get_hookimpls())
        )
        known = [name for name, caller in vars(pm.hook).items() if caller.has_spec()]
        hints = [
            f"{name} (did you mean {match[0]}?)"
            if (match := get_close_matches(name, known, 1))
            else name
            for name in unknown
        ]
        raise PluginError(
            f"On-Demand plugin {plugin_label(pm, error.plugin)} implements "
            f"{', '.join(hints)}, which no hook specification declares, so it would never be "
            "called. Correct the name (see hookspecs), or mark the implementation "
            "optionalhook=True."
        ) from error


class _Contained:
    """An observer's hook function that reports what it raises instead of raising it.

    pluggy stops a hook call at the first implementation that raises; observers must not stop
    one another, and the call must stay pluggy's own, so that wrappers and hook-call monitoring
    see it. So the observers' functions, not the call, are guarded.
    """

    def __init__(self, pm: pluggy.PluginManager, hook_name: str, impl: pluggy.HookImpl) -> None:
        self.pm = pm
        self.hook_name = hook_name
        self.plugin = impl.plugin
        self.function = impl.function

    def __call__(self, *args: object) -> object:
        try:
            return self.function(*args)
        except Exception as error:
            # Observers are given the result, addresses included: only the type is logged.
            report(self.pm, self.plugin, f"its {self.hook_name} hook raised {type(error).__name__}")
            return None


def notify_observers(pm: pluggy.PluginManager, hook_name: str, kwargs: Mapping[str, Any]) -> None:
    """Call an observers' hook through pluggy, each observer contained (``_Contained``); a
    wrapper that raises is reported, naming the wrappers."""
    caller = getattr(pm.hook, hook_name)
    impls = caller.get_hookimpls()
    for impl in impls:
        if not (impl.wrapper or impl.hookwrapper or isinstance(impl.function, _Contained)):
            impl.function = _Contained(pm, hook_name, impl)
    try:
        caller(**kwargs)
    except PluginError:
        raise
    except Exception as error:
        wrappers = [plugin_label(pm, i.plugin) for i in impls if i.wrapper or i.hookwrapper]
        report_label(
            " or ".join(wrappers) or "?", f"a {hook_name} wrapper raised {type(error).__name__}"
        )


TEMPLATE_STORE_METHODS = ("list_templates", "get_template", "save_template", "delete_template")
BUILT_IN_TEMPLATE_STORE = "ondemand"


def choose_template_store(
    pm: pluggy.PluginManager, config: Mapping[str, Any]
) -> tuple[TemplateStore, str] | None:
    """The third party's template store to use, with its label; None keeps the built-in one.

    Each ``ondemand_template_store`` implementation is asked on its own, so that a broken one
    is named and skipped. Of several valid stores, the configuration's ``template_store`` (a
    plugin's name, or ``"ondemand"`` for the built-in store) picks one: pluggy's order is no
    choice anyone made.
    """
    offers: dict[str, tuple[TemplateStore, str]] = {}
    for plugin, answer in call_each(pm, "ondemand_template_store", {"config": config}):
        if answer is None:
            continue
        missing = [
            name for name in TEMPLATE_STORE_METHODS if not callable(getattr(answer, name, None))
        ]
        if missing:
            report(pm, plugin, f"its template store has no {', '.join(missing)} method")
            continue
        offers[plugin_name(pm, plugin)] = (answer, plugin_label(pm, plugin))
    chosen = config.get("template_store")
    if chosen == BUILT_IN_TEMPLATE_STORE:
        return None
    if chosen is not None:
        if chosen not in offers:
            raise ConfigError(
                f"template_store names {chosen!r}, but no plugin of that name offers a valid "
                f"template store (offered: {', '.join(sorted(offers)) or 'none'}). Install it, or "
                f"set template_store to one offered or to {BUILT_IN_TEMPLATE_STORE!r} for the "
                "built-in store.",
                field="template_store",
            )
        return offers[chosen]
    if len(offers) > 1:
        labels = " and ".join(label for _, label in offers.values())
        raise ConfigError(
            f"Several plugins offer a template store: {labels}. Set template_store in the "
            "On-Demand configuration to the name of the one to use "
            f"({', '.join(repr(name) for name in offers)}, or {BUILT_IN_TEMPLATE_STORE!r} for "
            "the built-in store).",
            field="template_store",
        )
    return next(iter(offers.values()), None)


@attrs.frozen
class ChannelOffer:
    """A channel a plugin offered: active (``problem`` None) or skipped, and why."""

    plugin: object
    name: str | None
    modes: tuple[str, ...]
    channel: Channel | None
    problem: str | None


@attrs.frozen
class ChannelSurvey:
    offers: list[ChannelOffer]
    faults: dict[object, str]  # plugins whose whole answer was skipped, and why

    def active(self) -> dict[str, ChannelOffer]:
        return {
            offer.name: offer
            for offer in self.offers
            if offer.problem is None and offer.name is not None
        }


def collect_channels(pm: pluggy.PluginManager, config: Mapping[str, Any]) -> dict[str, Channel]:
    """Every valid channel, by name; a channel whose name is taken already is skipped."""
    return {
        name: offer.channel
        for name, offer in survey_channels(pm, config).active().items()
        if offer.channel is not None
    }


def survey_channels(pm: pluggy.PluginManager, config: Mapping[str, Any]) -> ChannelSurvey:
    """Every channel offered, active or skipped; each problem is reported as it is found."""
    offers: list[ChannelOffer] = []
    owners: dict[str, object] = {}
    faults: dict[object, str] = {}
    for plugin, answer in call_each(pm, "ondemand_delivery_channels", {"config": config}, faults):
        if not isinstance(answer, list | tuple):
            faults[plugin] = "ondemand_delivery_channels must return a list of channels"
            report(pm, plugin, faults[plugin])
            continue
        for channel in answer:
            offer = _offer(pm, plugin, channel, owners)
            if offer.problem is not None:
                report(pm, plugin, offer.problem)
            elif offer.name is not None:
                owners[offer.name] = plugin
            offers.append(offer)
    return ChannelSurvey(offers, faults)


def _offer(
    pm: pluggy.PluginManager, plugin: object, channel: Any, owners: dict[str, object]
) -> ChannelOffer:
    name = getattr(channel, "name", None)
    modes = getattr(channel, "modes", None)
    problem = channel_problem(channel)
    if problem is None and name in owners:
        problem = f"its channel {name!r} is already provided by {plugin_label(pm, owners[name])}"
    return ChannelOffer(
        plugin=plugin,
        name=name if isinstance(name, str) and name else None,
        modes=tuple(sorted(map(str, modes))) if isinstance(modes, frozenset | set) else (),
        channel=channel if problem is None else None,
        problem=problem,
    )


def channel_problem(channel: object) -> str | None:
    name = getattr(channel, "name", None)
    if not isinstance(name, str) or not name:
        return f"{channel!r} has no name"
    modes = getattr(channel, "modes", None)
    if not isinstance(modes, frozenset | set) or not modes or not modes <= set(MODES):
        return f"channel {name!r} must declare modes, a set drawn from {', '.join(MODES)}"
    if not callable(getattr(channel, "deliver", None)):
        return f"channel {name!r} has no deliver(message) method"
    return None


def collect_routes(pm: pluggy.PluginManager, config: Mapping[str, Any]) -> dict[str, ServedRoute]:
    """Every plugin's inbound routes, by path. A plugin whose answer is not a list of
    ``InboundRoute`` is reported and skipped; two routes with one path are an error at start,
    naming both plugins: which of them would answer is no choice anyone made."""
    routes: dict[str, ServedRoute] = {}
    for plugin, answer in call_each(pm, "ondemand_inbound_routes", {"config": config}):
        if not isinstance(answer, list | tuple) or not all(
            isinstance(route, InboundRoute) for route in answer
        ):
            report(pm, plugin, "ondemand_inbound_routes must return a list of InboundRoute")
            continue
        label = plugin_label(pm, plugin)
        for route in answer:
            taken = routes.get(route.path)
            if taken is not None:
                raise ConfigError(
                    f"Two plugins serve the inbound route {route.path!r}: {taken.label} and "
                    f"{label}. Uninstall or switch off one of them, or give one another path.",
                    field="ondemand_inbound_routes",
                )
            routes[route.path] = ServedRoute(route, label)
    return routes
