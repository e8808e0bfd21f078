"""The product's rules, one module each, free of storage and transport:

- ``entitlement``: R1, the premium add-on switched on per practice;
- ``criteria``: R2, R6 and R8, who may be sent what, by which mode, and when;
- ``templates``: R7, the practice's On-Demand templates and their fields;
- ``composing``: R5 and R9, the message a send renders (pay link, sender, subject);
- ``history``: R3 and R4, the entries staff see and what never counts as dunning;
- ``opt_outs`` and ``addresses``: whom the plugin may still reach, and at which address;
- ``statuses``: a notification's status only moves forward.

Internal: hosts and plugins use the hooks, not these modules.
"""
