"""The send flow: the service behind the dashboard action (open, submit), delivery through the
channels of a mode's route, and recovery of sends a crash left unsettled.

Internal: hosts and plugins use the hooks, not these modules.
"""
