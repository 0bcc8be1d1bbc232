"""Plain pictures judged on their pixels (verify.decide with ``Local.layout``,
lookalike.localmatch.layout), and agreeing cells lifting the embedding veto: a plain page and
its copies are claimed, different plain pages, a light and a dark variant, and colourless
plain pages are not; the pipeline does the same on real pixels."""

from __future__ import annotations

import io
import itertools
import math

import numpy as np
import pytest
from PIL import Image, ImageOps

from lookalike import localmatch as lm
from services.indexer.duplicates import Duplicate, Pair, group_duplicates, verify_pairs
from services.indexer.localpairs import PairLocal
from services.indexer.verify import (
    PLAIN_MAX_COLOR,
    PLAIN_MAX_LAYOUT,
    STRUCTURAL,
    Evidence,
    Local,
    VerifyConfig,
    decide,
    verify,
)
from services.replica import variants
from tests.indexer.test_localpairs import CLOSE, ROTATED, _table

NAN = math.nan


def _plain(layout: list[float], color: list[int], score: float = NAN):
    n = len(layout)
    d = np.array([[ROTATED[k]] * n for k in STRUCTURAL])
    local = Local(np.full(n, 3.0), np.full(n, score), np.array(layout), np.full(n, NAN))
    return decide(d, np.full(n, 0.5), np.array(color), np.full(n, 0.2), VerifyConfig(), local)[
        0
    ].tolist()


def test_a_plain_pair_is_claimed_on_its_layouts_and_colours_only() -> None:
    near, far = PLAIN_MAX_LAYOUT - 0.5, PLAIN_MAX_LAYOUT + 0.5
    # both colourful, alike in colour and in grey layout: a copy, however far its hashes
    # and embedding are
    assert _plain([near], [PLAIN_MAX_COLOR]) == [True]
    # grey layouts apart, colours apart, or a colourless picture: never
    assert _plain([far, near, near], [0, PLAIN_MAX_COLOR + 1, -1]) == [False] * 3
    assert _plain([NAN], [0]) == [False]  # no views: judged as before, not claimed
    d = np.array([[ROTATED[k]] for k in STRUCTURAL])
    assert not decide(d, np.array([0.5]), np.array([0]), None, VerifyConfig(), None)[0][0]
    off = VerifyConfig(plain_max_color=None, plain_max_layout=None)
    local = Local(np.array([3.0]), np.array([NAN]), np.array([0.0]), np.array([NAN]))
    assert not decide(d, np.array([0.5]), np.array([0]), None, off, local)[0][0]


def test_an_informative_pair_is_not_claimed_on_its_layouts() -> None:
    d = np.array([[ROTATED[k]] for k in STRUCTURAL])
    local = Local(np.array([3.0]), np.array([NAN]), np.array([0.0]), np.array([NAN]))
    assert not decide(d, np.array([20.0]), np.array([0]), None, VerifyConfig(), local)[0][0]


def test_agreeing_cells_lift_the_embedding_veto() -> None:
    config = VerifyConfig()
    assert config.veto_cosine is not None
    d = np.array([[CLOSE[k]] * 3 for k in STRUCTURAL])
    low = np.full(3, config.veto_cosine - 0.1)
    local = Local(np.full(3, 60.0), np.array([0.99, 0.5, NAN]), np.full(3, NAN), np.full(3, NAN))
    info, color = np.full(3, 20.0), np.full(3, -1)
    assert decide(d, info, color, low, config, None)[0].tolist() == [False] * 3
    # cells alike: the veto is lifted; cells apart or not compared: it stands
    assert decide(d, info, color, low, config, local)[0].tolist() == [True, False, False]
    kept = VerifyConfig(cells_lift_veto=False)
    assert decide(d, info, color, low, kept, local)[0].tolist() == [False] * 3
    said = verify(Evidence(CLOSE, information=20.0, cosine=0.5, inliers=60, local_score=0.99))
    assert said.match and any(r.endswith("but the cells agree") for r in said.reasons)


