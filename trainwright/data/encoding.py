"""How text files are decoded: a byte-order mark when there is one, else ``data.encoding``.

Tables (CSV, TSV) and ``.txt`` texts are UTF-8 unless they say otherwise. A file that starts with a
byte-order mark says which Unicode encoding it is (UTF-8 with a signature, as Excel writes it;
UTF-16 or UTF-32, either byte order), and is read so whatever ``data.encoding`` says. Without one,
``data.encoding`` names the encoding: ``auto`` (the default) reads UTF-8, and any codec Python
knows is accepted (``latin-1``, ``cp1252``, ``shift_jis``, ...).

Example:
    >>> file_encoding(Path("excel-export.csv"), "auto")
    'utf-16'
    >>> decode_text("café".encode("latin-1"), "latin-1")
    ('café', True)
"""

from __future__ import annotations

import bz2
import codecs
import gzip
import lzma
from pathlib import Path

# Longest first: the UTF-32 little-endian mark starts with the UTF-16 one. Each codec named here
# reads the mark and drops it.
BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_OPEN = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}


def bom_encoding(head: bytes) -> str | None:
    """The encoding a byte-order mark at the start of ``head`` names, or None."""
    return next((name for mark, name in BOMS if head.startswith(mark)), None)


def file_encoding(path: Path, configured: str = "auto") -> str:
    """How to decode the text file at ``path`` (plain, or compressed with gzip, bzip2 or xz)."""
    opener = _OPEN.get(path.suffix.lower(), open)
    try:
        with opener(path, "rb") as handle:
            head = handle.read(4)
    except (OSError, EOFError, lzma.LZMAError):  # unreadable: the reader says why
        head = b""
    return bom_encoding(head) or ("utf-8" if configured == "auto" else configured)


def decode_text(data: bytes, configured: str = "auto") -> tuple[str, bool]:
    """``data`` as text, and whether it decoded cleanly (else the bad bytes are U+FFFD)."""
    encoding = bom_encoding(data) or ("utf-8" if configured == "auto" else configured)
    try:
        return data.decode(encoding), True
    except UnicodeDecodeError:
        return data.decode(encoding, errors="replace"), False
