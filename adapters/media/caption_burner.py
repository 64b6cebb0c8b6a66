"""Captions burned into the picture: the current cue in the lower third, the spoken word highlighted.

Each (cue, highlighted word) state is drawn once with Pillow as an RGBA block, turned into premultiplied
Y/U/V planes, and alpha-blended per frame into that block's region only; frames without a cue are not
touched. The font is Aileron Regular as Pillow (>= 10.1) embeds it: by Sora Sagano (dotcolon.net),
released into the public domain (CC0 1.0), so it ships with the dependency and needs no system font.
"""

from __future__ import annotations

import bisect
import functools
import unicodedata
from collections.abc import Sequence

import attrs
import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from domain.captions import Cue, cues
from domain.media import Word

WHITE = (255, 255, 255)
HIGHLIGHT = (255, 214, 0)  # the spoken word: a saturated yellow that reads on white and on dark scenes
OUTLINE = (0, 0, 0)
MAX_LINES = 3
TEXT_WIDTH = 0.88  # of the frame width
# Bottom of the text block above the frame's bottom: short-form apps lay their buttons and description
# over the lowest ~20 % of a 9:16 picture; a landscape or square frame only needs a margin.
PORTRAIT_MARGIN = 0.22
LANDSCAPE_MARGIN = 0.08
_ASCII_FOR = {"—": "-", "–": "-", "‐": "-", "‑": "-", "″": '"', "′": "'", "\u00a0": " "}


@attrs.frozen(eq=False)
class _Overlay:
    """One pre-rendered caption state at (x, y), both even: 0..256 alphas and premultiplied planes."""

    x: int
    y: int
    alpha: np.ndarray  # luma resolution, uint16
    luma: np.ndarray  # Y × alpha, uint16
    chroma_alpha: np.ndarray  # chroma resolution, uint16
    cb: np.ndarray
    cr: np.ndarray

    def blend(self, y: np.ndarray, u: np.ndarray, v: np.ndarray) -> None:
        h, w = self.alpha.shape
        _mix(y[self.y : self.y + h, self.x : self.x + w], self.alpha, self.luma)
        ch, cw = self.chroma_alpha.shape
        cy, cx = self.y // 2, self.x // 2
        _mix(u[cy : cy + ch, cx : cx + cw], self.chroma_alpha, self.cb)
        _mix(v[cy : cy + ch, cx : cx + cw], self.chroma_alpha, self.cr)


def _mix(region: np.ndarray, alpha: np.ndarray, premultiplied: np.ndarray) -> None:
    # 255 × 256 + 128 still fits uint16, so the blend needs no wider type.
    mixed = region.astype(np.uint16) * (256 - alpha) + premultiplied + 128
    region[:] = (mixed >> 8).astype(np.uint8)


def _font(size: int) -> ImageFont.FreeTypeFont:
    # Loaded per use (a fraction of a millisecond), not cached: a FreeType face is not for sharing
    # between the threads that render clips at the same time.
    font = ImageFont.load_default(size=size)
    if not isinstance(font, ImageFont.FreeTypeFont):  # Pillow built without FreeType: a fixed bitmap font
        raise RuntimeError("burned captions need Pillow with FreeType support")
    return font


@functools.cache
def _missing_glyph() -> bytes:
    return bytes(_font(24).getmask("\ue000"))


@functools.cache
def _drawable(char: str) -> bool:
    return char == " " or bytes(_font(24).getmask(char)) != _missing_glyph()


def printable(text: str) -> str:
    """``text`` in the glyphs the embedded font has (a subset of Latin): accents dropped, dashes plain."""
    out = []
    for char in unicodedata.normalize("NFKD", " ".join(text.split())):
        char = _ASCII_FOR.get(char, char)
        if _drawable(char):
            out.append(char)
    return "".join(out)


