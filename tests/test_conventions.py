"""The shared numerical conventions."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jellyroll.conventions import (
    DEG_PER_UNIT,
    PER_ANGSTROM_PER_UNIT,
    UM_PER_UNIT,
    conjugate_projections,
    deg_per,
    field_of_view,
    parabola_vertex,
    per_angstrom,
    pixel_centres_um,
    px_to_um,
    um_per,
    um_to_px,
)


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


# --- unit names: every spelling a file may use reads as the same factor ---------------------

_LENGTH_WORDS = {  # (US, British) word forms take a plural "s"
    1.0: ["micron", "micrometer", "micrometre"],
    1e-3: ["nanometer", "nanometre"],
    1e3: ["millimeter", "millimetre"],
    1e4: ["centimeter", "centimetre"],
    1e6: ["meter", "metre"],
}
_LENGTH_SYMBOLS = {1.0: ["um", "\u00b5m", "\u03bcm"], 1e-3: ["nm"], 1e3: ["mm"], 1e4: ["cm"]}
_ANGLE_WORDS = {1.0: ["degree", "deg"], 180.0 / np.pi: ["radian", "rad"]}
_Q_NAMES = {
    1.0: ["1/angstrom", "angstrom^-1", "1/a", "a^-1", "a-1", "1/\u00c5", "\u00c5^-1", "\u00c5-1"],
    0.1: ["1/nm", "nm^-1", "nm-1"],
}
_BLANKS = st.text(alphabet=" \t\n\r", max_size=3)


@st.composite
def _spelling(draw, names: dict[float, list[str]], plural: bool) -> tuple[object, float]:
    """A unit name as a file may hold it: any case, blanks around it, maybe a plural ``s``
    (word forms only), maybe UTF-8 bytes (h5py gives fixed-length strings as bytes)."""
    factor = draw(st.sampled_from(sorted(names)))
    name = draw(st.sampled_from(names[factor]))
    if plural and draw(st.booleans()):
        name += "s"
    flips = draw(st.lists(st.booleans(), min_size=len(name), max_size=len(name)))
    name = "".join(c.upper() if up else c for c, up in zip(name, flips, strict=True))
    text = draw(_BLANKS) + name + draw(_BLANKS)
    return (text.encode() if draw(st.booleans()) else text), factor


@settings(max_examples=300, deadline=None)
@given(st.one_of(_spelling(_LENGTH_WORDS, True), _spelling(_LENGTH_SYMBOLS, False)))
def test_every_spelling_of_a_length_unit_reads_as_its_factor(case) -> None:
    """Case, blanks, plurals of words, US/British spelling, both micro signs (U+00B5 and
    U+03BC, either case: the upper case of both is U+039C), str or bytes: one factor."""
    unit, factor = case
    assert um_per(unit) == factor


@settings(max_examples=200, deadline=None)
@given(_spelling(_ANGLE_WORDS, True))
def test_every_spelling_of_an_angle_unit_reads_as_its_factor(case) -> None:
    unit, factor = case
    assert deg_per(unit) == factor
    assert deg_per(" \u00b0") == 1.0


@settings(max_examples=200, deadline=None)
@given(_spelling(_Q_NAMES, False))
def test_every_spelling_of_a_q_unit_reads_as_its_factor(case) -> None:
    """The angstrom as A, \u00c5 (U+00C5) or the angstrom sign (U+212B, which lower-cases to
    U+00E5 as U+00C5 does), in every form the table lists for one of them."""
    unit, factor = case
    assert per_angstrom(unit) == factor
    if isinstance(unit, str):
        assert per_angstrom(unit.replace("\u00c5", "\u212b")) == factor


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=12), st.binary(max_size=12)))
def test_any_unit_text_gives_a_known_factor_or_none(unit) -> None:
    """Whatever a file holds (any text, any bytes: latin-1 from old writers), the lookup
    answers a factor of its table or None (the callers then name the unit), never raises."""
    for lookup, table in ((um_per, UM_PER_UNIT), (per_angstrom, PER_ANGSTROM_PER_UNIT)):
        factor = lookup(unit)
        assert factor is None or factor in table.values()
    assert deg_per(unit) in (None, *DEG_PER_UNIT.values())


@pytest.mark.parametrize("unit", ["ms", "s", "Ms"])
def test_a_plural_s_is_not_taken_off_a_one_letter_symbol(unit: str) -> None:
    """``ms`` is a millisecond, not metres (um_per("ms") was 1e6): a plural ``s`` is dropped
    only where more than one letter stays (``mms``, ``microns``)."""
    assert um_per(unit) is None
    assert um_per("mms") == 1e3


def test_latin1_bytes_of_the_micro_sign_read_as_micrometres() -> None:
    """A latin-1 attribute (b"\\xb5m") raised UnicodeDecodeError with a bare traceback."""
    assert um_per(b"\xb5m") == 1.0
    assert per_angstrom(b"1/\xc5") == 1.0


# --- the map pixel grid ---------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 4097), st.floats(1e-3, 1e4))
def test_pixel_centres_are_symmetric_about_the_axis_one_pixel_apart(n: int, pixel: float) -> None:
    """SPEC section 6: pixel i of n at (i - (n-1)/2) p. The grid is exactly symmetric (the
    index offsets are half-integers, exact in floats), the middle pixel of an odd n is at 0,
    the step is one pixel (to rounding of the products, relative to the largest centre)."""
    centres = pixel_centres_um(n, pixel)
    np.testing.assert_array_equal(centres, -centres[::-1])
    if n % 2:
        assert centres[n // 2] == 0.0
    else:
        assert centres[n // 2] == pixel / 2
    if n > 1:
        np.testing.assert_allclose(np.diff(centres), pixel, rtol=0, atol=4e-16 * n * pixel)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 4097),
    st.floats(1e-3, 1e4),
    st.lists(st.floats(-1e4, 1e4), min_size=1, max_size=8),
)
def test_px_to_um_and_um_to_px_are_inverse(n: int, pixel: float, index: list[float]) -> None:
    """Round trip of fractional indices to a few ulps of the largest term (|index|, n/2)."""
    index = np.asarray(index)
    back = um_to_px(px_to_um(index, n, pixel), n, pixel)
    np.testing.assert_allclose(back, index, rtol=0, atol=8e-16 * (np.abs(index).max() + n))


@settings(max_examples=300, deadline=None)
@given(st.floats(-1e6, 1e6), st.floats(-1e6, 1e6), st.floats(-1e6, 1e6))
def test_parabola_vertex_is_odd_under_mirroring_and_within_half_a_sample(left, mid, right):
    """Mirroring the samples mirrors the vertex, and the offset never leaves +-0.5 (the peak
    is at the middle sample). Not bit-exact: ``left - 2 mid + right`` rounds differently
    with the operands swapped, a relative 1e-15 of the curvature (hence 1e-12 of a sample
    for these magnitudes)."""
    offset = float(parabola_vertex(left, mid, right))
    assert -0.5 <= offset <= 0.5
    assert abs(float(parabola_vertex(right, mid, left)) + offset) <= 1e-12


@given(st.integers(8, 40), st.integers(8, 40), st.floats(0.3, 1.2))
def test_the_field_of_view_is_the_measured_disk_within_the_inscribed_one(
    ny: int, nx: int, fraction: float
) -> None:
    """A slice measured inside a centred disk of ``fraction`` of the inscribed radius (a
    reconstruction's circle): its field of view holds every measured pixel and is no wider
    than the inscribed disk, and the measured share in it stays high (a disk of pixel
    centres against the same disk: under a pixel's ring of slack); measured nowhere, the
    inscribed disk."""
    iy = (np.arange(ny) - (ny - 1) / 2) / (ny / 2)
    ix = (np.arange(nx) - (nx - 1) / 2) / (nx / 2)
    radius = np.hypot(iy[:, None], ix[None, :])
    measured = radius <= fraction
    field = field_of_view(measured)
    inscribed = radius <= 1
    assert not (field & ~inscribed).any()
    assert not (measured & inscribed & ~field).any()
    if fraction < 1 and measured.any():
        assert (field & measured).sum() == field.sum()  # the disk itself, no NaN in it
    np.testing.assert_array_equal(field_of_view(np.zeros((ny, nx), bool)), inscribed)


def test_conjugate_projections_lie_half_a_turn_on_within_half_a_step() -> None:
    """The projection nearest half a turn from each (the FBP weighting and the centre's
    pairs share it): 0.7 deg steps, 180 deg no whole number of them, pair 0.1 deg off; a
    turn with a gap (0-327 deg, 3 deg steps) leaves -1 where the conjugate fell in it."""
    angles = np.arange(0.0, 360.0, 0.7)
    conjugate = conjugate_projections(angles)
    assert (conjugate >= 0).all()
    off = np.abs(np.mod(angles[conjugate] - angles, 360.0) - 180.0)
    assert off.max() <= 0.35
    gapped = np.arange(0.0, 330.0, 3.0)
    conjugate = conjugate_projections(gapped)
    lost = np.mod(gapped + 180.0, 360.0) >= 330.0
    assert (conjugate[lost] == -1).all()
    np.testing.assert_array_equal(gapped[conjugate[~lost]], np.mod(gapped[~lost] + 180.0, 360.0))
