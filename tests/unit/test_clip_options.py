"""Options from untrusted input: the API's spellings, and a clear InvalidOptions for everything else."""

import pytest

from domain.errors import InvalidOptions
from domain.media import Aspect, ClipOptions


def test_captions_take_a_flag_or_a_list_of_formats() -> None:
    assert ClipOptions.from_dict({"captions": True}).caption_formats == {"srt", "vtt"}
    assert ClipOptions.from_dict({"captions": False}).caption_formats == frozenset()
    assert ClipOptions.from_dict({"captions": ["vtt"]}).caption_formats == {"vtt"}
    assert ClipOptions.from_dict({"caption_formats": ["srt"]}).caption_formats == {"srt"}


@pytest.mark.parametrize(
    "bad",
    [
        {"captions": "srt"},
        {"captions": ["ass"]},
        {"captions": True, "caption_formats": ["srt"]},
        {"caption_formats": "srt"},
        {"max_clips": 2.5},
        {"max_clips": True},
        {"min_seconds": "10"},
        {"min_seconds": float("nan")},
        {"min_seconds": 30, "max_seconds": 10},
        {"aspect": "4:3"},
        {"colour": "red"},
    ],
)
def test_bad_options_are_invalid_options(bad: dict[str, object]) -> None:
    with pytest.raises(InvalidOptions):
        ClipOptions.from_dict(bad)


def test_options_round_trip_through_their_dict() -> None:
    options = ClipOptions.from_dict(
        {"max_clips": 3, "aspect": "9:16", "captions": ["srt"], "max_seconds": 30}
    )
    assert options.aspect is Aspect.VERTICAL
    assert ClipOptions.from_dict(options.to_dict()) == options
