"""Opening a bundle from anyone: a zip read with bounds, checked name by name and byte by byte.

Nothing is extracted before the whole archive has been checked to be well formed (names,
kinds, sizes), and every extracted file is compared with its sha256 in ``SHA256SUMS``
before anything else reads it. Nothing is unpickled: the bundle holds model files that
their runtimes parse, JSON and text.
"""
from __future__ import annotations

import hashlib
import re
import stat
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError
from ..export.metadata import METADATA_FILE

MANIFEST = "SHA256SUMS"
# Bounds: a Nano/Tiny bundle is a few MB; these leave room for large variants while
# keeping a hostile archive from filling the disk or memory.
MAX_BUNDLE_BYTES = 1 << 30
MAX_ENTRIES = 64
MAX_ENTRY_BYTES = 512 << 20
MAX_TOTAL_BYTES = 1 << 30
MAX_TEXT_BYTES = 16 << 20  # metadata.json, labels.txt, SHA256SUMS, the card: read into memory
LABELS = "labels.txt"
CARD = "MODEL_CARD.md"
TEXT_ENTRIES = (METADATA_FILE, LABELS, CARD, MANIFEST)  # each read whole: bounded by MAX_TEXT_BYTES
_SAFE_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
_MANIFEST_LINE = re.compile(r"^([0-9a-f]{64}) [ *](.+)$")
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, NotImplementedError, struct.error)
_REPACK = "download it again or rebuild it with 'yolox-edge package'"
_PACKAGE = "'yolox-edge package EXPORT --target ncnn --out NAME.zip'"
_TORCH_PICKLE = re.compile(r"^[^/]+/data\.pkl$")  # torch.save's zip: ARCHIVE/data.pkl beside ARCHIVE/data/N


@dataclass
class Entry:
    """One verified file of a bundle."""

    name: str
    size: int
    sha256: str


def _damaged(bundle: Path, what: str) -> UserError:
    return UserError(f"{bundle}: {what}; {_REPACK}")


def check_entry_name(bundle: Path, name: str) -> None:
    """Refuse names that could write outside the destination (zip slip) or confuse a file system."""
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        raise UserError(f"{bundle}: entry {name!r} has an absolute path (zip slip); refusing to open this bundle")
    parts = name.split("/")
    if "\\" in name or any(p in ("..", ".") for p in parts):
        raise UserError(f"{bundle}: entry {name!r} climbs out of the bundle with '..' (zip slip); "
                        "refusing to open this bundle")
    if len(parts) > 1:  # flat by design: no folder/file clashes, nothing to create but files
        raise UserError(f"{bundle}: entry {name!r} is in a folder; bundles hold files only ({_REPACK})")
    if not _SAFE_PART.match(name):
        raise UserError(f"{bundle}: entry {name!r} has an unsafe file name; {_REPACK}")


def _open_zip(bundle: Path) -> zipfile.ZipFile:
    if bundle.is_dir():  # "not found" would send the user looking for a path that is there
        raise UserError(f"{bundle}: is a folder, not a bundle; give the .zip file 'yolox-edge package' wrote")
    if not bundle.is_file():
        raise UserError(f"{bundle}: bundle not found; check the path")
    if bundle.stat().st_size > MAX_BUNDLE_BYTES:
        raise UserError(f"{bundle}: {bundle.stat().st_size} bytes is over the {MAX_BUNDLE_BYTES} byte bundle limit")
    try:
        with open(bundle, "rb") as f:
            head = f.read(4)
    except OSError as e:
        raise UserError(f"{bundle}: cannot be read ({e.strerror or e})") from None
    if not head.startswith(b"PK"):  # an image or a model given for the bundle: 'download it again' misled
        raise UserError(f"{bundle}: not a zip file, so not a bundle; give the .zip file 'yolox-edge package' wrote")
    try:
        return zipfile.ZipFile(bundle)
    except _ZIP_ERRORS as e:
        raise _damaged(bundle, f"not a readable zip, truncated or damaged ({e})") from None


def not_a_bundle(infos: list[zipfile.ZipInfo]) -> str | None:
    """What a zip is when its listing (the central directory alone) shows it is plainly not a
    bundle: no SHA256SUMS or metadata.json in it, at any depth; None when it may be one (its
    other checks then say what is wrong)."""
    names = [i.filename for i in infos]
    if any(n.rsplit("/", 1)[-1] in (MANIFEST, METADATA_FILE) for n in names):
        return None
    if any(_TORCH_PICKLE.match(n) for n in names):
        return "a torch checkpoint (zip)"
    return "an empty zip" if not names else f"a zip without {MANIFEST} or {METADATA_FILE}"


