"""Local evidence that two pictures are copies: keypoints under one transform, then the
pictures compared through it cell by cell. Pure functions of pixels.

Hashes and embeddings summarise a whole picture, so two pictures painted over one another,
or light and dark variants of one design, can agree in every summary. The standard second
stage of copy detection looks at the pixels:

1. ``view``: the verification picture, a thumbnail whose longer side is ``SIDE`` in three
   planes: its grey levels (the recipe ``LOCAL_RECIPE`` names; a view made by another
   recipe is not comparable) and its two chroma planes in ``CHROMA_BLOCK`` px blocks
   (``CHROMA_RECIPE``; a grey view alone is compared without colour);
2. ``features``: ORB keypoints of the view's grey plane and of its mirror image (mirrored
   copies);
3. ``compare``: keypoints matched (Lowe's ratio test), one similarity transform (rotation,
   uniform scale, shift) fitted by RANSAC in the orientation keeping more inliers, and when
   it has at least ``MIN_ALIGNED`` inliers that transform refined on the pixels
   (``refined``: a few keypoints place it a pixel or two off) and the first view warped
   onto the second through it, taken
   through the pair's tone curve (``linear_tone_curve``: one line from the first view's
   grey levels to the second's, clipped at black and white, which a brighter, darker or
   contrasted copy follows, its clipped highlights included) and compared in ``CELL`` px
   cells: the normalised cross-correlation of the grey levels of every cell textured in
   both (blind to brightness, contrast, clipping and colour; a light and a dark variant of a
   design, whose grey levels follow a bent curve, are not copies). Its 25th percentile over
   the cells is the pair's ``score``. Through the same transform, the colours: each cell's
   mean chroma where both pictures have the cell (``aligned_color``), so a rotation's
   filled corners, a crop or a frame, which move a whole picture's colour layout, leave it
   alone, and a colour variant of one design (the same grey structure in other hues)
   differs in every coloured cell. Where the colours agree (``COLORS_AGREE``) once the
   darker picture is brightened by the pair's gain, the cells are compared so brightened
   too, the better score kept (a brighter copy's inks clip channel by channel). Pictures
   of one frame for which keypoints found no transform (a sky, a snow texture, a faint
   drawing: a brighter or recompressed copy keeps too few corners) are compared as they
   are (``AS_IS``), and said to have been only where their cells and colours agree
   (``CELLS_AGREE``, ``COLORS_AGREE``): a crop or a shift of a copy disagrees as it is,
   which is no evidence, and grey cells alone agree across the colour variants of a design;
4. ``layout`` and ``layout_distance``: for plain pictures (too little detail for hashes,
   too few keypoints for a transform), the mean grey levels of an ``LAYOUT_GRID`` grid over
   the view without its uniform margins, and how far two such layouts are apart in absolute
   grey levels (a copy of a plain page keeps its tone and layout; two different pages, or a
   light and a dark variant, do not).

Inlier counts alone do not separate copies from repaints (a picture painted over another
keeps its line art and as many keypoints as a copy); the cells compared through the fitted
transform do. bench/bench_local.py measured this on planted edits (bench/README.md, "Local
features with geometric verification") and chooses the thresholds the indexer applies; it
also measures the other cell comparisons (``CELL_METHODS``; bench/README.md, "Cells through
the pair's tone curve").

OpenCV is imported inside the functions: the API and the CLI import this module's
neighbours without paying for it unless they verify.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

# The verification picture: longer side SIDE px by area averaging, grey (PIL's ITU-R 601
# luma: what keypoints and cells see); beside it PIL's YCbCr chroma planes Cb and Cr (what
# colours are compared on), by area averaging in CHROMA_BLOCK px blocks: colours are compared
# in CELL px cells, and the blocks keep the stored chroma about a third of the grey plane's
# bytes. 2 px, not 4: a darker picture brightened to a copy's levels (``brightened``) is
# rebuilt in RGB from these blocks and clipped channel by channel, and 4 px blocks bleed an
# ink's colour into the paper beside it, which clips wrongly along every edge (a flame's
# cells 0.972 against its brighter copy with 4 px blocks, 0.984 with 2, 0.989 with 1).
# Change a name whenever its recipe changes: stored views of another recipe are then not
# used, except the chroma recipes of EARLIER_CHROMA, read with their own block size until
# the view is written again (their colours, coarser, are still colours).
SIDE = 320
LOCAL_RECIPE = f"grey{SIDE}-area-1"
CHROMA_BLOCK = 2
CHROMA_RECIPE = f"chroma{SIDE}-block{CHROMA_BLOCK}-1"
EARLIER_CHROMA: dict[str, int] = {f"chroma{SIDE}-block4-1": 4}  # recipe -> block

# The parameters bench/bench_local.py measured (its defaults): at most KEYPOINTS per
# orientation, Lowe's ratio test at RATIO, RANSAC inlier radius REPROJ px (at SIDE).
KEYPOINTS = 500
RATIO = 0.8
REPROJ = 4.0
MIN_ALIGNED = 8  # inliers a transform needs before the pictures are compared through it
# The keypoints' transform refined on the pixels (``refined``): at most REFINE_STEPS ECC
# iterations, stopping when the warp moves less than REFINE_EPS.
REFINE_STEPS = 50
REFINE_EPS = 1e-5
CELL = 16  # pixels of the compared cells' side, at SIDE
MARGIN = 4  # pixels kept from the warped picture's edges, which blurring smears
TEXTURE = 4.0  # grey levels of standard deviation a cell needs on both sides to be compared
# The "ncc" comparison (the one before the tone curve) takes a cell with many pixels at
# black or white (a brighter copy's highlights) to have lost its structure there and leaves
# it out; on a drawing on white that is most cells (the paper).
CLIPPED = 4  # grey levels from 0 or 255 counted as clipped
MAX_CLIPPED = 0.2  # share of clipped pixels a cell compared by "ncc" may have
SCORE_PERCENTILE = 25  # of the cells' correlations: the pair's score
# How a cell's grey levels are compared: "ncc" their normalised cross-correlation (cells
# with over MAX_CLIPPED clipped pixels left out: the comparison before the tone curve);
# "rank" the same of their ranks within the cell (Spearman's); "toned" and "toned-rank" the
# same after the first picture is taken through the pair's monotone tone curve
# (``tone_curve``), clipped cells kept; "linear" (the product's) the same through a curve
# held to one clipped line (``linear_tone_curve``). bench/bench_local.py measures them
# (``--methods``; bench/README.md, "Cells through the pair's tone curve").
CELL_METHODS = ("ncc", "rank", "toned", "toned-rank", "linear")
CELLS = "linear"
TONE_STEP = 4  # grey levels per step of the tone curve
TONE_MIN_PIXELS = 20  # pixels a step needs to be fitted (the others interpolated)
TONE_DARK = 32  # levels below which a pixel's ratio to its copy's is noise (pair_gain)
# channel levels from white counted as clipped: the RGB of a view is rebuilt from its chroma
# blocks, which bleed an ink's colour into the white paper beside it
GAIN_CLIPPED = 16
# chroma (|Cb| + |Cr| off grey) a pixel needs for its gain to count: a blend of black ink
# and white paper keeps its grey under any gain (black stays black, white clips)
GAIN_COLOR = 16
# grey levels of standard deviation (5 px square) under which a grey pixel is inside a fill:
# a grey fill's gain counts (a brighter copy's grey bars), not a blend of black ink and white
# paper a thumbnail's downsampling made (white stays white under any gain, so the blend does)
GAIN_FILL = 2.0
GAIN_RANGE = (0.25, 4.0)  # gains pair_gain considers,
GAIN_BINS = 375  # in steps of 0.01
FLAT = 1.0  # grey levels of standard deviation below which a cell through the curve is flat
FLAT_RANK = 1.0  # the same in ranks


# Colours through the transform (``aligned_color``), in Cb/Cr levels: a cell has colour from
# COLOR_PRESENT (|Cb - 128| + |Cr - 128| of its mean), a cell's stronger colour may be scaled
# down by up to COLOR_DILUTION, and the pair's distance is the COLOR_PERCENTILE-th percentile
# over the cells with colour. Chroma, not chromaticity: a dark cell's chromaticity is noise
# that recompression and noise move by more than a colour variant does (measured on the
# tuning paintings), its chroma is near grey.
COLOR_PRESENT = 4.0
COLOR_DILUTION = 2.0
COLOR_PERCENTILE = 75
# Colours that agree where two pictures align (``aligned_color``): the limit the verifier
# claims on (services/indexer/verify.py, LOCAL_MAX_COLOR, with how it was chosen). Where
# they agree once the darker picture is brightened by the pair's gain, ``compare_features``
# also compares the cells so brightened: a brighter copy's inks clip channel by channel,
# off the one line of grey levels the cells are otherwise taken through. Only then: a light
# and a dark render of one scene are alike in grey once the dark one is brightened, and
# their colours are not.
COLORS_AGREE = 2.8
# Cells that agree (their SCORE_PERCENTILE-th percentile correlation): the least the
# verifier claims on (services/indexer/verify.py, LOCAL_MIN_SCORE, with how it was chosen).
CELLS_AGREE = 0.98
# What a pair's evidence was found by (the views' recipe aside), COLORS_AGREE included (it
# decides where the cells are compared brightened, and as they are): change it whenever the
# comparison changes, so evidence kept from another comparison (the indexer's memo) is not
# reused.
COMPARISON = (
    f"{CELLS}-cell{CELL}-p{SCORE_PERCENTILE}-ecc{REFINE_STEPS}-gain-8-asis-agree{COLORS_AGREE:g}"
)
# The transform of pictures compared as they are, when keypoints found none
AS_IS = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


# Plain pictures: the view without uniform margins (lookalike.hashing.trim_borders: a copy
# framed in white is its page again) in LAYOUT_GRID x LAYOUT_GRID cells; two layouts are as
# far apart as the LAYOUT_PERCENTILE-th percentile of their cells' absolute differences (a
# caption stamped on a copy moves a few cells), in the better orientation (mirrored copies).
# bench/bench_quality.py measured the grid and percentile on the tuning pictures.
LAYOUT_GRID = 8
LAYOUT_PERCENTILE = 75


@dataclass(frozen=True)
class Config:
    """How keypoints are found and matched. The defaults are the product's; the benchmark
    varies them (``--features sift``, ``--keypoints``...)."""

    detector: str = "orb"  # or "sift"
    keypoints: int = KEYPOINTS
    ratio: float = RATIO
    reproj: float = REPROJ


@dataclass(frozen=True)
class Keypoints:
    xy: np.ndarray  # (n, 2) float32 coordinates in the view
    descriptors: np.ndarray  # (n, d) uint8


@dataclass(frozen=True)
class Features:
    direct: Keypoints
    mirror: Keypoints  # of the view flipped left to right


@dataclass(frozen=True)
class Geometry:
    inliers: int  # keypoint matches the fitted transform keeps
    matches: int  # matches passing the ratio test
    model: np.ndarray | None  # 2x3 similarity transform from the first view to the second


@dataclass(frozen=True)
class Cells:
    """The first view warped onto the second, compared cell by cell (NaN: nothing to
    compare): percentiles of the cells' correlation, the share of cells below 0.5, a tone
    residual (the cells' mean grey levels through one monotone curve; light and dark
    variants of a design move regions differently), and how many cells were compared."""

    p10: float
    below_half: float
    p25: float
    p50: float
    tone: float
    count: int


NOT_COMPARED = Cells(math.nan, math.nan, math.nan, math.nan, math.nan, 0)


@dataclass(frozen=True)
class LocalEvidence:
    """What the pixels say about one pair of pictures."""

    inliers: int
    matches: int
    mirrored: bool  # the first picture's mirror image matched the second better
    cells: Cells
    # how far apart the aligned cells' colours are (``aligned_color``; NaN: not compared, a
    # grey view, or no colour in either picture's compared cells)
    color: float = math.nan

    @property
    def score(self) -> float:
        """The 25th percentile of the compared cells' correlation (NaN: not compared)."""
        return self.cells.p25

    @property
    def compared(self) -> bool:
        return self.cells.count > 0 and math.isfinite(self.score)


