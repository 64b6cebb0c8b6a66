import json
import threading
import time

import numpy as np
import pytest
import torch
from safetensors import safe_open

import adapters.torch.model_manager as model_manager
from adapters.torch.device import choose_device
from adapters.torch.highlight_net import FEATURE_NAMES, HighlightNet
from adapters.torch.model_manager import DEFAULT_VERSION, ModelManager
from adapters.torch.video_model import TorchVideoModel, feature_matrix
from domain.media import MEDIA_FEATURES, Analysis, MediaInfo, Transcript, Word


def trained(seed: int = 0) -> HighlightNet:
    torch.manual_seed(seed)
    model = HighlightNet()
    for p in model.residual[-1].parameters():
        torch.nn.init.normal_(p, std=0.5)  # stands in for a training run moving the residual
    return model


def analysis(seconds: int = 90, columns: tuple[str, ...] = MEDIA_FEATURES, seed: int = 0) -> Analysis:
    rng = np.random.default_rng(seed)
    values = {name: rng.uniform(0, 1, seconds) for name in MEDIA_FEATURES}
    values["loudness"] = rng.uniform(-60, 0, seconds)
    info = MediaInfo(float(seconds), 640, 360, 25.0, "h264", "aac", True)
    matrix = np.stack([values[c] for c in columns], axis=1).astype(np.float32)
    return Analysis(info=info, columns=columns, features=matrix, shot_cuts=(), speech=())


CARD = {"training_data": {"examples": 120, "videos": 9}, "metrics": {"val_auc": 0.71}}


def test_save_then_load_round_trips_weights_and_card(tmp_path) -> None:
    model = trained()
    weights = ModelManager(tmp_path, device="cpu").save(model, "v2", CARD)
    assert weights == tmp_path / "v2.safetensors"
    with safe_open(str(weights), framework="pt") as f:
        assert f.metadata()["version"] == "v2"
    card = json.loads((tmp_path / "v2.json").read_text())
    assert card["features"] == list(FEATURE_NAMES)
    assert card["version"] == "v2" and card["created_at"]
    assert card["training_data"] == CARD["training_data"] and card["metrics"] == CARD["metrics"]

    loaded = ModelManager(tmp_path, device="cpu").load("v2")
    assert loaded.version == "v2"
    x = torch.randn(1, 64, len(FEATURE_NAMES))
    with torch.inference_mode():
        assert torch.allclose(loaded(x), model(x))
        assert not torch.allclose(loaded(x), HighlightNet()(x))  # the residual really came back


def test_each_version_is_read_once_even_under_concurrent_loads(tmp_path, monkeypatch) -> None:
    manager = ModelManager(tmp_path, device="cpu")
    manager.save(trained(), "v3", CARD)
    reads: list[tuple[object, ...]] = []
    real_load_file = model_manager.load_file

    def counting_load_file(*args: str, **kwargs: str) -> dict[str, torch.Tensor]:
        reads.append(args)
        time.sleep(0.05)  # widen the window in which an unlocked manager would read twice
        return real_load_file(*args, **kwargs)

    monkeypatch.setattr(model_manager, "load_file", counting_load_file)
    results: list[HighlightNet] = []
    barrier = threading.Barrier(8)

    def load() -> None:
        barrier.wait()
        results.append(manager.load("v3"))

    threads = [threading.Thread(target=load) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(reads) == 1
    assert all(r is results[0] for r in results)
    assert manager.load("v3") is results[0]


def test_trainable_copies_are_independent_of_the_served_model(tmp_path) -> None:
    manager = ModelManager(tmp_path, device="cpu")
    manager.save(trained(), "v6", CARD)
    served = manager.load("v6")
    copy = manager.trainable("v6")
    assert copy is not served and copy.training and copy.version == "v6"
    assert all(p.requires_grad for p in copy.parameters())
    with torch.no_grad():
        next(copy.parameters()).add_(1.0)
    assert not torch.equal(next(copy.parameters()), next(served.parameters()))


def test_no_version_or_a_missing_one_is_the_prior_until_it_is_saved(tmp_path) -> None:
    manager = ModelManager(tmp_path, device="cpu")
    assert manager.load(None).version == DEFAULT_VERSION
    assert manager.load("v9") is manager.load(None)
    manager.save(trained(), "v9", CARD)
    assert manager.load("v9").version == "v9"
    assert manager.available() == ["v9"]


@pytest.mark.parametrize("version", ["../escape", "a/b", ".hidden", "", "x" * 101])
def test_unsafe_version_names_are_refused(tmp_path, version: str) -> None:
    manager = ModelManager(tmp_path, device="cpu")
    with pytest.raises(ValueError, match="version"):
        manager.save(HighlightNet(), version, CARD)


def test_the_builtin_prior_cannot_be_overwritten(tmp_path) -> None:
    with pytest.raises(ValueError, match="prior"):
        ModelManager(tmp_path, device="cpu").save(trained(), DEFAULT_VERSION, CARD)


def test_a_model_trained_on_other_features_is_refused(tmp_path) -> None:
    manager = ModelManager(tmp_path, device="cpu")
    manager.save(trained(), "v4", CARD)
    card = json.loads((tmp_path / "v4.json").read_text())
    card["features"] = list(reversed(FEATURE_NAMES))
    (tmp_path / "v4.json").write_text(json.dumps(card))
    with pytest.raises(ValueError, match="features"):
        ModelManager(tmp_path, device="cpu").load("v4")


async def test_lifecycle_warms_the_prior_and_close_forgets_models(tmp_path) -> None:
    manager = ModelManager(tmp_path / "models", device="cpu")
    await manager.start()
    first = manager.load(None)
    await manager.close()
    assert manager.load(None) is not first


def test_video_model_scores_each_second_as_float32(tmp_path) -> None:
    manager = ModelManager(tmp_path, device="cpu", mixed_precision=True)
    manager.save(trained(), "v5", CARD)
    video_model = TorchVideoModel(manager, "v5")
    words = Transcript((Word("hello", 3.0, 3.5), Word("there", 3.6, 4.0)))
    scores = video_model.score(analysis(), words)
    assert video_model.version == "v5"
    assert scores.shape == (90,) and scores.dtype == np.float32
    assert np.isfinite(scores).all()
    shuffled = analysis(columns=tuple(reversed(MEDIA_FEATURES)))  # columns are matched by name
    assert np.allclose(video_model.score(shuffled, words), scores, atol=1e-6)
    assert TorchVideoModel(manager).version == DEFAULT_VERSION
    assert TorchVideoModel(manager).score(analysis(0), words).shape == (0,)


def test_feature_matrix_puts_text_features_after_media_features() -> None:
    words = Transcript((Word("hi", 1.0, 1.5),))
    x = feature_matrix(analysis(5), words)
    assert x.shape == (5, len(FEATURE_NAMES))
    assert x[1, FEATURE_NAMES.index("speaking_rate")] == 1.0
    assert x[0, FEATURE_NAMES.index("pause")] == 1.0


def test_choose_device() -> None:
    assert choose_device("cpu") == torch.device("cpu")
    assert choose_device(" CPU ") == torch.device("cpu")
    with pytest.raises(ValueError, match="DEVICE"):
        choose_device("tpu")
    if not torch.cuda.is_available():
        assert choose_device("auto").type in {"cpu", "mps"}
        with pytest.raises(ValueError, match="no CUDA device"):
            choose_device("cuda")
    if not torch.backends.mps.is_available():
        with pytest.raises(ValueError, match="no Apple MPS device"):
            choose_device("mps")


def test_auto_prefers_cuda_when_present(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert choose_device("auto") == torch.device("cuda")
