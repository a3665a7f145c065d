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


def write_table(parent: h5py.Group, name: str, table: pd.DataFrame) -> h5py.Group:
    """A table as an NXcollection of equal-length column datasets (strings as UTF-8)."""
    group = nx_group(parent, name, "NXcollection")
    for column in table.columns:
        values = table[column].to_numpy()
        if values.dtype.kind in "OUT":
            group.create_dataset(
                column, data=values.astype(str).astype(object), dtype=h5py.string_dtype()
            )
        else:
            group.create_dataset(column, data=values)
    group.attrs["columns"] = list(map(str, table.columns))
    return group


def read_table(group: h5py.Group) -> pd.DataFrame:
    """Inverse of :func:`write_table`."""
    columns: dict[str, np.ndarray] = {}
    for column in group.attrs["columns"]:
        values = group[column][()]
        if values.dtype.kind == "O":
            values = values.astype(str)
        columns[column] = values
    return pd.DataFrame(columns)
