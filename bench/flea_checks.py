"""Benchmark of the flea-market upload checks (no server, no database): validation and scan.

    python bench/flea_checks.py                 # 20 MB / 2,000-file archive, 100 KB bomb, 5 rounds
    python bench/flea_checks.py --rounds 3 --mb 20 --files 2000

Prints, per case, the median and worst of the rounds:

* a ~100 KB ZIP bomb (100 MB of zeros) refused by ``check_upload`` (time, and growth of the
  process's peak RSS while refusing it), and the same bomb with headers that claim 100 bytes;
* ``check_upload`` of a stored (uncompressed) 20 MB skill ZIP of 2,000 Markdown files, then
  ``scan_bundle`` over its files.

Targets (issue 11): checks of a 20 MB, 2,000-file archive <= 2 s; a bomb refused in <= 0.2 s with
<= 50 MB RSS growth. Helper 11's ``bench/flea.py`` measures upload to served end to end.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's agnes and tests

from agnes.flea.checks import UploadRefused, check_upload  # noqa: E402
from agnes.flea.scan import scan_bundle  # noqa: E402
from tests.flea import hostile  # noqa: E402

CHECKS_TARGET_S = 2.0
BOMB_TARGET_S = 0.2
BOMB_RSS_TARGET_MB = 50.0


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


def refuse(data: bytes) -> tuple[float, str]:
    started = time.perf_counter()
    try:
        check_upload(data, "bomb.zip", "skill", "bomb")
    except UploadRefused as exc:
        return time.perf_counter() - started, exc.code
    raise SystemExit("the bomb was accepted")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--mb", type=int, default=20)
    parser.add_argument("--files", type=int, default=2000)
    args = parser.parse_args()

    bomb = hostile.bomb(100)
    liar = hostile.lying_bomb(bomb)
    before = peak_rss_mb()
    timings, codes = [], set()
    for _ in range(args.rounds):
        seconds, code = refuse(bomb)
        timings.append(seconds)
        codes.add(code)
    growth = peak_rss_mb() - before
    liar_s, liar_code = refuse(liar)
    print(f"bomb: {len(bomb) / 1024:.0f} KB zip of 100 MB, refused with {sorted(codes)}")
    print(
        f"  refused in median {statistics.median(timings) * 1000:.1f} ms, worst {max(timings) * 1000:.1f} ms"
        f" (target <= {BOMB_TARGET_S * 1000:.0f} ms);"
        f" peak RSS growth {growth:.1f} MB (target <= {BOMB_RSS_TARGET_MB:.0f})"
    )
    print(f"  lying headers: refused with {liar_code} in {liar_s * 1000:.1f} ms")

    data = hostile.big_archive(args.mb, args.files)
    checks, scans = [], []
    for _ in range(args.rounds):
        started = time.perf_counter()
        bundle = check_upload(data, "big.zip", "skill", "big")
        checks.append(time.perf_counter() - started)
        started = time.perf_counter()
        findings = scan_bundle(bundle.files)
        scans.append(time.perf_counter() - started)
    print(f"archive: {len(data) / 1e6:.1f} MB, {len(bundle.files)} files, {len(findings)} findings")
    print(
        f"  check_upload median {statistics.median(checks):.3f} s, worst {max(checks):.3f} s"
        f" (target <= {CHECKS_TARGET_S} s)"
    )
    print(f"  scan_bundle  median {statistics.median(scans):.3f} s, worst {max(scans):.3f} s")
    total = [c + s for c, s in zip(checks, scans, strict=True)]
    print(f"  checks + scan median {statistics.median(total):.3f} s, worst {max(total):.3f} s")


if __name__ == "__main__":
    main()
