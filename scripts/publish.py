#!/usr/bin/env python
"""Publish a run's figures and claims report into the committed reference (docs/figures/).

    python scripts/publish.py                      # figures/ -> docs/figures/ (figures and claims)
    python scripts/publish.py --name fashion-mnist # figures/fashion-mnist/ -> docs/figures/fashion-mnist/ (claims)
    python scripts/publish.py --dry-run            # compare and list only
    python scripts/publish.py --force              # publish a changed verdict or a number beyond tolerance

A run writes figures/ (untracked); README.md shows and quotes docs/figures/ (tracked, never written
by the workflow). This is the one step that moves a run into the reference, after a rebuild the
maintainers want to publish. It first compares the fresh claims.json with the committed one within
the tolerances of adversary_dynamics.claims.compare (they cover rounding across CPUs) and refuses a
changed verdict or a number beyond tolerance without --force. Then regenerate README.md's claims
table (`python tests/test_readme.py`) and commit docs/figures/ with README.md. Run from the
repository root.
"""

from __future__ import annotations

import argparse
import sys

from adversary_dynamics.pipeline.publish import README_REMINDER, PublishRefused, publish


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--name", default="default",
                   help="the configuration's folder: default (figures/), or e.g. fashion-mnist (figures/fashion-mnist/)")
    p.add_argument("--force", action="store_true",
                   help="publish even when a verdict changed or a number moved beyond tolerance")
    p.add_argument("--dry-run", action="store_true", help="compare and list the files; copy nothing")
    args = p.parse_args(argv)
    try:
        done = publish(args.name, force=args.force, dry_run=args.dry_run)
    except PublishRefused as e:
        print(e, file=sys.stderr)
        return 1
    except (FileNotFoundError, ValueError) as e:
        print(f"publish: {e}", file=sys.stderr)
        return 2
    print(done.report)
    verb = "would copy" if args.dry_run else "copied"
    print(f"{verb} {len(done.copied)} files into {done.copied[0].parent}/" if done.copied else "nothing to copy")
    if not args.dry_run:
        print(README_REMINDER)
    return 0


if __name__ == "__main__":
    sys.exit(main())
