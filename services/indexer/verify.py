"""Is a candidate pair really a near-duplicate? A pure function of the pair's evidence.

A single hash kind within a threshold is weak evidence: on pictures the project had never
seen, pairs claimed that way were 79% right. Candidates found by any kind (at radii looser
than a claim needs) are therefore judged on everything known about the pair:

- **The hashes together**: a weighted sum of the four structural kinds' distances, in the
  orientation (direct or mirrored) where they agree best. The weights say how much each kind
  separates copies from different pictures (chosen by ``bench/bench_quality.py`` on the
  tuning set); a copy moves every kind a little, two different pictures that collide in one
  kind rarely collide in the others.
- **Information**: a near-uniform picture's hashes are decided by noise and faint gradients,
  so a pair where either picture has less than ``min_information`` detail is never claimed
  on them (lookalike.hashing.information); only its pixels can tell (plain pictures, below).
- **Colour**: copies keep their colours, so two colourful pictures whose colour layouts
  (lookalike.hashing.color_layout: the chromaticity of a 3x3 grid, which brightness does
  not move) are far apart are not claimed; a grayscale copy of a colour picture has no
  colours to compare and is let through. White paper dilutes a drawing's colours by its
  share of each cell, which a crop, a frame or a rotation's filled corners change, so colours
  that differ only by strength (up to a factor) agree within a tighter limit
  (duplicates.color_distance); a colour variant of one design (another hue) does not.
  Where the pictures' views were compared through a transform (local evidence, below), the
  colours also agree when they do cell against cell there (``local.color``:
  lookalike.localmatch.aligned_color, within ``local_max_color``): a rotation's filled
  corners, a crop or a frame move a whole picture's colour layout, not the colours of the
  cells both pictures have. Either agreeing is enough: a brighter copy's clipped colours
  differ cell against cell (by more than recompression or noise moves them) while its
  colour layout keeps them, so the cells alone would refuse copies the layouts find.
- **Embedding cosine**, when both pictures have learned embeddings (lookalike.embedding):
  passed in as ``cosine``, it lets a pair with weaker hash agreement (a rotation, a crop off
  one side, noise, a caption: up to ``loose_weighted``) be claimed when the two pictures'
  embeddings agree strongly (``min_cosine``), and vetoes hash matches whose embeddings
  disagree (``veto_cosine``: related but different pictures, a painting painted over).
  A pair without a cosine is judged on the rest. The three are settings
  (``LOOKALIKE_NEARDUP_*``, declared in lookalike.settings with how they were chosen); they
  belong to the embedding recipe they were measured with.
- **Local evidence**, when both pictures' verification views are at hand
  (lookalike.localmatch: keypoints under one transform, then the pictures compared through
  it cell by cell): passed in as ``local``, it vetoes a claimed pair whose cells disagree
  (``local_min_score``: a picture painted over another keeps its line art, so hashes and
  embeddings agree, its cells do not), and claims a pair on geometry alone
  (``local_claim_inliers`` inliers, the cells agreeing, and the embedding cosine the
  embedding claim asks: rotations, crops and noise beyond the hash limit). That cosine
  guards against pictures whose grey structure alone agrees (one caption on two blank
  pages); where their colours agree through the transform too (``local_max_color``), the
  pixels have said more than grey structure, and the cosine need only stay at or above
  the veto (``veto_cosine``): a much brighter copy's clipped inks move its embedding
  further than a crop moves a copy's (``colour_claim_at_veto``). A pair whose
  pictures could not be compared (no view, too few inliers, no textured cell) is judged on
  the rest; pictures of one frame without a transform are compared as they are, and
  count as compared only where their cells and colours agree (a brighter copy of a
  texture; colours, since grey cells alone agree across a design's colour variants). Cells
  that agree also lift the embedding veto: a grayscale or framed copy can move its
  embedding below ``veto_cosine``, and the pixels say it is the same picture.
- **Plain pictures**, too little detail for hashes and too few keypoints for a transform,
  are claimed on their pixels alone (``local.layout``: lookalike.localmatch.layout_distance,
  the absolute grey levels of the margin-trimmed pictures in an 8x8 grid) when both are
  colourful, their colour layouts agree within ``plain_max_color`` and their grey layouts
  within ``plain_max_layout``: a plain page's resized, recompressed, cropped or framed copy
  keeps its tone and layout, two different pages or a light and a dark variant do not. A
  colourless plain pair (a grayscale copy, a white page) is never claimed: grey pages of one
  tone are told apart by nothing but their colour, which a grayscale copy has lost.

``decide`` judges arrays of pairs at once (the indexer's join); ``verify`` judges one pair
and says why, for the search answers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from lookalike.localmatch import CELLS_AGREE, COLORS_AGREE, MIN_ALIGNED
from lookalike.settings import Settings

STRUCTURAL: tuple[str, ...] = ("phash", "dhash", "whash", "ahash")

# Chosen by bench/bench_quality.py on the tuning set (the 174 Met paintings with every planted
# edit, and 48 blank pages), never on the pictures it reports on:
# - WEIGHTS: a logistic regression of "same family" on the four distances of the candidate
#   pairs, scaled to sum to 1 (so the weighted distance is in bits);
# - MAX_WEIGHTED: the largest threshold (0.5 steps) keeping the tuning precision >= 0.999
#   (14.5: 0.9992, recall of original-edit pairs 0.964; 15: 0.9984);
# - MIN_INFORMATION: between the blank pages' highest information (0.95) and the paintings'
#   lowest (6.3), geometrically;
# - MAX_COLOR: what 99.5% of the colourful original-edit pairs' plain colour differences stay
#   within;
# - MAX_DILUTED_COLOR, with duplicates.COLOR_DILUTION: colours that differ only by strength
#   (each cell's stronger colour scaled down by up to COLOR_DILUTION, 4: neutral paper dilutes
#   a drawing's colours by its share of each cell, which a crop, a frame or a rotation
#   changes) agree within MAX_DILUTED_COLOR (duplicates.color_distance): among such rules,
#   over the pairs the whole pipeline claims with the colour check off, the one adding no
#   pair of different pictures that finds most copies (bench/README.md, "Colours diluted by
#   paper").
WEIGHTS: dict[str, float] = {"phash": 0.45, "dhash": 0.30, "whash": 0.03, "ahash": 0.22}
MAX_WEIGHTED = 14.5
MIN_INFORMATION = 2.4
MAX_COLOR = 16
MAX_DILUTED_COLOR = 2.5
# Local evidence, chosen by bench/bench_local.py on the same tuning set (bench/README.md, "Local
# features with geometric verification" and "Cells through the pair's tone curve"):
# - LOCAL_MIN_SCORE: the cells' 25th-percentile correlation (the first picture through the
#   pair's clipped linear tone curve, through the keypoints' transform or its refinement on
#   the pixels, whichever agrees better: localmatch.COMPARISON) that 99.5% of the tuning
#   original-edit pairs the rule above claims reach (0.977 before the refinement);
# - LOCAL_CLAIM_INLIERS: the fewest inliers at which geometry and that veto together keep the
#   tuning precision >= 0.999 (the least the comparison itself needs: localmatch.MIN_ALIGNED;
#   since the blank pages are planted, their captioned copies hold the chooser at 158: kept at
#   8, bench/README.md).
# Held out (other pictures), with the plain rule below and the colours where the pictures
# align: bench/README.md, "Transforms refined on the pixels, colours where the pictures
# align".
LOCAL_MIN_SCORE = CELLS_AGREE  # 0.98
LOCAL_CLAIM_INLIERS = 8
# - LOCAL_MAX_COLOR: the aligned cells' colour distance (localmatch.aligned_color, the darker
#   picture brightened to the other's levels) that 99.5% of the tuning original-edit pairs
#   compared in colour, their cells agreeing, stay within (bench/bench_quality.py,
#   ``tune_local_color``: 2.8 over 1,733 pairs with the chroma in 2 px blocks; median 0.43,
#   99th percentile 2.35, max 3.58, 4 of the 6 beyond brightened copies. 2.9 with 4 px
#   blocks, max 4.01; 4.64 with the gain off grey levels, 10.6 before the brightening).
LOCAL_MAX_COLOR = COLORS_AGREE  # 2.8
# Plain pairs (information below MIN_INFORMATION), chosen by bench/bench_quality.py
# (``tune_plain``) on the tuning set's blank pages planted with every edit: among the rules
# "both colourful, colour layouts within c, grey layouts within t" that claim no pair of
# different pages, the one finding most original-edit pairs (332 of the 528 below the guard;
# the nearest pair of different pages is 9.9 grey levels apart). Held out: bench/README.md.
PLAIN_MAX_COLOR = 6
PLAIN_MAX_LAYOUT = 7.0
# Candidates: pairs within these radii in any one kind are judged (duplicates.py).
CANDIDATE_RADII: dict[str, int] = {"phash": 14, "dhash": 14}
# ... and each picture's nearest others by embedding (the indexer's LOOKS_LIKE neighbours):
# rotations and crops that no hash radius proposes.
EMBEDDING_CANDIDATES = 10


def _setting(name: str) -> float:
    """A default declared in the settings model (lookalike.settings)."""
    return float(Settings.model_fields[name].default)


@dataclass(frozen=True)
class VerifyConfig:
    weights: Mapping[str, float] = field(default_factory=lambda: dict(WEIGHTS))
    max_weighted: float = MAX_WEIGHTED
    min_information: float = MIN_INFORMATION
    max_color: int | None = MAX_COLOR
    # Embedding rules (None: off); they only act on pairs whose cosine is known.
    # claim when cosine >= min_cosine and weighted <= loose_weighted
    min_cosine: float | None = _setting("neardup_min_cosine")
    loose_weighted: float | None = _setting("neardup_loose_weighted")
    veto_cosine: float | None = _setting("neardup_veto_cosine")  # never claim below this
    # Local rules (None: off); they only act on pairs whose pictures were compared.
    local_min_score: float | None = LOCAL_MIN_SCORE  # never claim below this cell score
    # claim when inliers >= local_claim_inliers, the score passes and cosine >= min_cosine
    local_claim_inliers: int | None = LOCAL_CLAIM_INLIERS
    cells_lift_veto: bool = True  # cells that agree lift the embedding veto
    # a geometric claim whose colours agree through the transform (local_max_color) asks
    # only for a cosine at or above veto_cosine, not min_cosine
    colour_claim_at_veto: bool = True
    # colours compared through the transform also agree within this (None: not weighed)
    local_max_color: float | None = LOCAL_MAX_COLOR
    # claim a plain pair when both are colourful, colour <= plain_max_color and the grey
    # layouts' distance <= plain_max_layout (None: plain pairs are never claimed)
    plain_max_color: int | None = PLAIN_MAX_COLOR
    plain_max_layout: float | None = PLAIN_MAX_LAYOUT

    @classmethod
    def from_settings(cls, settings: Settings) -> VerifyConfig:
        return cls(
            min_cosine=settings.neardup_min_cosine,
            loose_weighted=settings.neardup_loose_weighted,
            veto_cosine=settings.neardup_veto_cosine,
        )


@dataclass(frozen=True)
class Evidence:
    """What is known about one pair of pictures."""

    distances: Mapping[str, int]  # per hash kind, in the orientation below
    mirrored: bool = False  # the distances compare one picture with the other's mirror image
    information: float = math.nan  # the smaller of the two pictures' (NaN: not measured)
    color: int | None = None  # colorhash distance; None when either picture has no colour
    cosine: float | None = None  # embedding cosine, when both pictures have one
    # lookalike.localmatch: inliers (None: no views to compare) and cell score (NaN: the
    # pictures could not be compared)
    inliers: int | None = None
    local_score: float = math.nan
    layout: float = math.nan  # grey layouts' distance (lookalike.localmatch.layout_distance)
    # the aligned cells' colours (lookalike.localmatch.aligned_color; NaN: not compared)
    local_color: float = math.nan


@dataclass(frozen=True)
class Local:
    """Local evidence for n pairs: inliers (NaN: no views), the cells' score and their
    colours' distance (NaN: not compared), as lookalike.localmatch.LocalEvidence gives
    them, and the distance of the two pictures' grey layouts (NaN: no views)."""

    inliers: np.ndarray
    score: np.ndarray
    layout: np.ndarray
    color: np.ndarray

    @classmethod
    def unknown(cls, n: int) -> Local:
        return cls(*(np.full(n, np.nan) for _ in range(4)))

    @classmethod
    def perfect(cls, n: int) -> Local:
        """What a copy would show: the pairs whose verdict local evidence could change are
        those ``decide`` claims with it."""
        return cls(np.full(n, np.inf), np.ones(n), np.zeros(n), np.zeros(n))

    def put(self, rows: np.ndarray | list[int], found: Local) -> None:
        """Take ``found`` (evidence for ``rows`` of these pairs, in that order)."""
        self.inliers[rows], self.score[rows], self.layout[rows], self.color[rows] = (
            found.inliers,
            found.score,
            found.layout,
            found.color,
        )


