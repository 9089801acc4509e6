"""The training loop: learns, resumes exactly, stops early, predicts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from oncorepro.train import TrainConfig, predict_proba, train


def _data(n: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Images whose class is a bright top-left or bottom-right square on noise."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 80, (n, 12, 12, 3), dtype=np.uint8)
    y = np.arange(n) % 2
    x[y == 0, :4, :4] = 250
    x[y == 1, -4:, -4:] = 250
    return x, y


def _model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                         nn.Dropout(0.1), nn.Linear(16, 2))


def _config(**kw) -> TrainConfig:
    values = dict(optimizer="adam", lr=1e-2, epochs=6, batch_size=16, seed=3, progress=False, device="cpu")
    values.update(kw)
    return TrainConfig(**values)


def test_learns_and_records_history():
    out = train(_model(), _data(), _data(32, seed=1), _config())
    assert list(out.history.columns) == ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "seconds"]
    assert out.history["epoch"].tolist() == [1, 2, 3, 4, 5, 6]
    assert out.history["train_loss"].iloc[-1] < out.history["train_loss"].iloc[0]
    proba, seconds = predict_proba(out.model, _data(32, seed=2)[0], device="cpu")
    assert proba.shape == (32, 2) and np.allclose(proba.sum(1), 1) and seconds > 0
    assert (proba.argmax(1) == _data(32, seed=2)[1]).mean() > 0.9


@pytest.mark.parametrize("name", ["nadam", "adam", "sgd", "rmsprop"])
def test_every_optimizer_runs(name):
    out = train(_model(), _data(16), None, _config(optimizer=name, epochs=1))
    assert np.isfinite(out.history["train_loss"]).all()


def test_interrupted_run_resumes_to_identical_weights(tmp_path):
    straight = train(_model(), _data(), _data(32, 1), _config(epochs=4))
    checkpoint = tmp_path / "run.pt"
    train(_model(), _data(), _data(32, 1), _config(epochs=2, checkpoint=checkpoint))
    resumed = train(_model(seed=99), _data(), _data(32, 1), _config(epochs=4, checkpoint=checkpoint))
    for a, b in zip(straight.model.state_dict().values(), resumed.model.state_dict().values()):
        torch.testing.assert_close(a, b)
    np.testing.assert_allclose(straight.history["train_loss"], resumed.history["train_loss"])
    assert (straight.resumed_after, resumed.resumed_after) == (0, 2)


def test_best_val_selection_and_early_stopping():
    # lr so high the validation loss gets worse: early stopping ends the run, best epoch weights are restored
    out = train(_model(), _data(), _data(32, 1), _config(optimizer="sgd", lr=50.0, epochs=12, early_stopping=2,
                                                         select="best_val"))
    assert len(out.history) < 12
    best = int(out.history.loc[out.history["val_loss"].idxmin(), "epoch"])
    assert out.selected_epoch == best


def test_class_weights_change_the_loss():
    x, y = _data()
    plain = train(_model(), (x, y), None, _config(epochs=1))
    weighted = train(_model(), (x, y), None, _config(epochs=1, class_weights=(0.1, 10.0)))
    assert plain.history["train_loss"].iloc[0] != weighted.history["train_loss"].iloc[0]


def test_a_run_that_stopped_early_does_not_train_on_when_resumed(tmp_path):
    checkpoint = tmp_path / "run.pt"
    config = _config(optimizer="sgd", lr=50.0, epochs=12, early_stopping=2, checkpoint=checkpoint)
    first = train(_model(), _data(), _data(32, 1), config)
    resumed = train(_model(), _data(), _data(32, 1), config)
    assert len(first.history) < 12 and resumed.history["epoch"].tolist() == first.history["epoch"].tolist()


def test_bf16_precision_learns_on_cpu_and_is_reported():
    fp32 = train(_model(), _data(), _data(32, seed=1), _config())
    bf16 = train(_model(), _data(), _data(32, seed=1), _config(precision="bf16"))
    assert (fp32.precision, bf16.precision) == ("fp32", "bf16")  # "auto" means float32 on a CPU
    assert not np.allclose(fp32.history["train_loss"], bf16.history["train_loss"])  # the arithmetic did change
    proba, _ = predict_proba(bf16.model, _data(32, seed=2)[0], device="cpu", precision="bf16")
    assert proba.dtype == np.float32 and (proba.argmax(1) == _data(32, seed=2)[1]).mean() > 0.9


def test_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="unknown precision 'fp16'"):
        train(_model(), _data(16), None, _config(precision="fp16", epochs=1))


def test_a_last_batch_of_one_joins_the_previous_batch_only_for_batch_norm_models():
    from oncorepro.train import batch_bounds
    assert batch_bounds(33, 16) == [(0, 16), (16, 32), (32, 33)]
    assert batch_bounds(33, 16, merge_single=True) == [(0, 16), (16, 33)]
    assert batch_bounds(34, 16, merge_single=True) == [(0, 16), (16, 32), (32, 34)]
    assert batch_bounds(1, 16, merge_single=True) == [(0, 1)]
    torch.manual_seed(0)  # a net whose batch norm sees a 1x1 map: a batch of one image would raise
    net = nn.Sequential(nn.Conv2d(3, 4, 3, stride=12), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, 2))
    out = train(net, _data(17), None, _config(epochs=1))
    assert np.isfinite(out.history["train_loss"]).all()


def test_a_checkpoint_resumes_only_under_its_own_arithmetic(tmp_path):
    checkpoint = tmp_path / "run.pt"
    train(_model(), _data(), None, _config(epochs=1, checkpoint=checkpoint))
    with pytest.raises(ValueError, match="run.pt: checkpoint written with precision 'fp32', this run has 'bf16'"):
        train(_model(), _data(), None, _config(epochs=2, checkpoint=checkpoint, precision="bf16"))
    with pytest.raises(ValueError, match="checkpoint written with batches 4, this run has 2"):
        train(_model(), _data(), None, _config(epochs=2, checkpoint=checkpoint, batch_size=32))
