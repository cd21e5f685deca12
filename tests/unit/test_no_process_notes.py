"""Code and docs say what and why, never who did it or which tracker entry asked for it.

A note naming this project's tracker entry by number, or a helper by letter, means nothing
to a reader of the file; the commit history holds that. A reference to another project's
tracker, written ``owner/repo issue #N`` (for example ``Azure/azure-rest-api-specs issue
#28255``), is a source and stays.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SUFFIXES = {".py", ".md", ".yaml", ".yml", ".toml", ".lark"}
SKIPPED_DIRS = {".git", ".venv", "node_modules", "__pycache__", "build", "dist"}

# This project's tracker entries and the people working on them.
NOTE = re.compile(r"issue [0-9]+|helper [A-H]\b|\bH-[A-G]\b", re.IGNORECASE)
# Another project's tracker: owner/repo issue #N names a source.
EXTERNAL = re.compile(r"[\w.-]+/[\w.-]+ issue #?[0-9]+", re.IGNORECASE)


def _files() -> list[Path]:
    """Every file to read, without descending into the skipped directories at all (a walk
    that filters afterwards listed all of .venv and node_modules: 1-5 s)."""
    found = []
    for directory, subdirs, names in os.walk(ROOT):
        subdirs[:] = [d for d in subdirs if d not in SKIPPED_DIRS]
        for name in names:
            path = Path(directory, name)
            if path.suffix in SUFFIXES and path.is_file():
                found.append(path)
    return sorted(found)


def process_notes(text: str) -> list[str]:
    """The process notes in ``text``, external tracker references left out."""
    notes = []
    for line in text.splitlines():
        if NOTE.search(EXTERNAL.sub("", line)):
            notes.append(line.strip())
    return notes


def test_no_file_carries_a_process_note() -> None:
    found = [
        f"{path.relative_to(ROOT)}: {note}"
        for path in _files()
        for note in process_notes(path.read_text(encoding="utf-8", errors="replace"))
    ]
    assert not found, "say what and why instead:\n" + "\n".join(found)


def test_the_detector_tells_a_process_note_from_a_source() -> None:
    # Spelled in two pieces so that this file does not carry the notes it detects.
    assert process_notes("reads granted blobs too (issue" + " 10)")
    assert process_notes("as Helper" + " C's rename left it")
    assert process_notes("H" + "-B owns this module")
    assert process_notes('"""Run every benchmark of Issue' + ' 6."""')
    assert not process_notes("see Azure/azure-rest-api-specs issue #28255 for the schema")
    assert not process_notes("Azure/azure-cli issue 20232 reports the 409")
    assert not process_notes("a helper that formats the issuer URL")
