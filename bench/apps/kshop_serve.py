"""Serve a kshop function exactly as `python -m functions` does, but on 127.0.0.1.

    python -m bench.apps.kshop_serve                           # the function $FUNCTION
    python -m bench.apps.kshop_serve bench.apps.noop_function  # a Function object

functions.runtime.serve binds 0.0.0.0; the benchmarks must stay on loopback.
Rather than copy its uvicorn settings (which would drift), this pins the host
of whatever uvicorn.Config it builds, and otherwise runs its code unchanged.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import uvicorn.config

_config_init = uvicorn.config.Config.__init__


def _loopback_init(self: uvicorn.config.Config, *args: Any, **kwargs: Any) -> None:
    _config_init(self, *args, **kwargs)
    self.host = "127.0.0.1"


uvicorn.config.Config.__init__ = _loopback_init  # type: ignore[method-assign]

from functions.runtime import serve  # noqa: E402  (after the patch, on purpose)

if __name__ == "__main__":
    if len(sys.argv) > 1:
        serve.run(importlib.import_module(sys.argv[1]).function)
    else:
        serve.main()
