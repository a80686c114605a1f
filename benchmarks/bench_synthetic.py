"""How long the embedded synthetic data set takes to generate (numpy and pyarrow only).

Generation runs inside a Spark task for `--input synthetic` (and would run on the driver for
a library caller), so its time is part of every demo run. Prints each run and the median.

Example::

    python benchmarks/bench_synthetic.py --repeats 5
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from walsspark.synthetic import DEFAULT_SIZE, synthetic_ratings  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    seconds = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        table = synthetic_ratings(**DEFAULT_SIZE)
        seconds.append(time.perf_counter() - start)
    runs = " / ".join(f"{s:.3f}" for s in seconds)
    print(f"synthetic default data ({table.num_rows} ratings): {runs} s")
    print(f"median {statistics.median(seconds):.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
