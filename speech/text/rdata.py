"""Read character vectors from an installed R package's data without R.

Debian ships text corpora as R data packages: ``r-cran-stringr`` (the 720 Harvard
sentences, ``sentences``) and ``r-cran-janeaustenr`` (Austen's six novels, one line per
element: ``emma``, ``sensesensibility``, ...). Installed packages keep their data in a
*lazy-load database*: ``data/Rdata.rdx`` (a gzip-compressed serialized index: object name ->
offset and length in ``Rdata.rdb``) and ``data/Rdata.rdb`` (each object a 4-byte big-endian
length + a zlib, bzip2 or xz stream of its serialization).

This is a reader for the part of R's XDR serialization format (version 2 and 3) that such
data uses: vectors, strings, pairlists, symbols and references. It exists because the
PyPI readers (``rdata``, ``pyreadr``) read ``.rda``/``.rds`` files but not lazy-load
databases, and because it needs only the data files: a package unpacked with ``dpkg-deb -x``
(no root, no R) serves as well as an installed one (``read_package_data(path, name)``).

    >>> read_package_data("/usr/lib/R/site-library/stringr", "sentences")[:1]
    ['The birch canoe slid on the smooth planks.']
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import struct
import zlib
from pathlib import Path
from typing import Any

from speech.errors import SpeechError

R_LIBRARY = Path("/usr/lib/R/site-library")

# SEXP types (R Internals, "Serialization formats")
_SYM, _LIST, _CHAR, _LGL, _INT, _REAL, _STR, _VEC, _EXPR = 1, 2, 9, 10, 13, 14, 16, 19, 20
_REF, _NIL, _GLOBALENV, _EMPTYENV, _BASEENV = 255, 254, 253, 242, 241
_IS_OBJECT, _HAS_ATTR, _HAS_TAG = 1 << 8, 1 << 9, 1 << 10
_LATIN1, _UTF8 = 1 << 2, 1 << 3
_NA_INT = -(2 ** 31)


class _Unserializer:
    """One object from XDR bytes: strings come back as ``str`` (NA as None), vectors as
    lists, a named list or a pairlist as a dict of name -> value; other attributes are
    dropped."""

    def __init__(self, data: bytes, where: str):
        self.data, self.pos, self.where = data, 0, where
        self.refs: list[Any] = []

    def fail(self, what: str) -> SpeechError:
        return SpeechError(f"{self.where}: {what} at byte {self.pos}; not R data this reader understands")

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise self.fail("truncated serialization")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def int(self) -> int:
        return struct.unpack(">i", self.take(4))[0]

    def length(self) -> int:
        n = self.int()
        if n == -1:  # long vector: two more ints
            hi, lo = self.int(), self.int()
            n = (hi << 32) + lo
        return n

    def header(self) -> None:
        if self.take(2) != b"X\n":
            raise self.fail("no XDR serialization header")
        version = self.int()
        self.int(), self.int()  # writer's and minimal reader's R versions
        if version == 3:
            self.take(self.int())  # native encoding name
        elif version != 2:
            raise self.fail(f"serialization version {version}")

    def item(self) -> Any:
        flags = self.int()
        kind = flags & 0xFF
        if kind == _NIL or kind in (_GLOBALENV, _EMPTYENV, _BASEENV):
            return None
        if kind == _REF:
            index = flags >> 8 or self.int()
            return self.refs[index - 1]
        if kind == _SYM:
            name = self.item()
            self.refs.append(name)
            return name
        if kind == _LIST:
            # each node: [attributes] [tag] value, then the next node's flags; attributes of
            # a pairlist carry nothing the data needs and are read past
            out: dict[str, Any] = {}
            node_flags = flags
            while True:
                if node_flags & _HAS_ATTR:
                    self.item()
                tag = self.item() if node_flags & _HAS_TAG else None
                out[tag if tag is not None else f"[{len(out)}]"] = self.item()
                node_flags = self.int()
                if node_flags & 0xFF == _NIL:
                    break
                if node_flags & 0xFF != _LIST:
                    raise self.fail(f"pairlist continued by type {node_flags & 0xFF}")
            return out
        if kind == _CHAR:
            n = self.int()
            if n == -1:
                return None
            raw = self.take(n)
            encoding = "latin-1" if flags >> 12 & _LATIN1 else "utf-8"
            return raw.decode(encoding, errors="replace")
        if kind in (_LGL, _INT):
            n = self.length()
            values = struct.unpack(f">{n}i", self.take(4 * n))
            value: Any = [None if v == _NA_INT else v for v in values]
        elif kind == _REAL:
            n = self.length()
            value = list(struct.unpack(f">{n}d", self.take(8 * n)))
        elif kind in (_STR, _VEC, _EXPR):
            value = [self.item() for _ in range(self.length())]
        else:
            raise self.fail(f"SEXP type {kind}")
        attrs = self.item() if flags & _HAS_ATTR else {}
        if kind == _VEC and isinstance(attrs, dict) and isinstance(attrs.get("names"), list):
            return dict(zip(attrs["names"], value))  # a named list (class, row.names dropped)
        return value


def unserialize(data: bytes, where: str = "<bytes>") -> Any:
    """An R object from its XDR serialization (``where`` names the source in errors)."""
    reader = _Unserializer(data, where)
    reader.header()
    return reader.item()


def _decompress_rdb_entry(blob: bytes, where: str) -> bytes:
    # R's lazy-load compression: 1 = zlib straight after the length; 2/3 = a type byte
    # ('Z' xz, '2' bzip2, '0' stored) after it
    if len(blob) < 5:
        raise SpeechError(f"{where}: truncated lazy-load entry")
    try:
        return zlib.decompress(blob[4:])
    except zlib.error:
        pass
    kind, body = blob[4:5], blob[5:]
    try:
        if kind == b"Z":
            return lzma.decompress(body)
        if kind == b"2":
            return bz2.decompress(body)
        if kind == b"0":
            return body
    except (lzma.LZMAError, OSError) as e:
        raise SpeechError(f"{where}: cannot decompress a lazy-load entry ({e})") from None
    raise SpeechError(f"{where}: unknown lazy-load compression {kind!r}")


def read_package_data(package: str | Path, name: str) -> list[str]:
    """The character vector ``name`` from the data of an installed R package (a directory,
    or a package name under /usr/lib/R/site-library). NA elements become ''."""
    pkg = Path(package) if "/" in str(package) else R_LIBRARY / str(package)
    rdx, rdb = pkg / "data" / "Rdata.rdx", pkg / "data" / "Rdata.rdb"
    if not rdx.is_file() or not rdb.is_file():
        raise SpeechError(f"{pkg}: no R lazy-load data (data/Rdata.rdx); install the Debian package "
                          f"r-cran-{pkg.name} (tools/install_system_packages.sh)")
    try:
        index = unserialize(gzip.decompress(rdx.read_bytes()), str(rdx))
    except (OSError, EOFError) as e:
        raise SpeechError(f"{rdx}: not a gzip-compressed R index ({e})") from None
    variables = index.get("variables") if isinstance(index, dict) else None
    if not isinstance(variables, dict):
        raise SpeechError(f"{rdx}: unexpected index layout")
    if name not in variables:
        raise SpeechError(f"{pkg}: no data object '{name}' (it has: {', '.join(variables)})")
    offset, size = variables[name]
    with open(rdb, "rb") as f:
        f.seek(offset)
        blob = f.read(size)
    where = f"{rdb}[{name}]"
    value = unserialize(_decompress_rdb_entry(blob, where), where)
    if not isinstance(value, list) or not all(v is None or isinstance(v, str) for v in value):
        raise SpeechError(f"{where}: not a character vector")
    return [v or "" for v in value]

