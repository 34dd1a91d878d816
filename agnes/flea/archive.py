"""Reading an uploaded ZIP without trusting anything it says about itself.

The archive is read in memory (the upload is already capped, ``AGNES_FLEA_MAX_UPLOAD_MB``). Every
entry is checked before a byte is inflated: names (zip slip: absolute, ``..``, backslash, drive
letter, NUL), entry types (symlinks, devices and FIFOs by their Unix mode; two names for one
stored member, the ZIP form of a hard link and of the overlapping-member bomb), duplicates (also
when they differ only in case, which breaks checkouts on macOS and Windows), encryption, the
compression method, and binaries by name. Then members are inflated in 64 KB steps and the bytes
that actually come out are counted, so a header that lies about sizes cannot get past the caps; the
read stops at the first byte over a cap. Executables are refused by their magic bytes as well.
"""

from __future__ import annotations

import io
import re
import stat
import zipfile
import zlib
from collections.abc import Iterator

from agnes.flea.refusal import UploadRefused

# Entries in one archive; a plugin with more files than this is not something a person reviews.
MAX_FILES = 2_000
# Uncompressed bytes in one archive, counted while inflating (issue 11: 100 MB).
MAX_UNCOMPRESSED = 100 * 1024 * 1024
# Uncompressed:compressed ratio above which an archive is a bomb (issue 11: 100:1) ...
MAX_RATIO = 100
# ... once more than this much has come out: a 5 KB ZIP of a 600 KB CSV is ordinary, not a bomb.
RATIO_FLOOR = 1024 * 1024
# Bytes inflated per read; bounds the memory one step can take.
CHUNK = 64 * 1024
# Longest entry name accepted, in characters.
MAX_PATH = 1024
# Compression methods Python inflates with bounded output per step (bzip2 and LZMA do not, and no
# ordinary ZIP tool writes them by default).
ALLOWED_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate"}
# Files nobody can review: native code, bytecode, and archives the scan cannot look into.
DISALLOWED_SUFFIXES = (
    ".so", ".dylib", ".dll", ".exe", ".com", ".scr", ".msi", ".bin", ".o", ".a", ".node",
    ".jar", ".war", ".ear", ".class", ".pyc", ".pyo", ".apk", ".dmg", ".deb", ".rpm",
    ".zip", ".tar", ".tgz", ".gz", ".bz2", ".xz", ".7z", ".rar",
)  # fmt: skip
# Executable file formats by their first bytes: ELF; Mach-O 32/64-bit both byte orders; Mach-O
# universal ("fat") binaries, whose magic Java class files share (also refused).
EXECUTABLE_MAGIC = {
    b"\x7fELF": "a Linux executable (ELF)",
    b"\xfe\xed\xfa\xce": "a macOS executable (Mach-O)",
    b"\xfe\xed\xfa\xcf": "a macOS executable (Mach-O)",
    b"\xce\xfa\xed\xfe": "a macOS executable (Mach-O)",
    b"\xcf\xfa\xed\xfe": "a macOS executable (Mach-O)",
    b"\xca\xfe\xba\xbe": "a macOS universal executable (Mach-O) or Java class",
    b"\xca\xfe\xba\xbf": "a macOS universal executable (Mach-O)",
    b"\xbe\xba\xfe\xca": "a macOS universal executable (Mach-O)",
}
# Entries macOS Finder and Windows Explorer add to ZIPs they make; dropped, never stored.
JUNK = re.compile(r"(^|/)(__MACOSX/|\.DS_Store$|Thumbs\.db$|desktop\.ini$)")
_DRIVE = re.compile(r"^[A-Za-z]:")


def is_zip(data: bytes) -> bool:
    """True when ``data`` starts like a ZIP (a local header, or the end record of an empty one)."""
    return data[:4] in (b"PK\x03\x04", b"PK\x05\x06")


