"""Requests that providers send to the plugin through the host (``pm_inbound_request``):
Twilio's status callbacks and the replies recipients text back."""
