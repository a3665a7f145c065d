"""Small NeXus helpers: NXdata groups with units and ``@default`` chains for silx / h5web."""

from __future__ import annotations

from collections.abc import Sequence

import h5py
import numpy as np
import pandas as pd

from jellyroll.conventions import RowSliced, slab_ranges


def nx_group(parent: h5py.Group, name: str, nx_class: str) -> h5py.Group:
    """Create (or open) a group with its ``NX_class`` attribute."""
    group = parent.require_group(name)
    group.attrs["NX_class"] = nx_class
    return group


def write_row_slabs(
    dataset: h5py.Dataset, source: RowSliced, slab_bytes: int | None = None
) -> None:
    """Fill ``dataset`` from ``source`` slab by slab of whole chunk rows
    (:func:`~jellyroll.conventions.slab_rows`), about ``slab_bytes`` at a time."""
    for rows in slab_ranges(dataset, slab_bytes):
        dataset[rows] = source[rows]


def write_nxdata(
    parent: h5py.Group,
    name: str,
    signal: np.ndarray | RowSliced,
    axes: Sequence[tuple[str, np.ndarray, str]] = (),
    *,
    units: str = "",
    errors: np.ndarray | None = None,
    compression: str | None = "gzip",
    chunks: tuple[int, ...] | None = None,
) -> h5py.Group:
    """Write an NXdata group ``name`` with dataset ``data`` and 1D axes (name, values, units).

    ``axes`` are given in the order of the signal's dimensions; fewer axes than
    dimensions leave the trailing ones as index axes ("."). The group becomes its parent's
    ``@default``-able plottable. A ``signal`` that is not an ndarray is written by row
    slabs (:func:`write_row_slabs`), never held whole.
    """
    group = nx_group(parent, name, "NXdata")
    kwargs: dict = {"compression": compression} if compression and signal.ndim >= 2 else {}
    if chunks is not None:
        kwargs["chunks"] = chunks
    if isinstance(signal, np.ndarray):
        data = group.create_dataset("data", data=signal, **kwargs)
    else:
        data = group.create_dataset("data", shape=signal.shape, dtype=signal.dtype, **kwargs)
        write_row_slabs(data, signal)
    if units:
        data.attrs["units"] = units
    if errors is not None:
        group.create_dataset("errors", data=errors, **kwargs)
    group.attrs["signal"] = "data"
    axis_names = []
    for axis_name, values, axis_units in axes:
        dataset = group.create_dataset(axis_name, data=np.asarray(values))
        dataset.attrs["units"] = axis_units
        axis_names.append(axis_name)
    axis_names += ["."] * (signal.ndim - len(axis_names))
    group.attrs["axes"] = axis_names
    return group


def set_default(group: h5py.Group, child: str) -> None:
    """Point ``group@default`` at ``child`` (what silx/h5web show first)."""
    group.attrs["default"] = str(child)


TWIN_TRUTH = "jellyroll_twin_truth"
"""Root attribute (True) of a digital twin's truth file: read by no stage, and named in no
note about the files beside the scans it lies with."""

COLUMN_UNITS = {"_um": "um", "_um2": "um^2", "_mm": "mm", "_nm": "nm", "_deg": "deg", "_s": "s"}
"""Units (``@units``) of a table's numeric columns named with these endings (``x_um``)."""


def write_table(
    parent: h5py.Group, name: str, table: pd.DataFrame, units: dict[str, str] | None = None
) -> h5py.Group:
    """A table as an NXcollection of equal-length column datasets (strings as UTF-8), the
    numeric ones named with a unit's ending (:data:`COLUMN_UNITS`) with their ``@units``,
    and those named in ``units`` (column -> unit) with theirs.
    ValueError naming the column for text holding a NUL character, which HDF5 strings
    cannot hold (h5py's bare "VLEN strings do not support embedded NULLs" before)."""
    group = nx_group(parent, name, "NXcollection")
    for column in table.columns:
        values = table[column].to_numpy()
        if values.dtype.kind in "OUT":
            text = values.astype(str)
            if any("\x00" in item for item in text):
                raise ValueError(
                    f"table {name!r}, column {column!r}: a value holds a NUL character, which "
                    "an HDF5 string cannot store; remove it from the text"
                )
            group.create_dataset(column, data=text.astype(object), dtype=h5py.string_dtype())
        else:
            dataset = group.create_dataset(column, data=values)
            ending = "_" + str(column).rsplit("_", 1)[-1]
            unit = (units or {}).get(str(column), COLUMN_UNITS.get(ending))
            if unit is not None:
                dataset.attrs["units"] = unit
    group.attrs["columns"] = list(map(str, table.columns))
    return group


def read_table(table: h5py.Group | h5py.Dataset) -> pd.DataFrame:
    """A table as SPEC section 6 allows it: a group of equal-length column datasets (as
    :func:`write_table` writes them, in the order of its ``@columns``; another program's
    without that attribute, in the group's order) or a compound dataset (one column per
    field); strings come back as text. ValueError naming the table otherwise (a compound
    table raised a bare KeyError)."""
    where = f"{table.file.filename}: {table.name}"
    if isinstance(table, h5py.Dataset):
        if table.dtype.names is None or table.ndim != 1:
            raise ValueError(
                f"{where} is a {table.ndim}D dataset of {table.dtype}, not a table: write it "
                "as a 1D compound dataset or a group of equal-length columns"
            )
        rows = table[()]
        columns = {name: _text_column(rows[name]) for name in table.dtype.names}
    else:
        names = table.attrs.get("columns")
        if names is None:
            names = [name for name, item in table.items() if isinstance(item, h5py.Dataset)]
        columns = {str(name): _text_column(table[str(name)][()]) for name in names}
    lengths = {np.shape(values)[0] if np.ndim(values) else -1 for values in columns.values()}
    if len(lengths) > 1 or any(np.ndim(values) != 1 for values in columns.values()):
        raise ValueError(
            f"{where}: its columns are not 1D of one length (lengths {sorted(lengths)}); write "
            "one value per row in every column"
        )
    return pd.DataFrame(columns)


def _text_column(values: np.ndarray) -> np.ndarray:
    """A column's values, with strings (h5py objects or fixed-length bytes) as text."""
    if values.dtype.kind == "O":
        return np.array([v.decode() if isinstance(v, bytes) else str(v) for v in values])
    if values.dtype.kind == "S":
        return np.char.decode(values, "utf-8")
    return values
