"""Where the plugin meets others: typed calls to the host's platform hooks (``host``), the plain
value objects they become (``model``), the JSON Schemas every message is validated against
(``contracts``), the configuration (``config``; public as ``ondemand_plugin.config``), and the
loading and checking of extension plugins (``extensions``, ``manager``).

Internal: hosts and plugins use the hooks and the public modules, not these.
"""
