"""Hostile and ordinary archives built in memory for the flea-market upload tests and bench/flea_checks.py."""

from __future__ import annotations

import io
import stat
import struct
import zipfile

SKILL_MD = (
    b"---\nname: churn-report\ndescription: Builds the weekly churn report from the subscriptions table and "
    b"explains the movers.\n---\n\n# Churn report\n\nQuery the subscriptions table, compare with last week and "
    b"write a short summary of who churned and why.\n"
)


def build_zip(entries: dict[str, bytes], *, method: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A ZIP of ``entries`` (name -> bytes) in order, names written as given."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as archive:
        for name, data in entries.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0)), data, compress_type=method)
    return buf.getvalue()


def with_mode(name: str, mode: int, data: bytes = b"target") -> bytes:
    """A ZIP holding SKILL.md and one entry whose Unix mode is ``mode`` (symlink, device, FIFO)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("SKILL.md", SKILL_MD)
        info = zipfile.ZipInfo(name)
        info.create_system = 3
        info.external_attr = (mode | 0o777) << 16
        archive.writestr(info, data)
    return buf.getvalue()


def central_headers(data: bytes) -> list[int]:
    """Offsets of the central-directory headers in ``data``."""
    offsets, start = [], 0
    while (found := data.find(b"PK\x01\x02", start)) >= 0:
        offsets.append(found)
        start = found + 4
    return offsets


def patched(data: bytes, offset: int, fmt: str, value: int) -> bytes:
    size = struct.calcsize(fmt)
    return data[:offset] + struct.pack(fmt, value) + data[offset + size :]


def encrypted() -> bytes:
    """A ZIP whose member is flagged encrypted (bit 0), in the local and the central header."""
    data = build_zip({"SKILL.md": SKILL_MD})
    data = patched(data, 6, "<H", 0x1)  # local header flags
    return patched(data, central_headers(data)[0] + 8, "<H", 0x1)


def hard_link() -> bytes:
    """Two central entries pointing at the same stored member (a ZIP hard link / overlapping bomb)."""
    data = build_zip({"SKILL.md": SKILL_MD, "copy.md": SKILL_MD})
    second = central_headers(data)[1]
    return patched(data, second + 42, "<I", 0)


def with_nul_name() -> bytes:
    """A member named ``a<NUL>b.md`` (written with a placeholder, then patched)."""
    data = build_zip({"SKILL.md": SKILL_MD, "a_b.md": b"x"})
    return data.replace(b"a_b.md", b"a\x00b.md")


def bomb(uncompressed_mb: int = 100) -> bytes:
    """A ZIP of ~100 KB holding ``uncompressed_mb`` MB of zeros (deflate's ~1000:1 ratio)."""
    buf = io.BytesIO()
    chunk = bytes(1024 * 1024)
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("SKILL.md", SKILL_MD)
        with archive.open("data/zeros.csv", "w", force_zip64=True) as member:
            for _ in range(uncompressed_mb):
                member.write(chunk)
    return buf.getvalue()


def lying_bomb(data: bytes) -> bytes:
    """``data`` (from :func:`bomb`) with every header claiming each member is 100 bytes."""
    out = data
    for offset in central_headers(out):
        out = patched(out, offset + 24, "<I", 100)  # central uncompressed size
    start = 0
    while (found := out.find(b"PK\x03\x04", start)) >= 0:
        out = patched(out, found + 22, "<I", 100)  # local uncompressed size
        start = found + 4
    return out


def many_entries(count: int = 10_000) -> bytes:
    entries = {"SKILL.md": SKILL_MD}
    entries.update({f"notes/n{i}.md": b"x" for i in range(count - 1)})
    return build_zip(entries, method=zipfile.ZIP_STORED)


def big_archive(total_mb: int = 20, files: int = 2_000) -> bytes:
    """A plugin-like skill ZIP of ``files`` text files, ~``total_mb`` MB compressed (random-ish text)."""
    import random

    rng = random.Random(11)
    words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9))) for _ in range(5000)]
    per_file = total_mb * 1024 * 1024 // files
    entries = {"SKILL.md": SKILL_MD}
    for i in range(files - 1):
        text = " ".join(rng.choices(words, k=per_file // 5))
        entries[f"references/part-{i:04d}.md"] = text.encode()[:per_file]
    return build_zip(entries, method=zipfile.ZIP_STORED)


ELF_HEADER = b"\x7fELF\x02\x01\x01" + bytes(57)
MACHO_FAT = b"\xca\xfe\xba\xbe" + bytes(60)
PE_HEADER = b"MZ" + bytes(58) + struct.pack("<I", 64) + b"PE\x00\x00" + bytes(16)
EXAMPLE_MODES = {"symlink": stat.S_IFLNK, "device": stat.S_IFCHR, "fifo": stat.S_IFIFO}
