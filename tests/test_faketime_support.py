"""The suite's environment writes under libfaketime (see tests/faketime_support.py).

The child below, with the write installed by ``write_environment_copy_on_write`` left out,
died of a segmentation fault in 9 of 10 runs under ``faketime -f +400d`` (measured with
eight threads waiting for the GIL and 300 variables added and removed); with it, none did.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

_CHILD = textwrap.dedent(
    """
    import os, subprocess, sys, threading
    from faketime_support import write_environment_copy_on_write

    def refusals():
        found = []
        for name in ("", "A=B", "NUL\\0", "B\\0=C"):
            for write in (lambda: os.environ.__setitem__(name, "v"), lambda: os.unsetenv(name)):
                try:
                    write()
                except (ValueError, OSError) as error:
                    found.append(f"{name!r} {type(error).__name__} {error}")
                else:
                    found.append(f"{name!r} accepted")
        return found

    as_python_refuses = refusals()
    write_environment_copy_on_write()
    if refusals() != as_python_refuses:
        sys.exit(f"refused otherwise: {refusals()} instead of {as_python_refuses}")

    sys.setswitchinterval(1e-6)  # the waiting threads call pthread_cond_timedwait all the time
    stop = threading.Event()
    def wait_for_the_gil():
        while not stop.is_set():
            pass
    waiting = [threading.Thread(target=wait_for_the_gil) for _ in range(8)]
    for thread in waiting:
        thread.start()
    allocations = []
    for index in range(300):
        os.environ[f"ADDED_{index}"] = "x" * (index % 50)
        allocations.append(bytearray(index % 300))  # so that glibc has to move the array
    for index in range(300):
        del os.environ[f"ADDED_{index}"]
    stop.set()
    for thread in waiting:
        thread.join()

    os.environ["SEEN_BY_A_CHILD"] = "yes"
    os.environ.pop("HOME", None)
    shell = 'echo "${SEEN_BY_A_CHILD:-unset} ${HOME:-unset} ${ADDED_1:-unset}"'
    print(subprocess.run(["sh", "-c", shell], capture_output=True, text=True).stdout.strip())
    """
)


@pytest.mark.parametrize("shifted", [False, True], ids=["real clock", "faketime"])
def test_environment_writes_survive_threads_waiting_for_the_gil(shifted: bool) -> None:
    faketime = shutil.which("faketime")
    if shifted and faketime is None:
        pytest.skip("faketime is not installed (scripts/ensure-system-packages installs it)")
    prefix = [faketime, "-f", "+400d"] if shifted and faketime else []
    environment = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    result = subprocess.run(
        [*prefix, sys.executable, "-c", _CHILD],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "yes unset unset"
