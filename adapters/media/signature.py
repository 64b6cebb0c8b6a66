"""Is a file media at all? Judged from its first bytes, so a download that is not can stop at once."""

from __future__ import annotations

import codecs

import filetype
from filetype.types import ARCHIVE, AUDIO, DOCUMENT, FONT, IMAGE, VIDEO

from domain.errors import UnsupportedMedia

_TS_PACKET = 188
_TS_SYNC = 0x47
# filetype reads at most 262 bytes of a signature; MPEG-TS is told by the sync byte of three packets.
HEAD_BYTES = max(262, 2 * _TS_PACKET + 1)

# The decoder has no use for these although filetype files them under audio.
_NOT_DECODABLE = frozenset({"midi"})
_MEDIA = tuple(kind for kind in VIDEO + AUDIO if kind.extension not in _NOT_DECODABLE)
_OTHERS = (("image", IMAGE), ("archive", ARCHIVE), ("document", DOCUMENT), ("font", FONT))
_KIND_NAMES = {"mpg": "mpeg-ps"}


def _is_mpeg_ts(head: bytes) -> bool:
    """Sync bytes where the first packets start; two packets at least, so one 'G' is not a stream."""
    offsets = range(0, min(len(head), 3 * _TS_PACKET), _TS_PACKET)
    return len(head) > _TS_PACKET and all(head[offset] == _TS_SYNC for offset in offsets)


def _looks_like(head: bytes) -> str:
    """What the bytes seem to be instead, for a message a person can act on."""
    for noun, kinds in _OTHERS:
        if (kind := filetype.match(head, kinds)) is not None:
            return f"looks like a {kind.extension.upper()} {noun}"
    if (kind := filetype.guess(head)) is not None:  # an application file, or audio the decoder cannot read
        return f"looks like a {kind.extension.upper()} file"
    try:  # incremental: the head may end inside a character
        text = codecs.getincrementaldecoder("utf-8")().decode(head)
    except UnicodeDecodeError:
        text = "\0"
    if not all(char.isprintable() or char in "\t\r\n" for char in text):
        return "does not start like any video or audio container"
    if text.lstrip().startswith("<"):
        return "looks like an HTML (or XML) page"
    return "looks like text"


def media_kind(head: bytes) -> str:
    """The container ``head`` (a file's first ``HEAD_BYTES`` bytes, or all of a shorter file) starts:
    "mp4", "mkv", "webm", "mov", "avi", "mpeg-ts", "mp3", ... Raises UnsupportedMedia for anything else."""
    if not head:
        raise UnsupportedMedia("the file is empty, not a video")
    if (kind := filetype.match(head, _MEDIA)) is not None:
        return _KIND_NAMES.get(kind.extension, kind.extension)
    if _is_mpeg_ts(head):
        return "mpeg-ts"
    raise UnsupportedMedia(f"the file {_looks_like(head)}, not a video")
