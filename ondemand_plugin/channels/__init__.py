"""Built-in delivery channels. Each is a plugin module implementing ``ondemand_delivery_channels``,
exactly as a third party's channel would (and ``ondemand_inbound_routes`` for the routes its
provider calls back); add a new one as a module or a package here and list it below.

A channel is offered only when its settings are in the plugin configuration, under its name
(``outbox`` always is: it is the embedded default).
"""

from __future__ import annotations

from types import ModuleType

import pluggy

from hookspecs.types import Channel
from ondemand_plugin.channels import outbox, smtp, webhook
from ondemand_plugin.channels.twilio import routes as twilio_routes
from ondemand_plugin.channels.twilio import sms as twilio_sms
from ondemand_plugin.channels.twilio import voice as twilio_voice

BUILT_IN_CHANNEL_PLUGINS: tuple[ModuleType, ...] = (
    outbox,
    smtp,
    twilio_sms,
    twilio_voice,
    twilio_routes,
    webhook,
)
# The channel each of the others offers once its settings are in the configuration under the
# channel's name: what ``ondemand plugins`` lists as not configured, and how to configure it.
CONFIGURABLE_CHANNELS: dict[ModuleType, type[Channel]] = {
    smtp: smtp.SmtpChannel,
    twilio_sms: twilio_sms.TwilioSmsChannel,
    twilio_voice: twilio_voice.TwilioVoiceChannel,
    webhook: webhook.WebhookChannel,
}


def register_built_in_channels(plugin_manager: pluggy.PluginManager) -> None:
    """Register each built-in channel module, unless the manager has it already."""
    for module in BUILT_IN_CHANNEL_PLUGINS:
        if not plugin_manager.is_registered(module):
            plugin_manager.register(module, name=module.__name__)
