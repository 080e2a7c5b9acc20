#!/usr/bin/env python3
"""Writes the README's blocks marked `<!-- readme-test: TAGS -->` into OUT_DIR, in order.

Each block N becomes N.tags (the marker's words: the host it runs on, then flags such as
`daemon`, `per-agent`, `stdout=VAR`), N.lang (the fence's language: sh or toml) and N.body.
A marker must sit on the line right before a fenced block; one that does not is an error,
so that a marker cannot silently stop testing its block.

Usage: extract.py README.md OUT_DIR
"""
import pathlib
import re
import sys

MARKER = re.compile(r"^<!-- readme-test: ([A-Za-z0-9=_ -]+) -->$")


def main() -> int:
    readme, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    lines = readme.read_text().splitlines()
    count = 0
    i = 0
    while i < len(lines):
        match = MARKER.match(lines[i])
        if not match:
            if lines[i].startswith("<!-- readme-test"):
                print(f"{readme}:{i + 1}: not a readme-test marker: {lines[i]}", file=sys.stderr)
                return 1
            i += 1
            continue
        fence = lines[i + 1] if i + 1 < len(lines) else ""
        if not fence.startswith("```") or fence == "```":
            print(f"{readme}:{i + 1}: a readme-test marker must be followed by a fenced block "
                  "with its language", file=sys.stderr)
            return 1
        end = i + 2
        while end < len(lines) and lines[end] != "```":
            end += 1
        if end == len(lines):
            print(f"{readme}:{i + 2}: the block is not closed", file=sys.stderr)
            return 1
        count += 1
        stem = out / f"{count:03d}"
        stem.with_suffix(".tags").write_text(match.group(1) + "\n")
        stem.with_suffix(".lang").write_text(fence[3:].strip() + "\n")
        stem.with_suffix(".body").write_text("\n".join(lines[i + 2:end]) + "\n")
        i = end + 1
    if count == 0:
        print(f"{readme}: no readme-test blocks", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
