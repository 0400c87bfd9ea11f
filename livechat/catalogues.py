"""Compile the translation catalogues (locale/<lang>/LC_MESSAGES/*.po -> .mo) in pure Python.

`make run`, `make test`, the Dockerfile and the test session call this, so a fresh clone needs no gettext to run in
French; gettext's own tools are only needed to extract new strings (`manage.py makemessages`, see the README).
Only .po files newer than their .mo are compiled. Fuzzy and untranslated entries are left out, as msgfmt does.

    python -m livechat.catalogues
"""
import os
import sys
from pathlib import Path

import polib

LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"


def compile_stale(locale_dir: Path = LOCALE_DIR) -> list[Path]:
    """Compile every catalogue whose .mo is missing or older than its .po; return the .mo files written."""
    written = []
    for po_path in sorted(locale_dir.glob("*/LC_MESSAGES/*.po")):
        mo_path = po_path.with_suffix(".mo")
        if mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        temporary = mo_path.with_suffix(f".mo.{os.getpid()}.tmp")  # test workers may compile at the same time
        polib.pofile(str(po_path)).save_as_mofile(str(temporary))
        temporary.replace(mo_path)  # a server reading the old file never sees half of the new one
        written.append(mo_path)
    return written


if __name__ == "__main__":
    for path in compile_stale():
        print(f"compiled {path.relative_to(LOCALE_DIR.parent)}", file=sys.stderr)
