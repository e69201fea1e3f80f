import numpy as np
import pytest

from genart.data.digits import load_digits_arrays
from genart.filters.score import class_accuracy
from genart.views.evaluate import frechet_distance


def test_frechet_distance_of_a_shift_is_the_squared_shift():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4000, 3))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-4)
    assert frechet_distance(a, a + 2.0) == pytest.approx(3 * 4.0, rel=1e-3)


def test_real_digits_score_as_their_labels():
    images, labels = load_digits_arrays(32)
    acc, per = class_accuracy(images[:500], labels[:500])
    assert acc > 0.97  # the judge recognises the real upscaled digits it was trained on
    assert sorted(per) == list(range(10))
