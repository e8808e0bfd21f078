from __future__ import annotations

import pluggy

PROJECT_NAME = "pm"
hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
