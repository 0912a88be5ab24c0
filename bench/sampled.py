"""Profiles sampled from outside the tool by py-spy, which adds no cost to each call.

cProfile and pyinstrument hook every Python call, which inflates the per-row work of an
intake or a sweep several times over; py-spy reads the interpreter's stacks from another
process. ``python -m bench.sampled FILE [--top N]`` prints a collapsed profile as the share
of samples each function is on the stack for (inclusive) and on top of (self).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections import Counter
from pathlib import Path

from bench.common import UMACCT

SAMPLES_PER_SECOND = 997


def sampled_by_py_spy(collapsed: Path) -> list[str]:
    """The command prefix that runs the tool under py-spy, its stacks collapsed into a file."""
    py_spy = shutil.which("py-spy") or str(Path(UMACCT).with_name("py-spy"))
    if not Path(py_spy).exists():
        raise SystemExit("py-spy is not installed: .venv/bin/pip install py-spy")
    return [
        py_spy, "record", "--format", "raw", "--rate", str(SAMPLES_PER_SECOND),
        "--subprocesses", "--nonblocking", "--function", "--output", str(collapsed), "--", UMACCT,
    ]  # fmt: skip


def summary(collapsed: Path, top: int) -> str:
    """The functions most often on the stack, with their inclusive and self shares."""
    inclusive: Counter[str] = Counter()
    on_top: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        samples = int(count)
        total += samples
        frames = [_short(frame) for frame in stack.split(";")]
        for frame in set(frames):
            inclusive[frame] += samples
        on_top[frames[-1]] += samples
    lines = [f"{total} samples ({total / SAMPLES_PER_SECOND:.2f} s)", " incl s  self s  function"]
    for name, samples in inclusive.most_common(top):
        seconds = samples / SAMPLES_PER_SECOND
        alone = on_top[name] / SAMPLES_PER_SECOND
        lines.append(f"{seconds:7.3f} {alone:7.3f}  {name}")
    return "\n".join(lines)


def _short(frame: str) -> str:
    name, _, where = frame.partition(" (")
    return f"{name} ({where.split('/')[-1]}" if where else name


def main() -> int:
    """Print the summary of a collapsed profile."""
    parser = argparse.ArgumentParser(prog="python -m bench.sampled", description=__doc__)
    parser.add_argument("collapsed", type=Path)
    parser.add_argument("--top", type=int, default=60)
    options = parser.parse_args()
    print(summary(options.collapsed, options.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
