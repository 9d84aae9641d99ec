"""Bible text from Debian SWORD modules: the KJV as one string, and KJV ↔ Reina-Valera 1909 verse pairs.

SWORD zText layout, per testament: `.bzs` block index (uint32 offset, compressed size, size), `.bzv` entry index
(uint32 block, uint32 offset, uint16 size) and `.bzz` zlib blocks of OSIS markup. Entries follow the KJV
versification: [testament heading ×2] then per book [book heading] and per chapter [chapter heading, verses...].
We read book boundaries from the module's own markup (chapter headings carry `<chapter sID="Book.N">`) and check
the result against the layout's known totals. Every load checks the six files against their pinned sha256 first.
"""

from __future__ import annotations

import re
import struct
import zlib

from sparsenets.data.sources import SOURCES, read_checked
from sparsenets.data.types import VersePair
from sparsenets.errors import SparsenetsError

_ZTEXT = "usr/share/sword/modules/texts/ztext"
_KJV_VERSES, _KJV_CHAPTERS, _KJV_BOOKS = 31102, 1189, 66  # KJV versification totals
_CHAPTER = re.compile(r'<chapter\b[^>]*\bsID="([1-3A-Za-z]+)\.(\d+)"')
_NOTE = re.compile(r"<(note|title)\b[^>]*>.*?</\1>", re.S)


def read_ztext(files: dict[str, bytes]) -> list[str]:
    """Raw OSIS markup of every entry of a zText module, OT then NT (KJV: 32361 entries; headings may be "").

    Args:
        files: the module's six files by name ("ot.bzs", "ot.bzv", "ot.bzz", "nt.bzs", ...), as bytes.
    """
    out: list[str] = []
    for testament in ("ot", "nt"):
        bzs, bzv, bzz = (files[f"{testament}.{ext}"] for ext in ("bzs", "bzv", "bzz"))
        blocks: dict[int, bytes] = {}
        for block, off, size in struct.iter_unpack("<IIH", bzv):
            if size == 0:
                out.append("")
                continue
            if block not in blocks:
                start, csize, _ = struct.unpack_from("<III", bzs, 12 * block)
                blocks[block] = zlib.decompress(bzz[start : start + csize])
            out.append(blocks[block][off : off + size].decode("utf-8", "replace"))
    return out


def clean(osis: str) -> str:
    """Plain text of one entry: drop notes and titles, strip tags, collapse whitespace."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", _NOTE.sub(" ", osis))).strip()


def verse_books(entries: list[str], nt_start: int) -> list[str | None]:
    """Book id (e.g. "John") of each entry that is a verse; None for headings. Raises if the layout is off."""
    chapters = [(i, m.group(1)) for i, e in enumerate(entries) if (m := _CHAPTER.search(e))]
    heading = {0, 1, nt_start, nt_start + 1} | {i for i, _ in chapters}
    first_chapter: dict[str, int] = {}
    for i, book in chapters:
        first_chapter.setdefault(book, i)
    heading |= {i - 1 for i in first_chapter.values()}  # the book heading sits just before its first chapter
    books: list[str | None] = [None] * len(entries)
    current: str | None = None
    ch = iter(chapters)
    next_ch = next(ch, None)
    for i in range(len(entries)):
        if next_ch is not None and i == next_ch[0]:
            current, next_ch = next_ch[1], next(ch, None)
        if i not in heading:
            books[i] = current
    n_verses = sum(b is not None for b in books)
    if (len(chapters), len(first_chapter), n_verses) != (_KJV_CHAPTERS, _KJV_BOOKS, _KJV_VERSES):
        raise SparsenetsError(
            f"unexpected SWORD layout: {len(chapters)} chapters, {len(first_chapter)} books, {n_verses} verses"
        )
    return books


_PARSED: dict[str, tuple[list[str], list[str | None]]] = {}  # module → its parse (about a second per module)


def _module(source: str, module: str, dataset: str) -> tuple[list[str], list[str | None]]:
    """Cleaned entries of a SWORD module and the book of each verse entry.

    Its six files are read and checked against their pinned sha256 at every call (about 10 ms); the parse is
    kept per process, which is safe because checked bytes are always the pinned bytes.
    """
    src = SOURCES[source]
    files = {
        name: read_checked(src, f"{_ZTEXT}/{module}/{name}", dataset)
        for name in (f"{t}.{e}" for t in ("ot", "nt") for e in ("bzs", "bzv", "bzz"))
    }
    if module not in _PARSED:
        raw = read_ztext(files)
        books = verse_books(raw, nt_start=len(files["ot.bzv"]) // 10)
        _PARSED[module] = ([clean(e) for e in raw], books)
    return _PARSED[module]


def _kjv(dataset: str) -> tuple[list[str], list[str | None]]:
    return _module("sword-text-kjv", "engKJV2006eb", dataset)


def load_kjv(split: str) -> str:
    """The KJV Bible as one string, one verse per line (about 4.1 M chars); train/val/test = 90/5/5 by chars."""
    entries, books = _kjv("kjv")
    text = "\n".join(e for e, b in zip(entries, books) if b is not None and e) + "\n"
    a, b = int(0.90 * len(text)), int(0.95 * len(text))
    return {"all": text, "train": text[:a], "val": text[a:b], "test": text[b:]}[split]


def load_kjv_rv1909(split: str, holdout: str = "John") -> list[VersePair]:
    """Aligned English/Spanish verses (31084 pairs); "test" is the held-out book (OSIS id), "train" the rest."""
    en, books = _kjv("kjv-rv1909")
    es, _ = _module("sword-text-sparv", "spaRV1909eb", "kjv-rv1909")
    if len(es) != len(en):
        raise SparsenetsError(f"KJV has {len(en)} entries but RV1909 has {len(es)}; versifications differ")
    if holdout not in set(books):
        known = ", ".join(dict.fromkeys(b for b in books if b))
        raise SparsenetsError(f"unknown book '{holdout}' for holdout; known: {known}")
    pairs = [VersePair(a, b, bk) for a, b, bk in zip(en, es, books) if bk is not None and a and b]
    if split == "all":
        return pairs
    return [p for p in pairs if (p.book == holdout) == (split == "test")]
