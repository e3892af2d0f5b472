"""Rebuild and check the held-out loss reference text (tasks/loss/reference/persuasion.txt).

Usage:
    apt-get download r-cran-janeaustenr            # Debian's r-cran-janeaustenr_1.0.0-1_all.deb
    python scripts/reference_text.py r-cran-janeaustenr_1.0.0-1_all.deb

The text is the opening of Jane Austen's "Persuasion" (1817; public domain) as the R package
janeaustenr 1.0.0 (MIT, Julia Silge; the Project Gutenberg text, one element per line) ships
it in Debian's r-cran-janeaustenr 1.0.0-1: the novel's lines joined by "\\n", cut after the
last whole line within 131,072 bytes. R's lazy-load database (data/Rdata.rdb) is a sequence
of zlib blobs, one serialised character vector per data set; this reads it with the standard
library and checks the result against the sha256 pinned in harness.heldout. Then
`python -m harness.heldout` regenerates the loss task files from the text.
"""

from __future__ import annotations

import hashlib
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.heldout import REFERENCE, REFERENCE_BYTES  # noqa: E402

RDB = "usr/lib/R/site-library/janeaustenr/data/Rdata.rdb"
STRSXP, CHARSXP = 16, 9


def blobs(raw: bytes) -> list[bytes]:
    """The decompressed objects of an R lazy-load database: (4-byte length, zlib stream)*."""
    out, pos = [], 0
    while pos < len(raw):
        stream = zlib.decompressobj()
        out.append(stream.decompress(raw[pos + 4:]))
        pos += 4 + len(raw) - pos - 4 - len(stream.unused_data)
    return out


def strings(blob: bytes) -> list[str]:
    """A serialised (XDR, version 3) R character vector as a list of strings."""
    if blob[:2] != b"X\n":
        raise ValueError("not an XDR-serialised R object")
    pos = 2 + 12
    (encoding_length,) = struct.unpack(">i", blob[pos:pos + 4])
    pos += 4 + encoding_length
    flags, length = struct.unpack(">ii", blob[pos:pos + 8])
    if flags & 0xFF != STRSXP:
        raise ValueError("not a character vector")
    pos += 8
    lines = []
    for _ in range(length):
        flags, size = struct.unpack(">ii", blob[pos:pos + 8])
        pos += 8
        lines.append(blob[pos:pos + size].decode("utf-8") if size >= 0 else "")
        pos += max(size, 0)
    return lines


def persuasion(deb: Path) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["dpkg-deb", "-x", str(deb), tmp], check=True)
        raw = (Path(tmp) / RDB).read_bytes()
    novels = [strings(blob) for blob in blobs(raw)]
    lines = next(n for n in novels if n and n[0].strip().upper() == "PERSUASION")
    text = ""
    for line in lines:
        if len((text + line + "\n").encode("utf-8")) > REFERENCE_BYTES:
            break
        text += line + "\n"
    return text


def main() -> None:
    text = persuasion(Path(sys.argv[1]))
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    if digest != REFERENCE.sha256:
        sys.exit(f"sha256 {digest} differs from the pinned {REFERENCE.sha256}")
    REFERENCE.path.write_text(text, encoding="utf-8", newline="\n")
    print(f"{REFERENCE.path}: {len(text.encode('utf-8'))} bytes, sha256 {digest}")


if __name__ == "__main__":
    main()
