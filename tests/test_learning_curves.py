"""Curve readings of a hand-made ten-epoch history, checked against values worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from oncorepro.learning_curves import curve_readings


def test_curve_readings_by_hand(curve_history):
    readings = curve_readings(curve_history)
    assert readings["test_loss_min"] == 0.40 and readings["test_loss_min_epoch"] == 8
    assert readings["test_loss_max"] == 1.0 and readings["test_loss_max_epoch"] == 1
    assert readings["test_loss_early"] == pytest.approx(0.8)  # mean of 1.0, 0.8, 0.6
    assert readings["test_loss_final"] == 0.40
    assert readings["test_loss_plateau"] == pytest.approx(0.40)  # median of epochs 6-10
    # 3-epoch rolling means: epoch 6 0.457 (0.057 from 0.40, outside 0.05), epoch 7 0.427 and later inside
    assert readings["test_loss_plateau_epoch"] == 7
    assert readings["test_accuracy_plateau"] == pytest.approx(0.90)
    # rolling means: epoch 6 0.85 (0.05 from 0.90, outside 0.03), epoch 7 0.883 and later inside
    assert readings["test_accuracy_plateau_epoch"] == 7
    assert readings["test_accuracy_max"] == 0.91 and readings["test_accuracy_max_epoch"] == 8
    assert readings["train_accuracy_final"] == pytest.approx(0.99)
    assert not any(name.startswith("seconds") for name in readings)  # only loss and accuracy columns


def test_a_curve_that_keeps_rising_settles_at_its_last_epochs(curve_history):
    readings = curve_readings(curve_history.assign(test_loss=np.linspace(0.5, 1.4, 10)))
    assert readings["test_loss_max_epoch"] == 10 and readings["test_loss_plateau_epoch"] >= 9


def test_curve_readings_reject_bad_histories(curve_history):
    with pytest.raises(ValueError, match="epoch"):
        curve_readings(curve_history.drop(columns="epoch"))
    with pytest.raises(ValueError, match="test_loss"):
        curve_readings(curve_history.assign(test_loss=np.nan))
