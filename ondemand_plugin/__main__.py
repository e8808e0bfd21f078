"""``python -m ondemand_plugin``: the ``ondemand`` command, for hosts that run it from their own
interpreter rather than from a console script on the PATH."""

from ondemand_plugin.commands.cli import main

main()
