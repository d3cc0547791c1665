"""Serve the sample function the way `python -m functions` serves a real one."""

from functions.runtime.serve import run
from tests.support.sample import function

run(function)