def read_zip(data: bytes) -> dict[str, bytes]:
    """Every regular file of the ZIP in ``data``, by its ``/``-separated path, junk entries left out.

    Returns:
        ``{path: bytes}``; directory entries are not included.

    Raises:
        UploadRefused: 422 ``zip_invalid``, ``zip_encrypted``, ``zip_unsafe_path``, ``zip_symlink``,
            ``zip_duplicate_path``, ``too_many_files``, ``disallowed_file``; 413
            ``zip_too_large_uncompressed``. All with ``field="file"``.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError) as exc:
        raise _refuse("zip_invalid", f"The file is not a readable ZIP archive ({_reason(exc)}).") from None
    if len(infos) > MAX_FILES:
        raise _refuse("too_many_files", f"The archive has {len(infos):,} entries; at most {MAX_FILES:,} are accepted.")
    members = list(_checked_members(infos))
    return dict(_inflate(archive, members, len(data)))


def _checked_members(infos: list[zipfile.ZipInfo]) -> Iterator[tuple[str, zipfile.ZipInfo]]:
    """(normalised path, info) of each regular file, after every name and type check."""
    seen: dict[str, str] = {}
    dirs: set[str] = set()
    offsets: dict[int, str] = {}
    files: list[tuple[str, zipfile.ZipInfo]] = []
    for info in infos:
        raw = info.orig_filename
        path = _safe_path(raw)
        if info.flag_bits & 0x1:
            raise _refuse("zip_encrypted", f"'{path}' is encrypted; upload the archive without a password.")
        mode = (info.external_attr >> 16) & 0xFFFF
        kind = stat.S_IFMT(mode)
        if stat.S_ISLNK(mode):
            raise _refuse("zip_symlink", f"'{path}' is a symbolic link; put the file itself in the archive.")
        if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
            raise _refuse("zip_symlink", f"'{path}' is a device, pipe or socket, not a file.")
        if info.header_offset in offsets:
            raise _refuse(
                "zip_symlink",
                f"'{path}' and '{offsets[info.header_offset]}' are two names for the same stored data "
                "(a hard link); include the file once.",
            )
        offsets[info.header_offset] = path
        is_dir = raw.endswith("/") or kind == stat.S_IFDIR
        key = path.casefold()
        if key in seen and not (is_dir and key in dirs and seen[key] == path):
            raise _refuse(
                "zip_duplicate_path",
                f"'{path}' appears twice in the archive"
                + ("" if seen[key] == path else f" (as '{seen[key]}', differing only in letter case)")
                + "; each path must be unique regardless of case.",
            )
        seen[key] = path
        if is_dir:
            dirs.add(key)
            continue
        if JUNK.search(path):
            continue
        if path.lower().endswith(DISALLOWED_SUFFIXES):
            raise _refuse(
                "disallowed_file",
                f"'{path}' is a binary or archive file, which cannot be reviewed; upload source files only.",
            )
        if info.compress_type not in ALLOWED_METHODS:
            raise _refuse(
                "zip_invalid",
                f"'{path}' uses an unsupported compression method ({info.compress_type}); "
                "save the archive with standard ZIP (deflate) compression.",
            )
        files.append((path, info))
    # A file and a folder of the same name ("a" and "a/b"), or folders differing only in case
    # ("A/x" and "a/y"), cannot be written to every disk as they are.
    folders: dict[str, str] = {}
    for path in seen.values():
        parent = path.rpartition("/")[0]
        while parent:
            key = parent.casefold()
            if key in seen and key not in dirs:
                raise _refuse("zip_duplicate_path", f"'{seen[key]}' is both a file and a folder in the archive.")
            if folders.setdefault(key, parent) != parent:
                raise _refuse(
                    "zip_duplicate_path",
                    f"The folders '{folders[key]}' and '{parent}' differ only in letter case; use one spelling.",
                )
            parent = parent.rpartition("/")[0]
    yield from files


def _safe_path(raw: str) -> str:
    """The entry name as a clean relative path, or a 422 ``zip_unsafe_path`` refusal."""
    shown = raw.replace("\x00", "\\0")[:200]
    if "\x00" in raw:
        problem = "contains a NUL character"
    elif "\\" in raw:
        problem = "uses backslashes (a Windows path)"
    elif raw.startswith("/"):
        problem = "is an absolute path"
    elif _DRIVE.match(raw):
        problem = "starts with a drive letter"
    elif len(raw) > MAX_PATH:
        problem = f"is longer than {MAX_PATH} characters"
    elif any(ord(ch) < 32 for ch in raw):
        problem = "contains control characters"
    else:
        parts = [part for part in raw.rstrip("/").split("/") if part not in ("", ".")]
        if ".." in parts:
            problem = "leads outside the archive (..)"
        elif not parts:
            problem = "is empty"
        else:
            return "/".join(parts)
    raise _refuse("zip_unsafe_path", f"The entry '{shown}' {problem}; it could write outside the upload folder.")


def _inflate(archive: zipfile.ZipFile, members: list[tuple[str, zipfile.ZipInfo]], compressed: int) -> Iterator:
    """Yield (path, bytes) of each member, counting what comes out against the caps."""
    ratio_cap = max(compressed * MAX_RATIO, RATIO_FLOOR)
    cap = min(MAX_UNCOMPRESSED, ratio_cap)
    total = 0
    for path, info in members:
        parts: list[bytes] = []
        try:
            with archive.open(info) as member:
                while chunk := member.read(CHUNK):
                    total += len(chunk)
                    if total > cap:
                        raise _too_large(total, compressed, over_ratio=cap == ratio_cap)
                    if not parts:
                        _check_magic(path, chunk)
                    parts.append(chunk)
        except UploadRefused:
            raise
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, NotImplementedError) as exc:
            raise _refuse("zip_invalid", f"'{path}' cannot be read from the archive ({_reason(exc)}).") from None
        yield path, b"".join(parts)


def _check_magic(path: str, head: bytes) -> None:
    what = EXECUTABLE_MAGIC.get(head[:4])
    if what is None and _is_pe(head):
        what = "a Windows executable (PE)"
    if what:
        raise _refuse("disallowed_file", f"'{path}' is {what}; executables cannot be reviewed or published.")


def _is_pe(head: bytes) -> bool:
    """An MZ header whose ``e_lfanew`` points at a ``PE\\0\\0`` signature (a text file may start with MZ)."""
    if head[:2] != b"MZ" or len(head) < 64:
        return False
    offset = int.from_bytes(head[60:64], "little")
    return head[offset : offset + 4] == b"PE\x00\x00" if offset + 4 <= len(head) else offset < 4096


def _too_large(total: int, compressed: int, *, over_ratio: bool) -> UploadRefused:
    if over_ratio and total <= MAX_UNCOMPRESSED:
        why = f"it expands more than {MAX_RATIO} times its {compressed:,}-byte size"
    else:
        why = f"it holds more than {MAX_UNCOMPRESSED // (1024 * 1024)} MB once unpacked"
    return UploadRefused(413, "zip_too_large_uncompressed", f"The archive was refused: {why}.", "file")


def _refuse(code: str, message: str) -> UploadRefused:
    return UploadRefused(422, code, message, "file")


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text[:160]
