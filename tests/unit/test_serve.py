"""How a served function keeps full garbage collections short."""

import subprocess
import sys

from tests.support.processes import ROOT

# In a process of its own: freezing is for good, and pytest's heap must stay collectable.
FREEZING = """
import gc
from functions.runtime import serve

freezer = serve._Freezer()
at_start = gc.get_freeze_count()
loaded_later = [[n] for n in range(5000)]  # what the first events import, say
gc.collect(0)
assert gc.get_freeze_count() == at_start, "a young collection freezes nothing"
gc.collect()
after_first = gc.get_freeze_count()
assert after_first >= at_start + 5000, "the first full collection's survivors are frozen"
per_event = [[n] for n in range(5000)]
gc.collect()
assert gc.get_freeze_count() == after_first, "and only the first's"
freezer.rearm()
built_later = [[n] for n in range(5000)]  # a FastAPI app, on the first API request
gc.collect()
rearmed = gc.get_freeze_count()
assert rearmed >= after_first + 5000, "once rearmed, the next full collection's survivors"
gc.collect()
assert gc.get_freeze_count() == rearmed, "and only the next one's"
print(at_start > 1000)
"""


def test_what_startup_loaded_and_what_a_full_collection_kept_after_a_build_is_frozen() -> None:
    result = subprocess.run(
        [sys.executable, "-c", FREEZING],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stdout.strip()) == (0, "True"), result.stderr
