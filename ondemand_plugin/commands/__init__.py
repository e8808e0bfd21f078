"""The ``ondemand`` command (``cli``), its demo (``demo``, on the in-memory ``reference_host``),
and the starter project that ``ondemand new-channel`` writes (``scaffold``)."""