@attrs.define
class CaptionBurner:
    """Draws ``cues`` into yuv420p frames of ``width``×``height``; ``burn`` takes the frame's clip time."""

    cues: tuple[Cue, ...]
    width: int
    height: int
    _starts: list[float] = attrs.field(init=False)
    _cached: dict[tuple[int, int], _Overlay | None] = attrs.field(init=False, factory=dict)
    _art: tuple[int, _CueArt | None] | None = attrs.field(init=False, default=None)

    def __attrs_post_init__(self) -> None:
        self._starts = [c.start for c in self.cues]

    @classmethod
    def from_words(cls, words: Sequence[Word], offset: float, width: int, height: int) -> CaptionBurner:
        """Cues as the caption files have them, for a clip whose time 0 is ``offset`` in media time."""
        return cls(cues(words, offset), width, height)

    def state(self, t: float) -> tuple[int, int] | None:
        """(cue, spoken word) at clip time ``t``; word -1 before the cue's first word; None without a cue."""
        index = bisect.bisect_right(self._starts, t) - 1
        if index < 0 or t >= self.cues[index].end:
            return None
        spoken = [w.start for w in self.cues[index].words]
        return index, bisect.bisect_right(spoken, t) - 1

    def burn(self, frame: av.VideoFrame, t: float, *, in_place: bool = False) -> av.VideoFrame:
        """``frame`` with the caption of clip time ``t``; drawn into ``frame`` itself when ``in_place``
        (only for a frame nobody else holds: a decoder may still reference the frames it hands out)."""
        state = self.state(t)
        overlay = None if state is None else self._overlay(state)
        if overlay is None:
            return frame
        if frame.format.name != "yuv420p":
            frame, in_place = frame.reformat(format="yuv420p"), True
        if not in_place:
            copy = av.VideoFrame(frame.width, frame.height, "yuv420p")
            for i in range(3):
                np.copyto(_plane(copy, i), _plane(frame, i))
            frame = copy
        overlay.blend(*(_plane(frame, i) for i in range(3)))
        return frame

    def _overlay(self, state: tuple[int, int]) -> _Overlay | None:
        if state not in self._cached:
            index, spoken = state
            if self._art is None or self._art[0] != index:
                self._cached.clear()  # time runs forward: a past cue's states are not needed again
                texts = [printable(w.text) for w in self.cues[index].words]
                self._art = index, _CueArt.draw(texts, self.width, self.height)
            art = self._art[1]
            self._cached[state] = None if art is None else art.overlay(spoken)
        return self._cached[state]


def _plane(frame: av.VideoFrame, index: int) -> np.ndarray:
    plane = frame.planes[index]
    rows = np.frombuffer(memoryview(plane), np.uint8).reshape(plane.height, plane.line_size)
    return rows[:, : plane.width]


def font_size(width: int, height: int) -> int:
    """About 70 px on a 1080×1920 frame and 60 px on 1920×1080; never below 12 px."""
    return max(12, round(min(0.065 * width, 0.055 * height)))


def _outline(font: ImageFont.FreeTypeFont) -> int:
    return max(2, round(font.size * 0.12))


def _gap(font: ImageFont.FreeTypeFont) -> float:
    """Between words: a space, widened by the outline that would otherwise eat into it."""
    return font.getlength(" ") + _outline(font)


def _wrap(texts: Sequence[str], font: ImageFont.FreeTypeFont, limit: float) -> list[list[int]]:
    space = _gap(font)
    lines: list[list[int]] = []
    used = 0.0
    for i, text in enumerate(texts):
        if not text:
            continue
        length = font.getlength(text)
        if lines and used + space + length <= limit:
            lines[-1].append(i)
            used += space + length
        else:
            lines.append([i])
            used = length
    return lines


def _fit(texts: Sequence[str], width: int, height: int) -> tuple[ImageFont.FreeTypeFont, list[list[int]]]:
    """The largest size from the frame's caption size down to 70 % of it at which the cue takes at most
    MAX_LINES lines and no word overflows the frame (the smallest, wrapped, when none does)."""
    base, limit = font_size(width, height), width * TEXT_WIDTH
    for scale in (1.0, 0.9, 0.8, 0.7):
        font = _font(max(10, round(base * scale)))
        lines = _wrap(texts, font, limit)
        if len(lines) <= MAX_LINES and all(font.getlength(t) <= limit for t in texts):
            break
    return font, lines


