"""Build every data set of the catalog at its default size and print its recorded digests.

A maintainer's tool: paste the output into ``RECORDED`` in ``pyro_mm/data/checksums.py`` after a
change to a generator (which bumps its ``VERSION``). Builds go to the data cache as usual; set
``PYRO_MM_ALLOW_DATA_MISMATCH=1`` while the old digests are still recorded.

    python scripts/record_data_checksums.py                 # every data set
    python scripts/record_data_checksums.py mnist-label     # only those named (a new data set)
"""

from __future__ import annotations

import argparse
import json

from pyro_mm.data.catalog import DATASETS
from pyro_mm.data.cache import load_arrays
from pyro_mm.data.integrity import arrays_sha256


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"data sets to record (default: all of {list(DATASETS)})")
    names = parser.parse_args(argv).names or list(DATASETS)
    unknown = [n for n in names if n not in DATASETS]
    if unknown:
        parser.error(f"unknown data sets {unknown}; choose among {list(DATASETS)}")
    table = {}
    for name in names:
        cls = DATASETS[name]
        table[name] = {}
        for split in ("train", "test"):
            table[name][split] = arrays_sha256(load_arrays(cls(split).cache_path))
    print(json.dumps(table, indent=4))


if __name__ == "__main__":
    main()
