"""Requests that providers send to the plugin through the host (``pm_inbound_request``): every
plugin's ``InboundRoute`` (``requests``), and the ``DeliveryEvents`` their handlers report
(``events``)."""