@attrs.frozen(eq=False)
class _CueArt:
    """A cue laid out and drawn in white once; each state redraws only its highlighted word."""

    base: Image.Image
    font: ImageFont.FreeTypeFont
    texts: tuple[str, ...]
    places: dict[int, tuple[float, float]]  # word index -> where it is drawn in ``base``
    x: int
    y: int
    frame: tuple[int, int]

    @classmethod
    def draw(cls, texts: Sequence[str], width: int, height: int) -> _CueArt | None:
        font, lines = _fit(texts, width, height)
        if not lines:
            return None
        ascent, descent = font.getmetrics()
        line_height = round((ascent + descent) * 1.1)
        gap = _gap(font)
        widths = [sum(font.getlength(texts[i]) for i in line) + gap * (len(line) - 1) for line in lines]
        pad = _outline(font) + 2
        block_w = min(width, int(max(widths)) + 2 * pad)
        block_h = min(height, line_height * len(lines) + 2 * pad)
        places: dict[int, tuple[float, float]] = {}
        for row, (line, line_w) in enumerate(zip(lines, widths, strict=True)):
            x = (block_w - line_w) / 2
            for i in line:
                places[i] = (x, pad + row * line_height)
                x += font.getlength(texts[i]) + gap
        image = Image.new("RGBA", (block_w, block_h), (0, 0, 0, 0))
        draw = ImageDraw.Draw(image)
        for i in places:  # every outline first, so none covers a neighbour's fill
            _outlined(draw, places[i], texts[i], font)
        for i in places:
            _filled(draw, places[i], texts[i], font, WHITE)
        margin = PORTRAIT_MARGIN if height > width * 1.3 else LANDSCAPE_MARGIN
        x0 = max(0, (width - block_w) // 4 * 2)
        y0 = max(0, (round(height * (1 - margin)) - block_h) // 2 * 2)
        return cls(image, font, tuple(texts), places, x0, y0, (width, height))

    def overlay(self, spoken: int) -> _Overlay:
        image = self.base
        if spoken in self.places:
            image = image.copy()
            draw = ImageDraw.Draw(image)
            _outlined(draw, self.places[spoken], self.texts[spoken], self.font)
            _filled(draw, self.places[spoken], self.texts[spoken], self.font, HIGHLIGHT)
        return _to_yuv(np.asarray(image), self.x, self.y, *self.frame)


def _outlined(
    draw: ImageDraw.ImageDraw, at: tuple[float, float], text: str, font: ImageFont.FreeTypeFont
) -> None:
    draw.text(at, text, font=font, fill=OUTLINE, stroke_width=_outline(font), stroke_fill=OUTLINE)


def _filled(
    draw: ImageDraw.ImageDraw,
    at: tuple[float, float],
    text: str,
    font: ImageFont.FreeTypeFont,
    colour: tuple[int, int, int],
) -> None:
    bold = max(1, round(font.size * 0.035))  # Aileron Regular is light; a same-colour stroke thickens it
    draw.text(at, text, font=font, fill=colour, stroke_width=bold, stroke_fill=colour)


def _to_yuv(rgba: np.ndarray, x0: int, y0: int, width: int, height: int) -> _Overlay:
    """Limited-range Y'CbCr by BT.709 for HD frames and BT.601 below, as players assume for untagged video."""
    h, w = min(rgba.shape[0], height - y0) // 2 * 2, min(rgba.shape[1], width - x0) // 2 * 2
    rgba = rgba[:h, :w].astype(np.float32)
    kr, kb = (0.2126, 0.0722) if height > 576 or width >= 1280 else (0.299, 0.114)
    r, g, b, a = (rgba[..., i] for i in range(4))
    luma = kr * r + (1 - kr - kb) * g + kb * b
    y = 16 + luma * 219 / 255
    cb = 128 + (b - luma) / (2 * (1 - kb)) * 224 / 255
    cr = 128 + (r - luma) / (2 * (1 - kr)) * 224 / 255
    alpha = a / 255

    def pooled(x: np.ndarray) -> np.ndarray:
        return x.reshape(h // 2, 2, w // 2, 2).sum(axis=(1, 3))

    weight = pooled(alpha)
    safe = np.maximum(weight, 1e-6)
    chroma_alpha = weight / 4
    a256 = np.round(alpha * 256).astype(np.uint16)
    c256 = np.round(chroma_alpha * 256).astype(np.uint16)
    return _Overlay(
        x=x0,
        y=y0,
        alpha=a256,
        luma=np.round(y * a256).astype(np.uint16),
        chroma_alpha=c256,
        cb=np.round(pooled(cb * alpha) / safe * c256).astype(np.uint16),
        cr=np.round(pooled(cr * alpha) / safe * c256).astype(np.uint16),
    )
