"""Tables in HDF5 (SPEC section 6: a compound dataset or a group of columns): what
jellyroll writes reads back as written, and another program's compound or unlabelled
table reads as its columns."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jellyroll.io.nexus import read_table, write_table


@settings(max_examples=25, deadline=None)
@given(
    values=st.lists(st.floats(allow_nan=False, width=64), min_size=0, max_size=6),
    names=st.lists(
        st.text(st.characters(blacklist_characters="\x00"), min_size=0, max_size=5),
        min_size=6,
        max_size=6,
    ),
)
def test_a_written_table_reads_back_as_written(tmp_path_factory, values, names) -> None:
    n = len(values)
    table = pd.DataFrame(
        {"x_um": np.asarray(values), "id": np.arange(n), "case": np.asarray(names[:n], str)}
    )
    path = tmp_path_factory.mktemp("t") / "t.h5"
    with h5py.File(path, "w") as f:
        write_table(f, "table", table)
    with h5py.File(path, "r") as f:
        found = read_table(f["table"])
    assert list(found.columns) == ["x_um", "id", "case"]
    np.testing.assert_array_equal(found["x_um"], table["x_um"])
    np.testing.assert_array_equal(found["id"], table["id"])
    assert list(found["case"]) == list(table["case"])
    with h5py.File(path, "r") as f:
        # silx and h5web show a column's unit: x_um's is said, id has none
        assert f["table/x_um"].attrs["units"] == "um" and "units" not in f["table/id"].attrs


def test_text_with_a_nul_character_is_refused_naming_the_column(tmp_path: Path) -> None:
    """HDF5 strings cannot hold NUL: h5py failed with a bare "VLEN strings do not support
    embedded NULLs" (found by the property test above)."""
    table = pd.DataFrame({"id": [1, 2], "case": ["A", "\x000"]})
    with h5py.File(tmp_path / "t.h5", "w") as f:
        with pytest.raises(ValueError, match=r"table 'agg', column 'case': .* NUL"):
            write_table(f, "agg", table)


def test_a_compound_table_reads_as_its_fields(tmp_path: Path) -> None:
    """SPEC allows a compound dataset; reading one raised a bare KeyError ('columns')."""
    rows = np.array(
        [(1, 10.5, b"A"), (2, -3.0, b"B")], dtype=[("id", "i4"), ("x_um", "f8"), ("case", "S1")]
    )
    with h5py.File(tmp_path / "t.h5", "w") as f:
        f["agglomerates"] = rows
        f.create_group("columns")
        f["columns/id"], f["columns/y_um"] = [1, 2], [0.5, 1.5]  # no @columns attribute
    with h5py.File(tmp_path / "t.h5", "r") as f:
        compound, plain = read_table(f["agglomerates"]), read_table(f["columns"])
    assert list(compound.columns) == ["id", "x_um", "case"]
    assert list(compound["case"]) == ["A", "B"] and list(compound["x_um"]) == [10.5, -3.0]
    assert list(plain.columns) == ["id", "y_um"] and list(plain["y_um"]) == [0.5, 1.5]


def test_a_table_that_is_no_table_is_refused_naming_it(tmp_path: Path) -> None:
    with h5py.File(tmp_path / "t.h5", "w") as f:
        f["image"] = np.zeros((3, 4))
        f.create_group("ragged")
        f["ragged/a"], f["ragged/b"] = [1, 2, 3], [1, 2]
    with h5py.File(tmp_path / "t.h5", "r") as f:
        with pytest.raises(ValueError, match=r"t\.h5: /image is a 2D dataset"):
            read_table(f["image"])
        with pytest.raises(ValueError, match=r"t\.h5: /ragged: its columns are not 1D"):
            read_table(f["ragged"])