@dataclass(frozen=True)
class Verdict:
    match: bool
    weighted: float  # the weighted hash distance in bits (lower: more alike)
    reasons: tuple[str, ...]  # what decided it, e.g. ("weighted distance 4.2 <= 13", ...)


def weighted_distance(distances: np.ndarray, config: VerifyConfig) -> np.ndarray:
    """(len(STRUCTURAL), n) distances -> (n,) weighted distances."""
    w = np.array([config.weights[k] for k in STRUCTURAL], dtype=np.float64)
    return np.asarray((w[:, None] * np.asarray(distances, dtype=np.float64)).sum(axis=0))


def decide(
    distances: np.ndarray,
    information: np.ndarray,
    color: np.ndarray,
    cosine: np.ndarray | None = None,
    config: VerifyConfig | None = None,
    local: Local | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Judge n pairs at once: ``distances`` (len(STRUCTURAL), n) in the pairs' orientation,
    ``information`` (n,) the smaller of each pair's (NaN: unknown, not held against it),
    ``color`` (n,) colorhash distances with -1 where either picture has no colour,
    ``cosine`` (n,) or None (NaN where unknown), ``local`` or None. Returns (match,
    weighted)."""
    config = config or VerifyConfig()
    weighted = weighted_distance(distances, config)
    information = np.asarray(information, dtype=np.float64)
    color = np.asarray(color, dtype=np.int64)
    informative = ~(information < config.min_information)  # NaN passes
    colors_agree = (
        np.ones(len(weighted), bool)
        if config.max_color is None
        else (color < 0) | (color <= config.max_color)
    )
    if local is not None and config.local_max_color is not None:
        colors_agree |= local.color <= config.local_max_color  # NaN: not compared in colour
    match = weighted <= config.max_weighted
    # the pictures' cells agree (False where they were not compared)
    cells_agree = (
        np.zeros(len(weighted), bool)
        if local is None or config.local_min_score is None or not config.cells_lift_veto
        else local.score >= config.local_min_score
    )
    if cosine is not None:
        cos = np.asarray(cosine, dtype=np.float64)
        if config.min_cosine is not None and config.loose_weighted is not None:
            match |= (cos >= config.min_cosine) & (weighted <= config.loose_weighted)
        if config.veto_cosine is not None:
            match &= ~(cos < config.veto_cosine) | cells_agree
        if (
            local is not None
            and config.local_claim_inliers is not None
            and config.min_cosine is not None
        ):
            geometric = local.inliers >= config.local_claim_inliers
            match |= geometric & (cos >= config.min_cosine)
            if _colour_claims(config):
                assert config.local_max_color is not None and config.veto_cosine is not None
                in_colour = local.color <= config.local_max_color  # NaN: not compared
                match |= geometric & in_colour & (cos >= config.veto_cosine)
    if local is not None and config.local_min_score is not None:
        match &= ~(local.score < config.local_min_score)
    match &= informative & colors_agree
    if (
        local is not None
        and config.plain_max_color is not None
        and config.plain_max_layout is not None
    ):
        match |= (
            ~informative
            & (color >= 0)
            & (color <= config.plain_max_color)
            & (local.layout <= config.plain_max_layout)
        )
    return match, weighted


def _colour_claims(config: VerifyConfig) -> bool:
    """Whether a geometric claim in colour asks only for the veto's cosine."""
    return (
        config.colour_claim_at_veto
        and config.local_max_color is not None
        and config.veto_cosine is not None
    )


def verify(evidence: Evidence, config: VerifyConfig | None = None) -> Verdict:
    """Judge one pair and say why."""
    config = config or VerifyConfig()
    d = np.array([[evidence.distances[k]] for k in STRUCTURAL])
    color = -1 if evidence.color is None else evidence.color
    cos = None if evidence.cosine is None else np.array([evidence.cosine])
    local = (
        None
        if evidence.inliers is None and math.isnan(evidence.layout)
        else Local(
            np.array([math.nan if evidence.inliers is None else float(evidence.inliers)]),
            np.array([evidence.local_score]),
            np.array([evidence.layout]),
            np.array([evidence.local_color]),
        )
    )
    match, weighted = decide(
        d, np.array([evidence.information]), np.array([color]), cos, config, local
    )
    w = float(weighted[0])
    reasons = [
        f"weighted distance {w:.1f} {'<=' if w <= config.max_weighted else '>'} "
        f"{config.max_weighted:g} ("
        + ", ".join(f"{k} {evidence.distances[k]}" for k in STRUCTURAL)
        + ")"
    ]
    if evidence.mirrored:
        reasons.append("mirrored")
    if evidence.information < config.min_information:
        reasons.append(
            f"too little detail to compare by hashes ({evidence.information:.1f} < "
            f"{config.min_information:g})"
        )
        if not math.isnan(evidence.layout):
            reasons.append(_plain_reason(evidence, config))
    if evidence.color is not None and config.max_color is not None:
        agree = evidence.color <= config.max_color
        reasons.append(
            f"colours {'agree' if agree else 'differ'} (colour layout distance {evidence.color})"
        )
    if not math.isnan(evidence.local_color) and config.local_max_color is not None:
        agree = evidence.local_color <= config.local_max_color
        reasons.append(
            f"colours {'agree' if agree else 'differ'} where the pictures align (distance "
            f"{evidence.local_color:.1f} {'<=' if agree else '>'} {config.local_max_color:g})"
        )
    if evidence.cosine is not None and not math.isnan(evidence.cosine):
        lifted = (
            config.local_min_score is not None and evidence.local_score >= config.local_min_score
        )
        in_colour = (
            _colour_claims(config)
            and config.local_claim_inliers is not None
            and evidence.inliers is not None
            and evidence.inliers >= config.local_claim_inliers
            and evidence.local_color <= (config.local_max_color or 0.0)
        )
        reasons.append(_cosine_reason(evidence.cosine, w, config, lifted, in_colour))
    if evidence.inliers is not None:
        reasons.append(_local_reason(evidence.inliers, evidence.local_score, config))
    return Verdict(bool(match[0]), round(w, 2), tuple(reasons))


def _plain_reason(evidence: Evidence, config: VerifyConfig) -> str:
    said = f"grey layouts {evidence.layout:.1f} apart"
    limit, colour = config.plain_max_layout, config.plain_max_color
    if limit is None or colour is None:
        return said
    if evidence.color is None:
        return f"{said}, but a plain picture without colour is never claimed"
    alike = evidence.layout <= limit and evidence.color <= colour
    return (
        f"{said} ({'<=' if evidence.layout <= limit else '>'} {limit:g}), colour layouts "
        f"{evidence.color} ({'<=' if evidence.color <= colour else '>'} {colour:g}): "
        + ("a plain copy" if alike else "different plain pictures")
    )


def _local_reason(inliers: int, score: float, config: VerifyConfig) -> str:
    said = f"{inliers} keypoints under one transform"
    if math.isnan(score):
        return f"{said}: the pictures could not be compared"
    if inliers < MIN_ALIGNED:  # too few for a transform: compared as they are
        said = f"{said} (too few to align them): compared as they are"
    limit = config.local_min_score
    if limit is None:
        return f"{said}, cells alike {score:.3f}"
    return f"{said}, cells alike {score:.3f} {'>=' if score >= limit else '<'} {limit:g}" + (
        "" if score >= limit else ": the pictures differ"
    )


def _cosine_reason(
    cosine: float, weighted: float, config: VerifyConfig, lifted: bool, in_colour: bool
) -> str:
    said = f"embedding cosine {cosine:.3f}"
    if config.veto_cosine is not None and cosine < config.veto_cosine:
        if lifted:
            return f"{said} < {config.veto_cosine:g}, but the cells agree"
        return f"{said} < {config.veto_cosine:g}: the pictures differ"
    if in_colour and config.min_cosine is not None and cosine < config.min_cosine:
        return (
            f"{said} < {config.min_cosine:g}, but >= {config.veto_cosine:g}: enough for "
            "pictures that align in colour"
        )
    if (
        config.min_cosine is not None
        and config.loose_weighted is not None
        and weighted > config.max_weighted
        and cosine >= config.min_cosine
    ):
        within = weighted <= config.loose_weighted
        return (
            f"{said} >= {config.min_cosine:g}, weighted distance "
            f"{'<=' if within else '>'} {config.loose_weighted:g}"
        )
    return said
