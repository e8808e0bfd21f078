"""Built-in delivery channels. Each is a plugin module implementing ``ondemand_delivery_channels``,
exactly as a third party's channel would; add a new one as a module here and list it below."""

from __future__ import annotations

from types import ModuleType

from ondemand_plugin.channels import outbox

BUILT_IN_CHANNEL_PLUGINS: tuple[ModuleType, ...] = (outbox,)
