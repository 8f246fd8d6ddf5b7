"""Make the README's documented edits to a new project: each `host-edit` block, as shown.

    python readme_edits.py README.md PROJECT_DIR

A block is the fenced code right after a `<!-- host-edit: PATH -->` line; it is
appended to PATH (made if absent) under PROJECT_DIR, dedented as the list
indents it. Nothing else is changed, so the host check fails the day the
README's edits stop being enough.
"""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path

EDIT = re.compile(
    r"<!-- host-edit: (\S+) -->\n(?:[ \t]*\n)?([ \t]*)```\w*\n(.*?)^\2```$", re.M | re.S
)


def edits(readme: str) -> list[tuple[str, str]]:
    return [(path, textwrap.dedent(body)) for path, _indent, body in EDIT.findall(readme)]


def main() -> None:
    readme, project = Path(sys.argv[1]).read_text(), Path(sys.argv[2])
    found = edits(readme)
    if len(found) < 4:
        raise SystemExit(f"expected the README's host edits, found {len(found)}")
    for path, code in found:
        target = project / path
        before = target.read_text() if target.exists() else ""
        target.write_text(before.rstrip("\n") + "\n\n" + code if before else code)
        sys.stdout.write(f"edited {path} ({len(code.splitlines())} lines)\n")


if __name__ == "__main__":
    main()