def view(image: Image.Image, side: int = SIDE) -> np.ndarray:
    """The verification picture of ``image``: (h, w, 3) uint8, longer side ``side``: grey,
    then Cb and Cr constant over ``CHROMA_BLOCK`` px blocks (``with_chroma``)."""
    import cv2

    grey_plane = np.asarray(image.convert("L"))
    h, w = grey_plane.shape
    scale = side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = (-(-size[0] // CHROMA_BLOCK), -(-size[1] // CHROMA_BLOCK))
    chroma = cv2.resize(
        np.asarray(image.convert("YCbCr"))[..., 1:], small, interpolation=cv2.INTER_AREA
    )
    return with_chroma(cv2.resize(grey_plane, size, interpolation=cv2.INTER_AREA), chroma)


def with_chroma(
    grey_plane: np.ndarray, chroma: np.ndarray, block: int = CHROMA_BLOCK
) -> np.ndarray:
    """A three-plane view from its grey plane (h, w) and its chroma blocks (ceil(h /
    block), ceil(w / block), 2): each block's Cb and Cr over its pixels. ``block``: the
    blocks' side (an earlier recipe's, ``EARLIER_CHROMA``)."""
    h, w = grey_plane.shape
    if chroma.shape != (-(-h // block), -(-w // block), 2):
        raise ValueError(f"chroma blocks {chroma.shape} do not fit a grey plane of {(h, w)}")
    full = np.repeat(np.repeat(chroma, block, axis=0), block, axis=1)[:h, :w]
    return np.ascontiguousarray(np.dstack([grey_plane, full]))


def chroma_blocks(picture: np.ndarray) -> np.ndarray:
    """The chroma blocks of a three-plane view (what ``with_chroma`` takes)."""
    return np.ascontiguousarray(picture[::CHROMA_BLOCK, ::CHROMA_BLOCK, 1:])


def grey(picture: np.ndarray) -> np.ndarray:
    """The grey plane of a view (a grey view is its own)."""
    if picture.ndim == 2:
        return picture
    if picture.ndim == 3 and picture.shape[2] == 3:
        return np.ascontiguousarray(picture[..., 0])
    raise ValueError(f"a view is a grey or a three-plane picture, not of shape {picture.shape}")


def layout(picture: np.ndarray, grid: int = LAYOUT_GRID) -> np.ndarray:
    """The mean grey level of each cell of a ``grid`` x ``grid`` grid over a view without
    its uniform margins: (grid, grid) float32."""
    from lookalike.hashing import trim_borders

    picture = grey(picture)
    if picture.size == 0:
        raise ValueError(f"a view is a picture, not an array of shape {picture.shape}")
    trimmed = trim_borders(Image.fromarray(picture)).convert("L")
    if min(trimmed.size) < grid:  # a thin strip: stretched to the grid
        trimmed = trimmed.resize((max(grid, trimmed.width), max(grid, trimmed.height)))
    page = np.asarray(trimmed, np.float32)
    h, w = page.shape
    rows = np.linspace(0, h, grid + 1).round().astype(int)
    cols = np.linspace(0, w, grid + 1).round().astype(int)
    sums: np.ndarray = np.add.reduceat(np.add.reduceat(page, rows[:-1], axis=0), cols[:-1], axis=1)
    counts = np.diff(rows)[:, None] * np.diff(cols)[None, :]
    return np.asarray(sums / counts, np.float32)


def layout_distance(a: np.ndarray, b: np.ndarray) -> float:
    """How far apart two layouts are, in grey levels: the ``LAYOUT_PERCENTILE``-th percentile
    of the cells' absolute differences, directly or with ``a`` mirrored, whichever is less."""
    return min(float(np.percentile(np.abs(x - b), LAYOUT_PERCENTILE)) for x in (a, a[:, ::-1]))


def _detector(config: Config) -> Any:
    import cv2

    # Untyped: OpenCV 5's stubs leave out the detectors' factories (4.x's declare them).
    factories: Any = cv2
    if config.detector == "orb":
        return factories.ORB_create(nfeatures=config.keypoints, fastThreshold=10)
    if config.detector == "sift":
        return factories.SIFT_create(nfeatures=config.keypoints)
    raise ValueError(f"unknown detector {config.detector!r}: orb or sift")


def _describe(detector: Any, picture: np.ndarray, config: Config) -> Keypoints:
    kps, desc = detector.detectAndCompute(picture, None)
    xy = np.array([k.pt for k in kps], np.float32).reshape(-1, 2)
    if desc is None:
        desc = np.zeros((0, 128 if config.detector == "sift" else 32), np.uint8)
    if config.detector == "sift":
        desc = np.clip(desc, 0, 255).astype(np.uint8)
    return Keypoints(xy, desc)


def features(picture: np.ndarray, config: Config | None = None) -> Features:
    """Keypoints and descriptors of a view's grey plane and of its mirror image."""
    config = config or Config()
    det = _detector(config)
    picture = grey(picture)
    return Features(
        _describe(det, picture, config),
        _describe(det, np.ascontiguousarray(picture[:, ::-1]), config),
    )


def make_matcher(config: Config) -> Any:
    """A brute-force matcher for the detector's descriptors (reusable across pairs)."""
    import cv2

    return cv2.BFMatcher(cv2.NORM_L2 if config.detector == "sift" else cv2.NORM_HAMMING)


def geometry(a: Keypoints, b: Keypoints, config: Config, matcher: Any = None) -> Geometry:
    """The similarity transform RANSAC fits from a's keypoints to b's."""
    import cv2

    da, db = a.descriptors, b.descriptors
    if len(da) < 3 or len(db) < 3:
        return Geometry(0, 0, None)
    if config.detector == "sift":
        da, db = da.astype(np.float32), db.astype(np.float32)
    knn = (matcher or make_matcher(config)).knnMatch(da, db, k=2)
    good = [m[0] for m in knn if len(m) == 2 and m[0].distance < config.ratio * m[1].distance]
    if len(good) < 3:
        return Geometry(0, len(good), None)
    src = a.xy[[m.queryIdx for m in good]]
    dst = b.xy[[m.trainIdx for m in good]]
    model, mask = cv2.estimateAffinePartial2D(
        src,
        dst,
        method=cv2.RANSAC,
        ransacReprojThreshold=config.reproj,
        maxIters=2000,
        confidence=0.995,
    )
    if model is None:
        return Geometry(0, len(good), None)
    return Geometry(int(mask.sum()), len(good), model)


def tone_curve(a: np.ndarray, b: np.ndarray, where: np.ndarray) -> np.ndarray:
    """The monotone curve taking grey level x of ``a`` to the median grey level of ``b``
    where ``a`` is x (over ``where``): 256 float32 levels. A brighter, darker or contrasted
    copy is its original through one such curve, clipping included (the light inks a 30%
    brighter copy turns white: the curve takes them to 255); the cells compared through it no
    longer mix levels that clipping merged in one picture and not in the other."""
    x = np.clip(a[where], 0, 255).astype(np.int64) // TONE_STEP
    y = b[where].astype(np.float32)
    if x.size == 0:
        return np.arange(256, dtype=np.float32)
    bins = 256 // TONE_STEP
    order = np.argsort(x, kind="stable")
    xs, ys = x[order], y[order]
    starts = np.searchsorted(xs, np.arange(bins))
    ends = np.searchsorted(xs, np.arange(bins), side="right")
    centres, medians, weights = [], [], []
    for k in range(bins):
        if ends[k] - starts[k] >= TONE_MIN_PIXELS:
            centres.append(k * TONE_STEP + (TONE_STEP - 1) / 2)
            medians.append(float(np.median(ys[starts[k] : ends[k]])))
            weights.append(float(ends[k] - starts[k]))
    if not centres:
        return np.arange(256, dtype=np.float32)
    fitted = _isotonic(np.array(medians), np.array(weights))
    return np.asarray(np.interp(np.arange(256), centres, fitted), np.float32)


def linear_tone_curve(a: np.ndarray, b: np.ndarray, where: np.ndarray) -> np.ndarray:
    """``tone_curve`` held to one line clipped at black and white: its gain and offset
    fitted (least squares, weighted by pixels) to b's mean grey level at each grey level of
    a, over the levels clipped in neither picture. A brighter, darker or contrasted copy
    follows it, clipping included; a light and a dark variant of a design, whose grey levels
    follow a bent curve, do not. A falling line is no copy's: the identity then."""
    x = np.clip(a[where], 0, 255).astype(np.int64)
    y = b[where].astype(np.float64)
    if x.size == 0:
        return np.arange(256, dtype=np.float32)
    level = np.arange(256)
    count = np.bincount(x, minlength=256).astype(np.float64)
    mean = np.bincount(x, weights=y, minlength=256) / np.maximum(count, 1)
    use = (count > 0) & (level > CLIPPED) & (level < 255 - CLIPPED)
    use &= (mean > CLIPPED) & (mean < 255 - CLIPPED)
    if count[use].sum() < TONE_MIN_PIXELS or np.unique(level[use]).size < 2:
        return np.arange(256, dtype=np.float32)
    gain, offset = np.polyfit(level[use], mean[use], 1, w=np.sqrt(count[use]))
    if gain <= 0:  # no copy's curve falls: a negative picture's cells stay anticorrelated
        return np.arange(256, dtype=np.float32)
    return np.asarray(np.clip(gain * level + offset, 0, 255), np.float32)


def _isotonic(y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The non-decreasing sequence nearest ``y`` in weighted least squares (pool adjacent
    violators)."""
    values: list[float] = []
    weights: list[float] = []
    sizes: list[int] = []
    for v, n in zip(y.tolist(), w.tolist(), strict=True):
        values.append(v)
        weights.append(n)
        sizes.append(1)
        while len(values) > 1 and values[-2] > values[-1]:
            v2, n2, s2 = values.pop(), weights.pop(), sizes.pop()
            values[-1] = (values[-1] * weights[-1] + v2 * n2) / (weights[-1] + n2)
            weights[-1] += n2
            sizes[-1] += s2
    return np.repeat(np.array(values), sizes)


def _ranks(x: np.ndarray) -> np.ndarray:
    """Each row's ranks, ties sharing their average rank (Spearman's)."""
    out = np.empty(x.shape, np.float32)
    for k, row in enumerate(x):
        _, inverse, counts = np.unique(row, return_inverse=True, return_counts=True)
        out[k] = (np.cumsum(counts) - (counts - 1) / 2)[inverse]
    return out


def refined(a: np.ndarray, b: np.ndarray, model: np.ndarray) -> np.ndarray:
    """The transform from view a to view b that keypoints found, refined on all the pixels:
    the affine warp maximising the correlation of the grey planes where both are (OpenCV's
    ECC, from ``model``; ``REFINE_STEPS`` iterations at most). A few keypoints on a flat
    drawing, a crop or a rotation place a transform a pixel or two off, which cells along
    the drawing's lines feel, and on a rotated drawing whose keypoints sit on a few
    repeated strokes they can place it tens of pixels off. The keypoints' own is kept where
    ECC fails; whether the refined one is better is the cells' to say (``best_aligned``:
    ECC can also slide a framed copy's picture over its frame)."""
    import cv2

    ga, gb = grey(a).astype(np.float32), grey(b).astype(np.float32)
    # ECC warps its input (a) onto its template (b) by a warp from b's pixels to a's
    start = cv2.invertAffineTransform(np.asarray(model, np.float64)).astype(np.float32)
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, REFINE_STEPS, REFINE_EPS)
    try:
        everywhere = np.ones(ga.shape, np.uint8)  # a's pixels; b's outside a's are left out
        _, warp = cv2.findTransformECC(gb, ga, start, cv2.MOTION_AFFINE, criteria, everywhere, 5)
    except cv2.error:  # no convergence (a flat or unrelated picture): the keypoints' own
        return model
    better = np.asarray(cv2.invertAffineTransform(warp), np.float64)
    return better if np.isfinite(better).all() else model


def best_aligned(
    a: np.ndarray, b: np.ndarray, model: np.ndarray, method: str = CELLS
) -> tuple[Cells, np.ndarray]:
    """The cells compared through the keypoints' transform and through it ``refined``, the
    better of the two (the higher score) and its transform: ECC's own criterion is the
    whole picture's correlation, and on a framed copy it can trade a cell's agreement for
    the frame's."""
    cells = aligned(a, b, model, method)
    better = refined(a, b, model)
    if better is model:
        return cells, model
    other = aligned(a, b, better, method)
    if other.p25 > cells.p25 or (math.isnan(cells.p25) and not math.isnan(other.p25)):
        return other, better
    return cells, model


def onto(a: np.ndarray, b: np.ndarray, model: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """View a (float) warped onto view b's frame by ``model``, and where it is there (1; a
    margin kept from its warped edges, whose pixels blend a's border with its inside)."""
    import cv2

    h, w = b.shape[:2]
    warped = cv2.warpAffine(a.astype(np.float32), model, (w, h), borderMode=cv2.BORDER_REPLICATE)
    inside = cv2.warpAffine(np.ones(a.shape[:2], np.uint8), model, (w, h), flags=cv2.INTER_NEAREST)
    inside = cv2.erode(inside, np.ones((2 * MARGIN + 1, 2 * MARGIN + 1), np.uint8))
    return warped, inside


def aligned(a: np.ndarray, b: np.ndarray, model: np.ndarray, method: str = CELLS) -> Cells:
    """View a warped onto view b by ``model`` (their grey planes), compared cell by cell
    where both are (a margin kept from a's warped edges) and textured in both. ``method``:
    how a cell's grey levels are compared (``CELL_METHODS``)."""
    import cv2

    if method not in CELL_METHODS:
        raise ValueError(f"unknown cell comparison {method!r}: one of {', '.join(CELL_METHODS)}")
    a, b = grey(a), grey(b)
    h, w = b.shape
    warped, inside = onto(a, b, model)
    source = warped
    if method != "ncc" and method != "rank":
        fit = linear_tone_curve if method == "linear" else tone_curve
        curve = fit(warped, b, inside > 0)
        source = np.interp(warped, np.arange(256), curve).astype(np.float32)
    wa = cv2.GaussianBlur(source, (0, 0), 1.5)
    wb = cv2.GaussianBlur(b.astype(np.float32), (0, 0), 1.5)
    # the warped picture's own levels (its texture and tone), blurred once when not toned
    raw = wa if source is warped else cv2.GaussianBlur(warped, (0, 0), 1.5)
    gh, gw = h // CELL, w // CELL
    if gh == 0 or gw == 0:
        return NOT_COMPARED

    def cells(x: np.ndarray) -> np.ndarray:
        return (
            x[: gh * CELL, : gw * CELL]
            .reshape(gh, CELL, gw, CELL)
            .swapaxes(1, 2)
            .reshape(gh * gw, CELL * CELL)
        )

    ca, cb, ci, craw = cells(wa), cells(wb), cells(inside), cells(raw)
    whole = ci.min(axis=1) > 0
    if whole.sum() < 4:
        return NOT_COMPARED
    tone = _tone_residual(craw.mean(axis=1), cb.mean(axis=1), whole)
    textured = whole & (craw.std(axis=1) >= TEXTURE) & (cb.std(axis=1) >= TEXTURE)
    if method == "ncc":
        clipped = (
            (warped <= CLIPPED) | (warped >= 255 - CLIPPED) | (b <= CLIPPED) | (b >= 255 - CLIPPED)
        ).astype(np.float32)
        textured &= cells(clipped).mean(axis=1) <= MAX_CLIPPED
    if not textured.any():
        return Cells(math.nan, math.nan, math.nan, math.nan, tone, 0)
    ca, cb = ca[textured], cb[textured]
    if method.endswith("rank"):
        ca, cb = _ranks(ca), _ranks(cb)
    ca = ca - ca.mean(axis=1)[:, None]
    cb = cb - cb.mean(axis=1)[:, None]
    sa, sb = ca.std(axis=1), cb.std(axis=1)
    # a cell the tone curve flattened (a textured, its copy through the curve not) agrees
    # with nothing: a curve cannot take one picture's structure away where the other has it
    flat = sa < (FLAT_RANK if method.endswith("rank") else FLAT)
    ncc = np.where(flat, 0.0, (ca * cb).mean(axis=1) / np.maximum(sa * sb, 1e-6))
    p10, p25, p50 = np.percentile(ncc, [10, SCORE_PERCENTILE, 50])
    below = float((ncc < 0.5).mean())
    return Cells(float(p10), below, float(p25), float(p50), tone, int(textured.sum()))


def aligned_color(
    a: np.ndarray, b: np.ndarray, model: np.ndarray, gain: float | None = None
) -> float:
    """How far apart the colours of view a warped onto view b by ``model`` are, where both
    are (a margin kept from a's warped edges): over the ``CELL`` px cells either picture has
    colour in, the ``COLOR_PERCENTILE``-th percentile of the distance between the cells'
    mean chroma (Cb and Cr levels off grey, |dCb| + |dCr|; the darker picture brightened to
    the other's levels first, ``toned_chroma``) once the stronger is scaled
    towards the weaker by up to ``COLOR_DILUTION`` (a brighter copy's stronger colours, a
    cell's share of neutral paper); NaN when fewer than four cells are in both or either
    picture has no colour there (a grey copy)."""
    h, w = b.shape[:2]
    gh, gw = h // CELL, w // CELL
    if gh == 0 or gw == 0:
        return math.nan
    warped, inside = onto(a, b, model)
    warped, toned_b = toned_chroma(warped, b.astype(np.float32), inside > 0, gain)

    def means(x: np.ndarray) -> np.ndarray:
        x = x[: gh * CELL, : gw * CELL]
        return np.asarray(x.reshape(gh, CELL, gw, CELL, -1).mean(axis=(1, 3)).reshape(gh * gw, -1))

    whole = means(inside.astype(np.float32)[..., None])[:, 0] >= 1
    if whole.sum() < 4:
        return math.nan
    ca = means(warped)[whole]
    cb = means(toned_b)[whole]
    strength_a, strength_b = np.abs(ca).sum(axis=1), np.abs(cb).sum(axis=1)
    if strength_a.max() < COLOR_PRESENT or strength_b.max() < COLOR_PRESENT:
        return math.nan  # a grey picture (or copy) has no colours to compare
    colored = np.maximum(strength_a, strength_b) >= COLOR_PRESENT
    a_stronger = ((ca * ca).sum(axis=1) >= (cb * cb).sum(axis=1))[:, None]
    strong, weak = np.where(a_stronger, ca, cb), np.where(a_stronger, cb, ca)
    power = np.maximum((strong * strong).sum(axis=1), 1e-9)
    scale = np.clip((strong * weak).sum(axis=1) / power, 1 / COLOR_DILUTION, 1.0)[:, None]
    apart = np.abs(scale * strong - weak).sum(axis=1)
    return float(np.percentile(apart[colored], COLOR_PERCENTILE))


def toned_chroma(
    a: np.ndarray, b: np.ndarray, where: np.ndarray, gain: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The Cb and Cr planes (off grey) of two aligned three-plane views (float) once the
    darker is brightened to the other's levels by the pair's gain (``pair_gain`` over
    ``where``, unless ``gain`` is given): its RGB channels scaled, clipped at white. A
    brighter copy's clipped channels turn its colours (an orange towards yellow); its
    original brightened alike turns them the same way. The darker is the one scaled, as
    clipping cannot be undone."""
    if gain is None:
        gain = pair_gain(a, b, where)
    rgb_a, rgb_b = _rgb(a), _rgb(b)
    if gain >= 1:
        rgb_a = rgb_a * gain
    else:
        rgb_b = rgb_b / gain
    return _chroma(np.clip(rgb_a, 0, 255)), _chroma(np.clip(rgb_b, 0, 255))


def pair_gain(a: np.ndarray, b: np.ndarray, where: np.ndarray) -> float:
    """How much brighter view b is than view a (two aligned three-plane views, float): the
    commonest ratio of their RGB channels (the mode in steps of 0.01, then the median of
    the ratios within a step of it) over the coloured pixels (``GAIN_COLOR``) and the grey
    fills (no colour, ``COLOR_PRESENT``, and flat, ``GAIN_FILL``, in both) of ``where``,
    channel by channel where neither picture has the channel dark (a ratio of small levels
    is noise) nor clipped at white (a clipped channel is darker than the gain makes it:
    within ``GAIN_CLIPPED`` of white for a coloured pixel, whose RGB the chroma blocks
    blur; within ``CLIPPED`` for a grey fill's, but its darker picture's within
    ``GAIN_CLIPPED`` too: white paper, whose levels in both are a recompression's noise);
    1 with fewer than ``TONE_MIN_PIXELS`` such channels. The grey fills too: a drawing
    whose only colours are bright inks clipping in any brighter copy (a yellow rope, every
    strand's red at white) says the gain nowhere else. Only fills: a blend of black ink
    and white paper keeps its level (the paper clips), and so does a hatching finer than
    the view's pixels, which looks flat: where such greys outnumber the rest the gain read
    is 1 and the cells are compared as they are. Channel by channel, not grey
    level by grey level: a saturated ink has a channel at white already, and a brighter
    copy clips its next, so the grey levels of a bright drawing's inks rise by less than
    the gain while their darkest channel rises by all of it. The commonest, not the
    median: a drawing's flat inks agree on it, while the edges blending them with white
    paper, which stays white, fall lower. A gain, not ``linear_tone_curve``'s line: a line
    fitted to a flat drawing's few colours and their edges can tilt far from any copy's."""
    import cv2

    rgb_a, rgb_b = _rgb(a), _rgb(b)
    coloured, fill = where.copy(), where.copy()
    for view in (a, b):
        # two planes added, not summed along the last axis: the same floats, 15x faster
        chroma = np.abs(view[..., 1] - 128) + np.abs(view[..., 2] - 128)
        coloured &= chroma >= GAIN_COLOR
        level = view[..., 0].astype(np.float32)
        spread = cv2.blur(level * level, (5, 5)) - cv2.blur(level, (5, 5)) ** 2
        fill &= (chroma < COLOR_PRESENT) & (spread < GAIN_FILL**2)
    darker, brighter = np.minimum(rgb_a, rgb_b), np.maximum(rgb_a, rgb_b)
    usable = (darker >= TONE_DARK) & (darker < 255 - GAIN_CLIPPED)
    # a grey fill's channels are its grey level, unblended with a neighbour's chroma: the
    # brighter picture's may come near white (a grey bar brightened), not the darker's
    # (white paper either way, its levels a recompression's noise)
    usable &= (coloured[..., None] & (brighter < 255 - GAIN_CLIPPED)) | (
        fill[..., None] & (brighter < 255 - CLIPPED)
    )
    if usable.sum() < TONE_MIN_PIXELS:
        return 1.0
    ratio = rgb_b[usable] / rgb_a[usable]
    counts, edges = np.histogram(ratio, bins=GAIN_BINS, range=GAIN_RANGE)
    k = int(np.argmax(counts))
    near = np.abs(ratio - (edges[k] + edges[k + 1]) / 2) <= edges[1] - edges[0]
    return float(np.median(ratio[near]))


def aligned_gain(a: np.ndarray, b: np.ndarray, model: np.ndarray) -> float:
    """``pair_gain`` of three-plane view a warped onto view b by ``model``, where both are."""
    warped, inside = onto(a, b, model)
    return pair_gain(warped, b.astype(np.float32), inside > 0)


def brightened(a: np.ndarray, b: np.ndarray, gain: float) -> tuple[np.ndarray, np.ndarray]:
    """The grey planes of views a and b (float), the darker's as it looks brightened by the
    pair's ``gain`` (b's levels over a's): its RGB channels scaled and clipped at white,
    as a brighter copy's were; both unchanged at a gain of 1 or for a grey view."""
    ga, gb = grey(a).astype(np.float32), grey(b).astype(np.float32)
    if gain > 1 and a.ndim == 3:
        ga = _luma(np.clip(_rgb(a.astype(np.float32)) * gain, 0, 255))
    elif gain < 1 and b.ndim == 3:
        gb = _luma(np.clip(_rgb(b.astype(np.float32)) / gain, 0, 255))
    return ga, gb


def _luma(rgb: np.ndarray) -> np.ndarray:
    """The grey level (JPEG's Y) of RGB pixels."""
    return np.asarray(0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2], np.float32)


def _rgb(ycbcr: np.ndarray) -> np.ndarray:
    """RGB of a three-plane view (JPEG's YCbCr, as PIL converts), unclipped."""
    y, cb, cr = ycbcr[..., 0], ycbcr[..., 1] - 128, ycbcr[..., 2] - 128
    return np.dstack([y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb])


def _chroma(rgb: np.ndarray) -> np.ndarray:
    """Cb and Cr off grey (0: grey) of RGB pixels."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    return np.dstack(
        [-0.168736 * r - 0.331264 * g + 0.5 * b, 0.5 * r - 0.418688 * g - 0.081312 * b]
    ).astype(np.float32)


def _tone_residual(ma: np.ndarray, mb: np.ndarray, whole: np.ndarray) -> float:
    """How far the cells' mean grey levels are from one monotone curve (light and dark
    variants of a design move regions differently), in units of b's spread."""
    bins = np.clip((ma[whole] / 16).astype(int), 0, 15)
    centres, medians = [], []
    for k in np.unique(bins):
        centres.append(float(np.median(ma[whole][bins == k])))
        medians.append(float(np.median(mb[whole][bins == k])))
    fitted = np.interp(ma[whole], centres, np.maximum.accumulate(medians))
    spread = max(float(mb[whole].std()), 1.0)
    return float(np.percentile(np.abs(mb[whole] - fitted), 90) / spread)


def compare_features(
    a: np.ndarray,
    fa: Features,
    b: np.ndarray,
    fb: Features,
    config: Config | None = None,
    matcher: Any = None,
    method: str = CELLS,
) -> LocalEvidence:
    """``compare`` with both views' features already found (the benchmark finds each
    picture's once)."""
    config = config or Config()
    matcher = matcher or make_matcher(config)
    direct = geometry(fa.direct, fb.direct, config, matcher)
    flipped = geometry(fa.mirror, fb.direct, config, matcher)
    mirrored = flipped.inliers > direct.inliers
    best = flipped if mirrored else direct
    cells, color = NOT_COMPARED, math.nan
    if best.model is not None and best.inliers >= MIN_ALIGNED:
        first = np.ascontiguousarray(a[:, ::-1]) if mirrored else a
        cells, model = best_aligned(first, b, best.model, method)
        if first.ndim == 3 and b.ndim == 3:
            cells, color = _in_colour(first, b, model, method, cells)
    elif a.shape[:2] == b.shape[:2] and a.ndim == 3 and b.ndim == 3:
        # no transform to compare through: pictures of one frame are compared as they are
        # (a brighter, recompressed or blurred copy of a texture or a faint drawing has too
        # few keypoints left), and said to have been only where their colours and their
        # cells agree: disagreeing there says nothing of a copy that moved (a crop, a
        # shift), and without keypoints to corroborate them grey cells alone agree across
        # the colour variants of one design (a grey copy of one is like the others as is)
        as_is, as_is_color = _in_colour(a, b, AS_IS, method)
        if as_is.p25 >= CELLS_AGREE:
            cells, color, mirrored = as_is, as_is_color, False
    return LocalEvidence(best.inliers, best.matches, mirrored, cells, color)


def _in_colour(
    a: np.ndarray, b: np.ndarray, model: np.ndarray, method: str, cells: Cells | None = None
) -> tuple[Cells, float]:
    """Colour views a and b through ``model``: the distance of their cells' colours and
    their cells, where the colours agree once the darker picture is brightened by the pair's
    gain, so brightened if they agree better. ``cells``: the cells compared in grey, kept
    whatever the colours say; None: compared only where the colours agree (NOT_COMPARED
    elsewhere, saving the comparison)."""
    gain = aligned_gain(a, b, model)
    color = aligned_color(a, b, model, gain)
    agree = color <= COLORS_AGREE
    if cells is None:
        if not agree:
            return NOT_COMPARED, color
        cells = aligned(a, b, model, method)
    if agree and gain != 1.0:
        toned = aligned(*brightened(a, b, gain), model, method)
        if toned.p25 > cells.p25:
            cells = toned
    return cells, color


def compare(a: np.ndarray, b: np.ndarray, config: Config | None = None) -> LocalEvidence:
    """What two views' pixels say: the better orientation's transform from a to b and, when
    it has at least ``MIN_ALIGNED`` inliers, the cells compared through it (without one,
    views of one frame compared as they are, kept where their colours and cells agree)."""
    config = config or Config()
    return compare_features(a, features(a, config), b, features(b, config), config)
