#!/usr/bin/env python3
"""Pastes a benchmark report between its markers in a document (every benchmark's --update-docs).

  paste_docs.py NAME DOC REPORT

replaces what lies between `<!-- NAME:begin -->` and `<!-- NAME:end -->` in DOC with REPORT's
text. Exits 1 (saying so) when DOC has no such block. Standard library only.
"""

import sys
from pathlib import Path


def main() -> int:
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    name, doc, report = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]).read_text()
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    text = doc.read_text()
    if begin not in text or end not in text:
        print(f"paste_docs: {doc} has no {begin} ... {end} block", file=sys.stderr)
        return 1
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    doc.write_text(f"{head}{begin}\n{report.rstrip()}\n{end}{tail}")
    print(f"paste_docs: updated the {name} block of {doc}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
