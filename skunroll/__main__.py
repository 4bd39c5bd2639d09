"""Command line: ``python -m skunroll demo``."""

import argparse

from ._demo import run_demo


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m skunroll")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="end-to-end showcase on built-in data")
    demo.add_argument("--n-jobs", type=int, default=2, help="threads (default 2)")
    args = parser.parse_args(argv)
    if args.command == "demo":
        run_demo(n_jobs=args.n_jobs)


if __name__ == "__main__":
    main()
