"""Burned-in captions read back with OCR (Debian's tesseract-ocr): the cue is in the picture while its
words are spoken, the spoken word is the highlighted one, and nothing is drawn while nobody speaks."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from adapters.media.caption_burner import CaptionBurner, font_size
from adapters.media.renderer import PyAVClipRenderer
from adapters.media.synthetic import Scene, write_video
from domain.captions import cues
from domain.media import Clip, ClipOptions, MediaInfo, Span, Word

SIZE = (1280, 720)
FPS = 25
SPAN = Span(0.4, 9.6)
# Two sentences over two backgrounds, dark then light, with 2.5 s of silence between them.
SENTENCES = (
    (0.6, "Ask not what your country can do for you."),
    (6.4, "Small steps make big changes."),
)
SILENT = (0.45, 4.3, 4.7, 5.6, 6.0)  # media times before, between and long after the spoken words


def _words() -> tuple[Word, ...]:
    words = []
    for start, sentence in SENTENCES:
        for i, text in enumerate(sentence.split()):
            words.append(Word(text, start + i * 0.36, start + i * 0.36 + 0.3))
    return tuple(words)


WORDS = _words()


def norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("burn") / "talk.mp4"
    write_video(path, [Scene(5.0, (30, 45, 95)), Scene(5.0, (185, 180, 170))], size=SIZE, audio=False)
    return path


def _render(source: Path, tmp: Path, aspect: str, burn: bool) -> Path:
    info = MediaInfo(10.0, *SIZE, float(FPS), "h264", None, False)
    clip = Clip(SPAN, score=1.0, rank=1, words=WORDS)
    options = ClipOptions(min_seconds=1, aspect=aspect, caption_formats=frozenset(), burn_captions=burn)
    out = tmp / f"{aspect.replace(':', 'x')}-{burn}"
    return Path(PyAVClipRenderer(preset="ultrafast").render(source, info, clip, options, out).media_path)


def frames_at(path: Path, times: list[float]) -> dict[float, np.ndarray]:
    """The RGB frame shown at each clip time in ``times``."""
    wanted, shown = sorted(times), {}
    with av.open(str(path)) as container:
        previous = None
        for frame in container.decode(video=0):
            assert frame.time is not None
            while wanted and frame.time > wanted[0] + 1e-6:
                assert previous is not None
                shown[wanted.pop(0)] = previous
            previous = frame.to_ndarray(format="rgb24")
            if not wanted:
                break
    return shown


def _caption_area(rgb: np.ndarray) -> np.ndarray:
    return rgb[rgb.shape[0] * 45 // 100 :]


def ink(frame: np.ndarray, highlighted_only: bool) -> np.ndarray:
    """Black-on-white image of the caption area's fill colour (white and yellow, or yellow alone), for OCR."""
    rgb = _caption_area(frame)
    r, g, b = (rgb[..., i].astype(np.int16) for i in range(3))
    yellow = (r > 215) & (g > 170) & (b < 110)
    white = (r > 225) & (g > 225) & (b > 225)
    ink = yellow if highlighted_only else yellow | white
    page = np.where(ink, 0, 255).astype(np.uint8)
    scale = 64 / font_size(frame.shape[1], frame.shape[0])
    page = cv2.resize(page, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    return cv2.copyMakeBorder(page, 20, 20, 20, 20, cv2.BORDER_CONSTANT, value=255)


def ocr(pages: list[np.ndarray], tmp: Path, psm: int) -> list[str]:
    """Tesseract's text for each page, in one run over a list of images."""
    exe = shutil.which("tesseract")
    assert exe, "tesseract is not installed: `make install` installs tesseract-ocr"
    names = []
    for i, page in enumerate(pages):
        name = tmp / f"page{psm}_{i:03d}.png"
        cv2.imwrite(str(name), page)
        names.append(str(name))
    listing = tmp / f"pages{psm}.txt"
    listing.write_text("\n".join(names) + "\n")
    done = subprocess.run(
        [exe, str(listing), "stdout", "--psm", str(psm)], capture_output=True, text=True, check=True
    )
    texts = done.stdout.split("\f")
    assert len(texts) >= len(pages), done.stderr
    return texts[: len(pages)]


@pytest.mark.parametrize("aspect", ["9:16", "source"])
def test_burned_captions_show_the_cue_and_highlight_the_spoken_word(
    source: Path, tmp_path: Path, aspect: str
) -> None:
    burned = _render(source, tmp_path, aspect, burn=True)
    plain = _render(source, tmp_path, aspect, burn=False)
    spoken = [((w.start + w.end) / 2 - SPAN.start, w) for w in WORDS]
    silent = [t - SPAN.start for t in SILENT]
    frames = frames_at(burned, [t for t, _ in spoken] + silent)
    plain_frames = frames_at(plain, silent)

    shown = cues(WORDS, SPAN.start)
    full = ocr([ink(frames[t], False) for t, _ in spoken], tmp_path, psm=6)
    marked = ocr([ink(frames[t], True) for t, _ in spoken], tmp_path, psm=7)
    said = [w.text for _, w in spoken]
    recognised, highlighted = [], []
    for (t, word), text, mark in zip(spoken, full, marked, strict=True):
        cue = next(c for c in shown if c.start <= t < c.end)
        read = {norm(w) for w in text.split()}
        expected = [norm(w) for w in cue.text.split()]
        recognised.append(sum(w in read for w in expected) / len(expected))
        highlighted.append(norm(mark) == norm(word.text))
    assert min(recognised) >= 0.8, list(zip(said, recognised, full, strict=True))
    assert sum(highlighted) >= 0.8 * len(highlighted), list(zip(said, marked, strict=True))

    for t in silent:
        region, before = _caption_area(frames[t]), _caption_area(plain_frames[t])
        assert np.abs(region.astype(np.int16) - before).mean() < 1.0, t
        assert norm("".join(ocr([ink(frames[t], False)], tmp_path, psm=6))) == "", t
    # ...while a spoken word's frame differs there from the same frame without burning.
    assert all(
        np.abs(_caption_area(frames[t]).astype(np.int16) - _caption_area(f)).mean() > 1.0
        for t, f in frames_at(plain, [spoken[0][0]]).items()
    )


def test_captions_sit_in_the_lower_third_clear_of_the_platform_zone_on_9_16() -> None:
    width, height = 1080, 1920
    burner = CaptionBurner.from_words(WORDS, SPAN.start, width, height)
    frame = av.VideoFrame.from_ndarray(np.full((height * 3 // 2, width), 16, np.uint8), format="yuv420p")
    luma = burner.burn(frame, WORDS[2].start - SPAN.start).to_ndarray()[:height]
    rows = np.flatnonzero((luma > 16).any(axis=1))
    assert rows.size and rows[0] >= height * 0.55 and rows[-1] <= height * 0.8, (rows[0], rows[-1])
    columns = np.flatnonzero((luma > 16).any(axis=0))
    assert columns[0] > 0 and columns[-1] < width - 1  # wrapped to fit the frame


def test_no_cue_leaves_the_frame_untouched_and_states_follow_the_words() -> None:
    burner = CaptionBurner.from_words(WORDS, SPAN.start, 320, 568)
    frame = av.VideoFrame.from_ndarray(np.zeros((568 * 3 // 2, 320), np.uint8), format="yuv420p")
    assert burner.burn(frame, 0.0) is frame  # before the first word
    assert burner.burn(frame, 4.5 - SPAN.start) is frame  # the silence between the sentences
    first = WORDS[0].start - SPAN.start
    assert burner.state(first + 0.01) == (0, 0)
    assert burner.state(WORDS[1].start - SPAN.start + 0.01) == (0, 1)
    assert burner.state(WORDS[1].end - SPAN.start + 0.02) == (0, 1)  # between two words: still the last
    assert burner.burn(frame, first + 0.01) is not frame
    assert not frame.to_ndarray().any(), "a frame that is not the renderer's own is never drawn on"