def check_listing(bundle: Path, zf: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    """Names, kinds and sizes of every entry, before a single byte is extracted."""
    infos = zf.infolist()
    what = not_a_bundle(infos)  # before the bounds: a checkpoint was '468 entries is over the 64 entry limit'
    if what is not None:
        fix = (f"export it ('yolox-edge export {bundle} --format ncnn --out EXPORT') and package that with {_PACKAGE}"
               if "torch" in what else f"package an export with {_PACKAGE}")
        raise UserError(f"{bundle}: {what}, not a yolox_edge bundle; {fix}")
    if len(infos) > MAX_ENTRIES:
        raise UserError(f"{bundle}: {len(infos)} entries is over the {MAX_ENTRIES} entry limit; not a yolox_edge bundle")
    seen: dict[str, str] = {}  # casefolded name -> the entry's name
    total = 0
    for info in infos:
        check_entry_name(bundle, info.filename)
        other = seen.get(info.filename.casefold())
        if other == info.filename:
            raise UserError(f"{bundle}: entry {info.filename!r} appears twice; {_REPACK}")
        if other is not None:
            # extracted on macOS or Windows, the second would be the first file (a FileExistsError traceback)
            raise UserError(f"{bundle}: entries {other!r} and {info.filename!r} differ only in case, one file on "
                            f"macOS and Windows; {_REPACK}")
        seen[info.filename.casefold()] = info.filename
        kind = stat.S_IFMT(info.external_attr >> 16)  # 0 when the writer recorded no file type
        if info.create_system == 3 and kind and kind != stat.S_IFREG:
            raise UserError(f"{bundle}: entry {info.filename!r} is a link or special file; refusing to open this bundle")
        if info.flag_bits & 0x1:
            raise UserError(f"{bundle}: entry {info.filename!r} is encrypted; bundles are never encrypted ({_REPACK})")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise UserError(f"{bundle}: entry {info.filename!r} uses an unsupported compression; {_REPACK}")
        limit = MAX_TEXT_BYTES if info.filename in TEXT_ENTRIES else MAX_ENTRY_BYTES
        if info.file_size > limit:
            # a text entry is read whole: 64 MiB of newlines in labels.txt (a 0.6 MB zip) took 700 MiB
            raise UserError(f"{bundle}: entry {info.filename!r} is {info.file_size} bytes, over the "
                            f"{limit} byte limit; refusing to extract it")
        total += info.file_size
    if total > MAX_TOTAL_BYTES:
        raise UserError(f"{bundle}: {total} bytes uncompressed is over the {MAX_TOTAL_BYTES} byte limit")
    return infos


def _copy_entry(bundle: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo, dest: Path | None) -> tuple[str, bytes | None]:
    """Stream one entry (to ``dest`` when given): sha256, and the bytes when ``dest`` is None."""
    h = hashlib.sha256()
    chunks: list[bytes] = []
    n = 0
    out = open(dest, "xb") if dest is not None else None
    try:
        with zf.open(info) as src:
            while True:
                chunk = src.read(1 << 20)
                if not chunk:
                    break
                n += len(chunk)
                if n > info.file_size:  # zipfile stops at the declared size; keep the bound explicit
                    raise _damaged(bundle, f"entry {info.filename!r} is longer than it declares")
                h.update(chunk)
                if out is None:
                    chunks.append(chunk)
                else:
                    _write(out, chunk, dest)
    except _ZIP_ERRORS as e:  # OSError here is the archive's (a bad offset seeks before the start)
        raise _damaged(bundle, f"entry {info.filename!r} is damaged ({type(e).__name__}: {e})") from None
    finally:
        if out is not None:
            out.close()
    if n != info.file_size:
        raise _damaged(bundle, f"entry {info.filename!r} is truncated")
    return h.hexdigest(), (b"".join(chunks) if out is None else None)


def _write(out, chunk: bytes, dest: Path) -> None:
    try:
        out.write(chunk)
    except OSError as e:  # the destination's problem (disk full), not the bundle's
        raise UserError(f"{dest}: cannot write ({e.strerror}); free some space or choose another folder") from None


def parse_manifest(bundle: Path, text: str) -> dict[str, str]:
    """``SHA256SUMS`` (sha256sum's format) -> {name: sha256}."""
    out: dict[str, str] = {}
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        m = _MANIFEST_LINE.match(line)
        if not m:
            raise _damaged(bundle, f"{MANIFEST} line {i} is not '<sha256>  <file>'")
        digest, name = m.groups()
        check_entry_name(bundle, name)
        if name in out:
            raise _damaged(bundle, f"{MANIFEST} lists {name!r} twice")
        out[name] = digest
    return out


def read_text_entry(bundle: Path, zf: zipfile.ZipFile, name: str) -> str:
    """A small text entry, bounded and decoded as UTF-8."""
    try:
        info = zf.getinfo(name)
    except KeyError:
        raise UserError(f"{bundle}: has no {name}; not a yolox_edge bundle ({_REPACK})") from None
    if info.file_size > MAX_TEXT_BYTES:
        raise _damaged(bundle, f"{name} is {info.file_size} bytes, too large for a text file")
    _, data = _copy_entry(bundle, zf, info, None)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise _damaged(bundle, f"{name} is not UTF-8 text") from None


def safe_extract(bundle: str | Path, dest: str | Path) -> list[Entry]:
    """Check ``bundle`` completely and extract it into the empty folder ``dest``.

    Every entry is listed in SHA256SUMS with the sha256 its bytes have, and SHA256SUMS
    lists nothing that is not there; otherwise a UserError names the problem. On an error
    ``dest`` may hold partial files: callers extract into a private temporary folder.
    """
    bundle, dest = Path(bundle), Path(dest)
    with _open_zip(bundle) as zf:
        infos = check_listing(bundle, zf)
        manifest = parse_manifest(bundle, read_text_entry(bundle, zf, MANIFEST))
        names = {i.filename for i in infos} - {MANIFEST}
        extra, missing = sorted(names - set(manifest)), sorted(set(manifest) - names)
        if extra:
            raise _damaged(bundle, f"{extra[0]} is not listed in {MANIFEST} (added after packaging?)")
        if missing:
            raise _damaged(bundle, f"{missing[0]} is listed in {MANIFEST} but missing")
        entries = []
        for info in infos:
            if info.filename == MANIFEST:
                continue
            target = dest / info.filename
            # Defence in depth: the name checks above already make this impossible.
            if target.resolve().parent != dest.resolve():
                raise UserError(f"{bundle}: entry {info.filename!r} would land outside {dest} (zip slip)")
            digest, _ = _copy_entry(bundle, zf, info, target)
            if digest != manifest[info.filename]:
                raise _damaged(bundle, f"{info.filename} does not match its sha256 in {MANIFEST} (damaged or edited)")
            entries.append(Entry(info.filename, info.file_size, digest))
    return entries
