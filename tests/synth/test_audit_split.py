"""The identifier's split of each night into training minutes and unseen minutes."""

import numpy as np

import teacher
from synth import split_minutes


def test_each_night_holds_out_its_last_quarter_after_a_gap():
    records = np.array(["a01"] * 100 + ["b01"] * 40)
    windows = teacher.ApneaWindows(inputs=np.zeros((140, 1, 8), np.float32), labels=np.zeros(140, np.int64),
                                   records=records, minutes=np.concatenate([np.arange(100), np.arange(40)]))
    train, heldout = split_minutes(windows, gap=5)
    a01, b01 = slice(0, 100), slice(100, 140)
    assert np.flatnonzero(heldout[a01].numpy()).tolist() == list(range(75, 100))
    assert np.flatnonzero(train[a01].numpy()).tolist() == list(range(0, 70))
    assert np.flatnonzero(heldout[b01].numpy()).tolist() == list(range(30, 40))
    assert np.flatnonzero(train[b01].numpy()).tolist() == list(range(0, 25))
    assert not (train & heldout).any()
