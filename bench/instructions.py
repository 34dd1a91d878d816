"""CPU instructions per request of the analysts' pages, counted by valgrind's callgrind.

Wall-clock figures from ``bench/pages.py`` move with whatever else the machine runs; instruction
counts do not (the same code, inputs and ``PYTHONHASHSEED`` give the same count within about 0.1 %).
Use this script to compare two checkouts on a busy machine:

    python bench/instructions.py                      # this checkout
    python bench/instructions.py --tree ../other      # another checkout (its bench/pages.py builds the data)

It builds the data directory of ``bench/pages.py`` (300 plugins, one analyst granted all) natively,
then runs an in-process Flask test client under ``valgrind --tool=callgrind`` once with no requests
(start-up: app factory, migrations check, first render of each page) and once per scenario with
``--requests`` more requests; the difference divided by the request count is the figure printed, in
millions of instructions per request. Needs valgrind (Debian package ``valgrind``); each run takes
about a minute of CPU, the runs go two at a time.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = {
    "baseline: /healthz, signed in": "/healthz",
    "listing page 1 (HTML, 24 cards)": "/marketplace",
    "listing JSON /api/marketplace/items": "/api/marketplace/items",
    "plugin detail page": "{detail}",
}


def _setup_paths(tree: Path, data_dir: Path) -> None:
    sys.path[:0] = [str(tree), str(tree / "bench")]
    os.environ["AGNES_DATA_DIR"] = str(data_dir)
    os.environ["AGNES_LOG_LEVEL"] = "WARNING"


def build(tree: Path, data_dir: Path, plugins: int) -> None:
    """Write the data directory with the tree's own ``bench/pages.py`` and keep the cookie beside it."""
    _setup_paths(tree, data_dir)
    import pages  # the tree's bench/pages.py

    cookie, detail = pages.build_data(data_dir, plugins)
    (data_dir / "bench-cookie.json").write_text(json.dumps([cookie, detail]))


def serve(tree: Path, data_dir: Path, path: str, requests: int) -> None:
    """Start the app, render every scenario once (warm), then ``requests`` more GETs of ``path``."""
    _setup_paths(tree, data_dir)
    from _common import bench_app  # the tree's bench/_common.py

    cookie, detail = json.loads((data_dir / "bench-cookie.json").read_text())
    app = bench_app(data_dir)
    client = app.test_client()
    client.set_cookie("agnes_session", cookie)
    for each in SCENARIOS.values():
        response = client.get(each.format(detail=detail))
        if response.status_code != 200:
            raise SystemExit(f"GET {each} answered {response.status_code}")
    target = path.format(detail=detail)
    for _ in range(requests):
        client.get(target)


def _count(tree: Path, data_dir: Path, path: str, requests: int, out_dir: Path) -> int:
    """Instructions collected by callgrind for one ``serve`` run (the real interpreter, not a shim)."""
    name = re.sub(r"\W+", "_", f"{path}_{requests}")
    log = out_dir / f"{name}.log"
    command = [
        "valgrind",
        "--tool=callgrind",
        f"--callgrind-out-file={out_dir / name}.out",
        f"--log-file={log}",
        os.path.realpath(sys.executable),
        __file__,
        "serve",
        "--tree",
        str(tree),
        "--data",
        str(data_dir),
        "--path",
        path,
        "--requests",
        str(requests),
    ]
    subprocess.run(command, check=True, env={**os.environ, "PYTHONHASHSEED": "0"})
    found = re.search(r"Collected : (\d+)", log.read_text())
    if not found:
        raise RuntimeError(f"callgrind printed no count; see {log}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", nargs="?", default="bench", choices=["bench", "build", "serve"], help=argparse.SUPPRESS)
    parser.add_argument("--tree", type=Path, default=ROOT, help="checkout to measure (default: this one)")
    parser.add_argument("--plugins", type=int, default=300)
    parser.add_argument("--requests", type=int, default=100, help="requests per scenario beyond start-up")
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    args = parser.parse_args()
    tree = args.tree.resolve()
    if args.mode == "build":
        build(tree, args.data, args.plugins)
        return
    if args.mode == "serve":
        serve(tree, args.data, args.path, args.requests)
        return
    if not shutil.which("valgrind"):
        raise SystemExit("error: valgrind is not installed (apt-get install valgrind)")
    with tempfile.TemporaryDirectory(prefix="agnes-instr-") as tmp:
        data_dir = Path(tmp) / "data"
        # Natively, first: writes the data and compiles the tree's .pyc files, so no valgrind run compiles.
        subprocess.run(
            [
                sys.executable,
                __file__,
                "build",
                "--tree",
                str(tree),
                "--data",
                str(data_dir),
                "--plugins",
                str(args.plugins),
            ],
            check=True,
        )
        runs = [("/healthz", 0)] + [(path, args.requests) for path in SCENARIOS.values()]
        with ThreadPoolExecutor(max_workers=2) as pool:
            counts = list(pool.map(lambda run: _count(tree, data_dir, run[0], run[1], Path(tmp)), runs))
    startup = counts[0]
    print(f"tree: {tree}; {args.plugins} plugins; callgrind, PYTHONHASHSEED=0")
    print(f"{'start-up (app factory + one render of each page)':<52} {startup / 1e6:10.1f} M instructions")
    for (label, _), total in zip(SCENARIOS.items(), counts[1:], strict=True):
        print(f"{label:<52} {(total - startup) / args.requests / 1e6:10.2f} M instructions per request")


if __name__ == "__main__":
    main()
