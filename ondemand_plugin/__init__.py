"""On-Demand Balance Notifications: send a patient or guarantor their balance with a pay link."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ondemand-plugin")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

SEND_ACTION_ID = "ondemand.send_balance_notification"
MANAGE_ACTION_ID = "ondemand.manage_templates"
OPT_OUTS_ACTION_ID = "ondemand.opt_outs"
PLUGIN_NAME = "ondemand"

__all__ = [
    "MANAGE_ACTION_ID",
    "OPT_OUTS_ACTION_ID",
    "PLUGIN_NAME",
    "SEND_ACTION_ID",
    "__version__",
]
