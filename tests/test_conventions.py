"""The shared numerical conventions."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from jellyroll.conventions import parabola_vertex


@given(st.floats(-0.5, 0.5), st.floats(0.01, 100.0), st.floats(-1e3, 1e3))
def test_parabola_vertex_of_three_samples_of_a_parabola(vertex, width, top):
    """Samples at -1, 0, 1 of a downward parabola with its top at ``vertex`` give it back
    (to float rounding, relative to the samples' spread); an upward one gives 0."""
    left, mid, right = (top - width * (t - vertex) ** 2 for t in (-1.0, 0.0, 1.0))
    assert abs(float(parabola_vertex(left, mid, right)) - vertex) <= 1e-9 * (1 + abs(top) / width)
    assert parabola_vertex(-left, -mid, -right) == 0.0


def test_parabola_vertex_elementwise():
    left, mid, right = np.array([0.0, 1.0]), np.array([1.0, 0.0]), np.array([0.0, 1.0])
    np.testing.assert_array_equal(parabola_vertex(left, mid, right), [0.0, 0.0])