def test_verify_says_why_a_plain_pair_was_claimed_or_not() -> None:
    copy = verify(Evidence(ROTATED, information=0.5, color=2, inliers=2, layout=1.5))
    assert copy.match and any(r.endswith("a plain copy") for r in copy.reasons)
    other = verify(Evidence(ROTATED, information=0.5, color=2, layout=PLAIN_MAX_LAYOUT + 10))
    assert not other.match and any(r.endswith("different plain pictures") for r in other.reasons)
    grey = verify(Evidence(ROTATED, information=0.5, color=None, layout=0.0))
    assert not grey.match
    assert any("without colour is never claimed" in r for r in grey.reasons)


def page(tone: tuple[float, float, float], slope: float = 20.0, seed: int = 0) -> Image.Image:
    """A plain page: one tone, a gentle left-to-right gradient, scanner grain."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, slope, 400)[None, :, None]
    pixels = np.array(tone)[None, None, :] + ramp + rng.normal(0, 1.5, (300, 400, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def _copy(picture: Image.Image, edit: str) -> Image.Image:
    return Image.open(io.BytesIO(variants.edited_bytes(picture, edit))).convert("RGB")


@pytest.mark.parametrize("edit", ["resize", "jpeg", "crop_center", "border", "mirror", "text"])
def test_a_plain_page_and_its_copy_have_alike_layouts(edit: str) -> None:
    original = page((200, 170, 140))
    assert lm.layout(lm.view(original)).shape == (lm.LAYOUT_GRID, lm.LAYOUT_GRID)
    got = lm.layout_distance(
        lm.layout(lm.view(original)), lm.layout(lm.view(_copy(original, edit)))
    )
    assert got <= PLAIN_MAX_LAYOUT


def test_different_plain_pages_have_layouts_apart() -> None:
    base = lm.layout(lm.view(page((200, 170, 140))))
    others = [
        page((180, 150, 120)),  # a darker page of the same colour
        page((200, 170, 140), slope=-20.0, seed=1),  # the gradient the other way
        ImageOps.invert(page((200, 170, 140))),  # the dark variant of the design
    ]
    for other in others:
        assert lm.layout_distance(base, lm.layout(lm.view(other))) > PLAIN_MAX_LAYOUT


def test_a_thin_view_has_a_layout_and_a_non_view_is_refused_clearly() -> None:
    assert lm.layout(np.full((3, 320), 128, np.uint8)).shape == (lm.LAYOUT_GRID, lm.LAYOUT_GRID)
    assert lm.layout(np.zeros((4, 4, 3), np.uint8)).shape == (lm.LAYOUT_GRID, lm.LAYOUT_GRID)
    with pytest.raises(ValueError, match="a grey or a three-plane picture"):
        lm.layout(np.zeros((4, 4, 2), np.uint8))


def test_the_pipeline_claims_a_plain_copy_and_not_another_plain_page() -> None:
    original = page((200, 170, 140))
    named = {
        "page": original,
        "page-border": _copy(original, "border"),
        "page-resize": _copy(original, "resize"),
        "darker": page((175, 150, 120), seed=2),
        "grey": page((170, 170, 170), seed=3),
        "grey-resize": _copy(page((170, 170, 170), seed=3), "resize"),
    }
    table = _table(named)
    assert table.info is not None and (table.info < VerifyConfig().min_information).all()
    everyone = [Pair(a, b, "phash", 0) for a, b in itertools.combinations(sorted(named), 2)]

    def judged(local: PairLocal | None) -> list[Duplicate]:
        order = np.argsort(table.ids)
        assert table.info is not None and table.color is not None
        return verify_pairs(
            table.ids[order],
            table.values[order],
            table.kinds,
            table.info[order],
            table.color[order],
            everyone,
            local=local,
        )

    assert judged(None) == []  # hashes alone claim no plain pair
    views = {name: lm.view(p) for name, p in named.items()}
    pairs = judged(PairLocal(views.get))
    claimed = {(p.a, p.b) for p in pairs}
    assert claimed == {
        ("page", "page-border"),
        ("page", "page-resize"),
        ("page-border", "page-resize"),
    }
    assert all(p.layout <= PLAIN_MAX_LAYOUT and not p.local for p in pairs)
    groups = group_duplicates(pairs)
    assert groups["page-resize"] == ("page", 3) and "darker" not in groups
    assert "grey" not in groups  # a colourless plain page: its copy is not told from others
