"""Built-in delivery channels. Each is a plugin module implementing ``ondemand_delivery_channels``,
exactly as a third party's channel would; add a new one as a module here and list it below.

A channel is offered only when its settings are in the plugin configuration, under its name
(``outbox`` always is: it is the embedded default).
"""

from __future__ import annotations

from types import ModuleType

import pluggy

from ondemand_plugin.channels import outbox, smtp, twilio_sms, twilio_voice, webhook

BUILT_IN_CHANNEL_PLUGINS: tuple[ModuleType, ...] = (outbox, smtp, twilio_sms, twilio_voice, webhook)


def register_built_in_channels(plugin_manager: pluggy.PluginManager) -> None:
    """Register each built-in channel module, unless the manager has it already."""
    for module in BUILT_IN_CHANNEL_PLUGINS:
        if not plugin_manager.is_registered(module):
            plugin_manager.register(module, name=module.__name__)
