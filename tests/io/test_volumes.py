"""Volume files: ImageJ TIFF stacks, folders of slices, HDF5 datasets."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import h5py
import numpy as np
import pytest
import tifffile
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from jellyroll.io.scans import natural_key
from jellyroll.io.volumes import (
    open_volume,
    planes_digest,
    read_volume,
    slice_files,
    split_dataset,
    volume_fingerprints,
    write_tiff_stack,
)


def test_round_trip_keeps_data_voxel_and_description(tmp_path: Path) -> None:
    volume = np.random.default_rng(0).random((5, 7, 9)).astype(np.float32)
    path = write_tiff_stack(tmp_path / "v.tif", volume, 4.2, description={"modality": "neutron"})
    data, voxel = read_volume(path)
    np.testing.assert_array_equal(data, volume)
    assert voxel == 4.2
    assert read_volume(path, voxel_size_um=2.0)[1] == 2.0  # the argument overrides
    with tifffile.TiffFile(path) as tif:  # what Fiji reads
        ij = tif.imagej_metadata
        assert ij["spacing"] == pytest.approx(4.2) and ij["unit"] == "um"
        num, den = tif.pages.first.tags["XResolution"].value
        assert den / num == pytest.approx(4.2, rel=1e-6)
        assert json.loads(ij["Info"])["description"] == {"modality": "neutron"}
    assert not list(tmp_path.glob("*.part"))  # the atomic write left nothing behind


def test_imagej_resolution_alone_gives_the_voxel(tmp_path: Path) -> None:
    volume = np.arange(2 * 3 * 4, dtype=np.uint16).reshape(2, 3, 4)
    path = tmp_path / "fiji.tif"
    tifffile.imwrite(
        path, volume, imagej=True, resolution=(1 / 0.5, 1 / 0.5), metadata={"unit": "nm"}
    )
    data, voxel = read_volume(path)
    np.testing.assert_array_equal(data, volume)
    assert voxel == pytest.approx(0.5e-3)


def test_a_record_the_calibration_contradicts_is_refused(tmp_path: Path) -> None:
    """A jellyroll TIFF upscaled 2x in Fiji (the study upscaled its XCT): Image > Scale
    keeps the "Info" text and halves the calibration. The stale record's 4.2 um was read,
    so every length came out twice too large, exit 0."""
    volume = np.random.default_rng(0).random((2, 4, 4)).astype(np.float32)
    write_tiff_stack(tmp_path / "v.tif", volume, 4.2)
    with tifffile.TiffFile(tmp_path / "v.tif") as tif:
        info = tif.imagej_metadata["Info"]
    scaled = tmp_path / "scaled.tif"
    tifffile.imwrite(
        scaled, volume.repeat(2, 0).repeat(2, 1).repeat(2, 2), imagej=True,
        resolution=(1 / 2.1, 1 / 2.1),
        metadata={"axes": "ZYX", "spacing": 2.1, "unit": "micron", "Info": info},
    )  # fmt: skip
    for read in (read_volume, open_volume):
        with pytest.raises(ValueError, match=r"scaled\.tif.*record says 4\.2 um.*calibration"):
            read(scaled)
    assert read_volume(scaled, 2.1)[1] == 2.1  # a size given wins
    assert read_volume(tmp_path / "v.tif")[1] == 4.2  # agreeing: the record, as before


def test_folder_of_slices_in_natural_order(tmp_path: Path) -> None:
    volume = np.random.default_rng(1).integers(0, 60000, (12, 4, 5), dtype=np.uint16)
    for i, image in enumerate(volume):
        tifffile.imwrite(tmp_path / f"slice_{i}.tif", image)  # slice_10 sorts after slice_9
    (tmp_path / "notes.txt").write_text("ignored")
    data, voxel = read_volume(tmp_path, voxel_size_um=0.726)
    np.testing.assert_array_equal(data, volume)
    assert voxel == 0.726


def test_a_slice_overwritten_in_place_changes_the_volumes_keys(tmp_path: Path) -> None:
    """A folder volume was keyed by the folder's own size and time, which do not change when
    a slice is overwritten in place: NXCT, locate and link results stayed "up to date" for a
    volume shifted by 12 px."""
    from jellyroll.locate.options import LocateOptions
    from jellyroll.locate.run import locate_key
    from jellyroll.nxct.options import NXCTOptions
    from jellyroll.nxct.run import nxct_key

    xct, nct = tmp_path / "xct", tmp_path / "nct.tif"
    xct.mkdir()
    for i in range(3):
        tifffile.imwrite(xct / f"slice_{i}.tif", np.full((4, 5), i, np.uint16))
    tifffile.imwrite(nct, np.zeros((3, 4, 5), np.uint16))
    run = tmp_path / "run.h5"
    run.write_bytes(b"run")

    def keys() -> tuple[str, str]:
        return (
            nxct_key(str(xct), str(nct), NXCTOptions()),
            locate_key(str(run), str(xct), None, LocateOptions()),
        )

    before = keys()
    folder_time = xct.stat().st_mtime_ns
    tifffile.imwrite(xct / "slice_1.tif", np.full((4, 5), 7, np.uint16))  # in place, longer ago
    os.utime(xct / "slice_1.tif", ns=(folder_time - 10**9, folder_time - 10**9))
    assert xct.stat().st_mtime_ns == folder_time
    after = keys()
    assert after[0] != before[0] and after[1] != before[1]


def test_an_hdf5_volume_is_keyed_by_the_files_its_dataset_is_read_from(tmp_path: Path) -> None:
    """A volume dataset behind an external link (a reconstruction written in chunks) was
    keyed by the master file alone: replacing the linked data left results up to date."""
    from jellyroll.io.volumes import volume_files

    with h5py.File(tmp_path / "data.h5", "w") as f:
        f["volume"] = np.zeros((3, 4, 5), np.float32)
    with h5py.File(tmp_path / "master.h5", "w") as f:
        f["entry/volume"] = h5py.ExternalLink("data.h5", "/volume")
    found = {p.resolve() for p in volume_files(f"{tmp_path / 'master.h5'}::/entry/volume")}
    assert found == {(tmp_path / "master.h5").resolve(), (tmp_path / "data.h5").resolve()}


def test_hdf5_dataset(tmp_path: Path) -> None:
    volume = np.random.default_rng(2).random((3, 4, 5))
    path = tmp_path / "v.h5"
    with h5py.File(path, "w") as handle:
        dset = handle.create_dataset("entry/volume", data=volume)
        dset.attrs["voxel_size"] = 8.4e-3
        dset.attrs["units"] = "mm"
        handle.create_dataset("entry/other", data=volume).attrs["voxel_size_um"] = 1.5
    data, voxel = read_volume(path, dataset="/entry/volume")
    np.testing.assert_array_equal(data, volume)
    assert voxel == pytest.approx(8.4)
    assert read_volume(path, dataset="entry/other")[1] == 1.5


@pytest.mark.parametrize(
    ("axes", "refused"),
    [(["x", "y", "z"], True), (["z_um", "y_um", "x_um"], False), ([".", ".", "."], False),
     (["y", "z", "x"], True)],
)  # fmt: skip
def test_a_volume_stored_with_other_axes_is_refused(
    tmp_path: Path, axes: list[str], refused: bool
) -> None:
    """An NXdata volume whose ``@axes`` say (x, y, z) was read as (z, y, x) without a word:
    slices across the cell's axis were taken along it."""
    path = tmp_path / "v.h5"
    with h5py.File(path, "w") as handle:
        group = handle.create_group("entry/data")
        group.attrs.update({"NX_class": "NXdata", "signal": "data", "axes": axes})
        group.create_dataset("data", data=np.zeros((4, 3, 2))).attrs["voxel_size_um"] = 1.0
    reads = [lambda: open_volume(f"{path}::/entry/data/data"),
             lambda: read_volume(path, dataset="/entry/data/data")]  # fmt: skip
    for read in reads:
        if refused:
            with pytest.raises(ValueError, match=r"v\.h5: /entry/data/data .* order"):
                read()
        else:
            read()


def test_errors_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "absent.tif"
    with pytest.raises(ValueError, match=r"absent\.tif"):
        read_volume(missing)

    bare = tmp_path / "bare.tif"
    tifffile.imwrite(bare, np.zeros((2, 3, 3), np.float32), photometric="minisblack")
    with pytest.raises(ValueError, match=r"bare\.tif.*voxel_size_um"):
        read_volume(bare)

    folder = tmp_path / "slices"
    folder.mkdir()
    tifffile.imwrite(folder / "s1.tif", np.zeros((3, 3), np.uint8))
    tifffile.imwrite(folder / "s2.tif", np.zeros((3, 4), np.uint8))
    with pytest.raises(ValueError, match=r"s2\.tif.*differs"):
        read_volume(folder, voxel_size_um=1.0)

    h5 = tmp_path / "scan.h5"
    with h5py.File(h5, "w") as handle:
        handle["entry/volume"] = np.zeros((2, 2, 2))
    with pytest.raises(ValueError, match=r"scan\.h5.*'/entry/nothing'.*/entry/volume"):
        read_volume(h5, voxel_size_um=1.0, dataset="/entry/nothing")
    with pytest.raises(ValueError, match=r"scan\.h5.*'/entry/volume'.*voxel_size_um"):
        read_volume(h5, dataset="/entry/volume")

    with pytest.raises(ValueError, match=r"out\.tif"):
        write_tiff_stack(tmp_path / "out.tif", np.zeros((2, 2, 2)), -1.0)
    with pytest.raises(ValueError, match=r"out\.tif"):
        write_tiff_stack(tmp_path / "out.tif", np.full((1, 1, 2), 2**30 + 1, np.int64), 1.0)


@settings(max_examples=30, deadline=None)
@given(
    volume=hnp.arrays(
        dtype=st.sampled_from([np.uint8, np.uint16, np.int16, np.float32, np.int32, np.bool_]),
        shape=hnp.array_shapes(min_dims=3, max_dims=3, min_side=1, max_side=6),
        elements={"allow_nan": False, "allow_infinity": False},
    ),
    voxel=st.floats(min_value=1e-3, max_value=1e3, allow_nan=False),
)
def test_round_trip_property(volume: np.ndarray, voxel: float) -> None:
    if volume.dtype == np.int32:
        volume = volume // 256  # int32 is stored as float32: keep it exactly representable
    with tempfile.TemporaryDirectory() as folder:
        path = write_tiff_stack(Path(folder) / "v.tif", volume, voxel)
        data, read_voxel = read_volume(path)
    assert data.dtype == volume.dtype and data.shape == volume.shape
    np.testing.assert_array_equal(data, volume)
    assert read_voxel == voxel


def test_open_volume_reads_slabs_as_read_volume_does(tmp_path: Path) -> None:
    """Every layout gives the same slabs as the whole-volume reader, voxel size included."""

    volume = np.arange(5 * 6 * 7, dtype=np.float32).reshape(5, 6, 7)
    tiff = write_tiff_stack(tmp_path / "v.tif", volume, 4.2)
    folder = tmp_path / "slices"
    folder.mkdir()
    for k, image in enumerate(volume):
        tifffile.imwrite(folder / f"s{k}.tif", image)
    with h5py.File(tmp_path / "v.h5", "w") as f:
        f["a/b"] = volume
        f["a/b"].attrs["voxel_size_um"] = 4.2
    for path, voxel in ((tiff, None), (folder, 4.2), (f"{tmp_path / 'v.h5'}::/a/b", None)):
        with open_volume(path, voxel) as source:
            assert source.shape == (5, 6, 7) and source.voxel_um == pytest.approx(4.2)
            np.testing.assert_array_equal(source[1:3], volume[1:3])
            np.testing.assert_array_equal(source[4, 2:4], volume[4, 2:4])
    with pytest.raises(ValueError, match="voxel size is not recorded"):
        open_volume(folder)


def test_the_planes_digest_tells_a_volume_from_its_turned_copy_not_from_its_export(
    tmp_path: Path,
) -> None:
    """The digest an NXCT file keeps of its volumes: the same values as a uint16 TIFF or a
    float32 HDF5 dataset give one digest; the volume turned in its plane (its shape the
    same), flipped along its axis, or with one voxel of its middle plane changed, another."""
    rng = np.random.default_rng(0)
    volume = rng.integers(0, 60000, (7, 12, 12)).astype(np.uint16)
    tiff = write_tiff_stack(tmp_path / "v.tif", volume, 4.2)
    with h5py.File(tmp_path / "v.h5", "w") as f:
        f["v"] = volume.astype(np.float32)
        f["v"].attrs["voxel_size_um"] = 4.2
    with open_volume(tiff) as a, open_volume(f"{tmp_path / 'v.h5'}::/v") as b:
        assert planes_digest(a) == planes_digest(b) == planes_digest(volume)
    changed = volume.copy()
    changed[3, 5, 5] += 1
    others = [np.rot90(volume, axes=(1, 2)), volume[::-1], changed]
    assert len({planes_digest(volume), *(planes_digest(v) for v in others)}) == 4


def _hdf5_volume(path: Path, volume: np.ndarray, **attrs) -> str:
    with h5py.File(path, "w") as handle:
        dataset = handle.create_dataset("volume", data=volume)
        dataset.attrs.update(attrs)
    return f"{path}::/volume"


@pytest.mark.parametrize(
    ("attrs", "message"),
    [
        # the first of three sizes was taken: heights off, then a misleading cell-size refusal
        ({"voxel_size": [40.0, 20.0, 20.0], "units": "um"}, r"cubic voxels"),
        ({"voxel_size_um": "twenty"}, r"'twenty' is not a number"),
        ({"voxel_size": 20.0, "units": "furlongs"}, r"'furlongs'.*does not know"),
    ],
)
def test_voxel_sizes_that_cannot_be_read_as_one_are_refused(
    tmp_path: Path, attrs: dict, message: str
) -> None:
    path = _hdf5_volume(tmp_path / "v.h5", np.zeros((2, 3, 3), np.float32), **attrs)
    with pytest.raises(ValueError, match=rf"v\.h5.*{message}"):
        open_volume(path)


def test_plural_units_are_read(tmp_path: Path) -> None:
    path = _hdf5_volume(
        tmp_path / "v.h5", np.zeros((2, 3, 3)), voxel_size=0.02, units="millimeters"
    )
    assert open_volume(path).voxel_um == pytest.approx(20.0)


def test_an_imagej_stack_with_other_slice_spacing_is_refused(tmp_path: Path) -> None:
    """XY resolution 20 um, slices 40 um apart: 20 um was taken for z, the height 13 um off."""
    path = tmp_path / "fiji.tif"
    volume = np.zeros((3, 4, 4), np.uint16)
    tifffile.imwrite(
        path,
        volume,
        imagej=True,
        resolution=(1 / 20, 1 / 20),
        metadata={"unit": "um", "spacing": 40},
    )
    with pytest.raises(ValueError, match=r"fiji\.tif.*40 um apart.*20 um wide.*cubic"):
        read_volume(path)


def test_no_value_reads_as_not_measured(tmp_path: Path) -> None:
    """NaN and inf voxels read as NaN, "not measured": read as 0 (the default before), they
    were black material to `jellyroll locate` and the 3D bends (two NaN end planes of the
    tiny twin's X-ray placed the slice 45 um off, exit 0), and the fusion and the
    segmentation labelled a NaN band across the tiny twin's X-ray (a detector gap) from the
    neutron alone (``test_nan_in_the_xray_volume_is_not_measured``). Every other voxel reads
    as the file holds it, by slab, plane, in-plane slice or whole."""
    volume = np.arange(2 * 5 * 5, dtype=np.float32).reshape(2, 5, 5)
    volume[:, 0, :] = np.nan
    volume[1, 2, 2] = np.inf
    volume[0, 3, 3] = -np.inf
    expected = np.where(np.isfinite(volume), volume, np.nan)
    with open_volume(_hdf5_volume(tmp_path / "v.h5", volume, voxel_size_um=10.0)) as source:
        np.testing.assert_array_equal(source[0:2], expected)
        np.testing.assert_array_equal(source[1], expected[1])
        np.testing.assert_array_equal(source[1, 1:3], expected[1, 1:3])
        np.testing.assert_array_equal(np.asarray(source), expected)


@pytest.mark.parametrize(
    ("names", "message"),
    [
        # slice_0003 missing: the slices above it were read one voxel low (a located slice's
        # height 9.5 um off at 20 um voxels, 14 um with three missing), exit 0
        (["slice_0000", "slice_0001", "slice_0002", "slice_0004"], r"jump \(2 to 4"),
        (["s1", "s01", "s2"], r"jump \(1 to 1"),  # one index twice
        # a projection of the same shape beside the slices was read as slice 0
        (["average", "recon_0", "recon_1", "recon_2"], r"not one numbered series.*average\.tif"),
        (["top", "bottom"], r"not one numbered series"),
    ],
)
def test_a_folder_of_slices_with_a_gap_or_a_stray_file_is_refused(
    tmp_path: Path, names: list[str], message: str
) -> None:
    for name in names:
        tifffile.imwrite(tmp_path / f"{name}.tif", np.zeros((4, 5), np.uint16))
    with pytest.raises(ValueError, match=rf"{tmp_path}.*{message}"):
        open_volume(tmp_path, 20.0)
    with pytest.raises(ValueError, match=message):
        read_volume(tmp_path, 20.0)


def test_non_square_tiff_pixels_are_refused(tmp_path: Path) -> None:
    """XResolution 20 um, YResolution 40 um: read as 20 um along y too, exit 0."""
    volume = np.zeros((3, 4, 4), np.uint16)
    fiji, plain = tmp_path / "fiji.tif", tmp_path / "plain.tif"
    tifffile.imwrite(
        fiji, volume, imagej=True, resolution=(1 / 20, 1 / 40), metadata={"unit": "um"}
    )
    tifffile.imwrite(plain, volume, resolution=(500.0, 250.0), resolutionunit="CENTIMETER")
    for path in (fiji, plain):
        with pytest.raises(ValueError, match=rf"{path.name}.*wide but.*tall.*cubic"):
            open_volume(path)


def test_a_multipage_tiff_with_a_page_of_another_type_is_refused(tmp_path: Path) -> None:
    """A uint16 page among float32 ones was promoted and read with the others (a folder of
    such slices is refused): its grey levels may be on another scale."""
    path = tmp_path / "mixed.tif"
    with tifffile.TiffWriter(path) as writer:
        for k in range(4):
            page = np.zeros((4, 4), np.uint16 if k == 2 else np.float32)
            writer.write(page, photometric="minisblack")
    with pytest.raises(ValueError, match=r"mixed\.tif: page 2 is uint16, page 0 float32"):
        open_volume(path, 20.0)


@pytest.mark.parametrize("axes", ["TZYX", "ZCYX"])
def test_an_imagej_hyperstack_of_several_volumes_is_refused(tmp_path: Path, axes: str) -> None:
    """Three time points (or two channels) of a 4-slice volume: open_volume (what nxct and
    locate read) took the 12 (8) pages for one volume's slices, the volumes interleaved, exit
    0; read_volume refused it with a bare shape. Both name the axes now; a plain ZYX stack
    and an appended series of 2D pages still read."""
    path = tmp_path / "hyper.tif"
    shape = (3, 4, 8, 8) if axes == "TZYX" else (4, 2, 8, 8)
    metadata = {"axes": axes, "spacing": 20.0, "unit": "um"}
    tifffile.imwrite(
        path, np.zeros(shape, np.float32), imagej=True, resolution=(0.05, 0.05), metadata=metadata
    )
    for read in (open_volume, read_volume):
        with pytest.raises(ValueError, match=rf"hyper\.tif: the TIFF holds a {axes} series"):
            read(path)
    appended = tmp_path / "appended.tif"
    for _ in range(3):
        tifffile.imwrite(appended, np.zeros((8, 8), np.float32), append=True)
    assert open_volume(appended, 20.0).shape == (3, 8, 8)


def test_a_tiff_of_two_volumes_is_refused(tmp_path: Path) -> None:
    """Two stacks written one after the other into one TIFF (two series of one slice shape,
    4 and 3 slices): open_volume (what nxct and locate read) stacked them into one volume of
    7 slices, the second volume's slices above the first's, exit 0. Now refused by name;
    2D pages appended one by one (a series each) still read as one stack."""
    path = tmp_path / "two.tif"
    with tifffile.TiffWriter(path) as writer:
        for nz in (4, 3):
            writer.write(np.zeros((nz, 8, 8), np.uint16), photometric="minisblack")
    with pytest.raises(ValueError, match=r"two\.tif: the TIFF holds 2 images.*more than one"):
        open_volume(path, 20.0)
    with pytest.raises(ValueError, match=r"two\.tif"):
        read_volume(path, 20.0)
    appended = tmp_path / "appended.tif"
    for _ in range(3):
        tifffile.imwrite(appended, np.zeros((8, 8), np.uint16), append=True)
    assert open_volume(appended, 20.0).shape == (3, 8, 8)


def test_a_voxel_size_given_wins_over_metadata_it_cannot_read(tmp_path: Path) -> None:
    """A dataset's ``units`` is often the values' (attenuation in cm^-1): its voxel_size was
    refused even with the size given on the command line, which the message advised."""
    volume = np.ones((2, 3, 3), np.float32)
    path = _hdf5_volume(tmp_path / "v.h5", volume, voxel_size=0.02, units="cm^-1")
    with pytest.raises(ValueError, match=r"'cm\^-1'.*--xct-voxel-um"):
        open_volume(path, voxel_hint="give it with --xct-voxel-um")
    assert open_volume(path, 20.0).voxel_um == 20.0
    assert read_volume(split_dataset(path)[0], 20.0, "/volume")[1] == 20.0
    fiji = tmp_path / "fiji.tif"
    tifffile.imwrite(
        fiji, volume, imagej=True, resolution=(1 / 20, 1 / 40), metadata={"unit": "um"}
    )
    assert open_volume(fiji, 20.0).voxel_um == 20.0


def _ome_stack(path: Path, sizes: dict[str, float], unit: str = "µm") -> Path:
    """A 6 x 16 x 16 OME-TIFF with ``PhysicalSize<axis>`` = ``sizes[axis]`` in ``unit`` and
    the centimetre resolution tags of its in-plane size (as Bio-Formats writes them)."""
    metadata: dict = {"axes": "ZYX"}
    for axis, size in sizes.items():
        metadata |= {f"PhysicalSize{axis}": size, f"PhysicalSize{axis}Unit": unit}
    per_cm = 1e4 / (sizes["X"] * (1e3 if unit == "mm" else 1.0))
    tifffile.imwrite(
        path, np.zeros((6, 16, 16), np.uint16), ome=True, resolution=(per_cm, per_cm),
        resolutionunit="CENTIMETER", metadata=metadata,
    )  # fmt: skip
    return path


def test_an_ome_tiff_is_read_at_its_physical_sizes(tmp_path: Path) -> None:
    """OME-TIFF sizes were not read: a stack of 4.2 um pixels whose slices lie 8.4 um apart
    (PhysicalSizeZ) was read at its in-plane resolution tags as 4.2 um cubic voxels, exit 0
    (registered, its z axis then half as tall as it is). Now the OME sizes rule: not cubic
    is refused, cubic in mm is read in um (exactly: the sizes are decimal text)."""
    aniso = _ome_stack(tmp_path / "aniso.ome.tif", {"X": 4.2, "Y": 4.2, "Z": 8.4})
    for read in (open_volume, read_volume):
        with pytest.raises(ValueError, match=r"aniso\.ome\.tif.*Z 8\.4 um.*cubic"):
            read(aniso)
    assert open_volume(aniso, 4.2).voxel_um == 4.2  # a size given wins
    cubic = _ome_stack(tmp_path / "mm.ome.tif", {"X": 0.0042, "Y": 0.0042, "Z": 0.0042}, "mm")
    assert open_volume(cubic).voxel_um == pytest.approx(4.2, rel=1e-12)
    assert read_volume(cubic)[1] == pytest.approx(4.2, rel=1e-12)
    odd = _ome_stack(tmp_path / "odd.ome.tif", {"X": 4.2, "Y": 4.2, "Z": 4.2}, "pixel")
    with pytest.raises(ValueError, match=r"odd\.ome\.tif.*'pixel'"):
        open_volume(odd)


# --- the slice-number series of a folder volume ---------------------------------------------

_NAME_PART = st.text(alphabet="abcXYZ_-.0123456789", max_size=6)


@st.composite
def _slice_series(draw) -> tuple[list[str], list[int]]:
    """File names of one series PREFIX<n>SUFFIX.ext with consecutive n: the prefix and the
    suffix may hold digits (``rec2_``, ``_16bit``), the numbers are zero padded to one
    width or not at all (mixed widths), the extension in any case of .tif/.tiff."""
    prefix = draw(_NAME_PART.filter(lambda p: not p[-1:].isdigit()))  # else digits join n
    suffix = draw(_NAME_PART.filter(lambda s: not s[:1].isdigit()))
    start = draw(st.integers(0, 2000))
    count = draw(st.integers(2, 12))
    width = draw(st.sampled_from([0, 4, 5]))
    ext = draw(st.sampled_from([".tif", ".tiff", ".TIF", ".TIFF"]))
    numbers = list(range(start, start + count))
    names = [f"{prefix}{n:0{width}d}{suffix}{ext}" for n in numbers]
    return names, numbers


def _touch_all(folder: Path, names: list[str]) -> None:
    for name in names:
        (folder / name).touch()  # slice_files reads names only


@settings(max_examples=150, deadline=None)
@given(_slice_series(), st.randoms(use_true_random=False))
def test_a_numbered_series_of_slices_is_read_in_number_order(series, random) -> None:
    """Any series PREFIX<n>SUFFIX with consecutive n is accepted and ordered by n, whatever
    the digits in its prefix or suffix, the padding or the order the files were made in."""
    names, _ = series
    made = names[:]
    random.shuffle(made)
    with tempfile.TemporaryDirectory() as folder:
        _touch_all(Path(folder), made)
        assert [f.name for f in slice_files(Path(folder))] == names


@settings(max_examples=100, deadline=None)
@given(_slice_series(), st.data())
def test_a_series_with_a_slice_missing_or_a_stray_file_is_refused(series, data) -> None:
    """A missing inner slice (every slice above it would be one voxel low) or a TIFF of
    another name beside the series is refused, naming the folder."""
    names, _ = series
    gone = data.draw(st.integers(1, len(names) - 2)) if len(names) > 2 else None
    stray = data.draw(st.sampled_from(["average.tif", "projection_x.tiff", "mask.TIF"]))
    cases = [[*names, stray]] + ([names[:gone] + names[gone + 1 :]] if gone else [])
    for case in cases:
        with tempfile.TemporaryDirectory() as folder:
            _touch_all(Path(folder), case)
            with pytest.raises(ValueError, match=rf"^{folder}: .*(jump|not one numbered series)"):
                slice_files(Path(folder))


def test_a_series_numbered_in_two_places_is_refused(tmp_path: Path) -> None:
    """Two runs of digits that both change (tiles ``t_<row>_<column>``) are no one series."""
    _touch_all(tmp_path, [f"t_{row}_{column}.tif" for row in (1, 2) for column in (1, 2)])
    with pytest.raises(ValueError, match="not one numbered series"):
        slice_files(tmp_path)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(max_size=8), max_size=8), st.text(max_size=4), st.text(max_size=4))
def test_natural_key_sorts_any_names_and_numbers_by_value(names, prefix, suffix) -> None:
    """Any names sort without error (``x1\\u00b2``: a superscript is a digit to
    ``str.isdigit`` but not to ``int``, and raised ValueError), and names that differ only
    in one number sort by its value."""
    sorted(names, key=natural_key)
    if prefix[-1:].isdecimal() or suffix[:1].isdecimal():
        return  # digits beside n would be part of it
    numbered = [f"{prefix}{n}{suffix}" for n in (10, 9, 100, 0, 11)]
    assert sorted(numbered, key=natural_key) == [
        f"{prefix}{n}{suffix}" for n in (0, 9, 10, 11, 100)
    ]


def test_the_datasets_of_one_file_have_keys_of_their_own(tmp_path: Path) -> None:
    """Volumes given as ``cell.h5::/xct_raw`` and ``cell.h5::/xct_filtered`` (or the X-ray
    and neutron ones swapped within one file) gave the nxct, locate and link stages one key:
    a cell changed to the other dataset stayed up to date on the old one."""
    with h5py.File(tmp_path / "cell.h5", "w") as f:
        f["raw"] = f["filtered"] = np.zeros((2, 3, 3), np.float32)
    raw, filtered = (f"{tmp_path / 'cell.h5'}::/{name}" for name in ("raw", "filtered"))
    assert volume_fingerprints([raw]) != volume_fingerprints([filtered])
    assert volume_fingerprints([raw, filtered]) != volume_fingerprints([filtered, raw])


def test_one_volume_under_two_names_is_refused_as_both(tmp_path: Path) -> None:
    """A hard link of the X-ray volume given as the neutron one passed (only the resolved
    paths were compared): the volume was registered onto itself, exit 0."""
    from jellyroll.io.volumes import refuse_same_volume

    xct = tmp_path / "xct.tif"
    tifffile.imwrite(xct, np.zeros((2, 4, 4), np.uint16))
    os.link(xct, tmp_path / "nct.tif")
    with pytest.raises(ValueError, match="given as both the X-ray and the neutron volume"):
        refuse_same_volume(xct, tmp_path / "nct.tif")
    tifffile.imwrite(tmp_path / "other.tif", np.zeros((2, 4, 4), np.uint16))
    refuse_same_volume(xct, tmp_path / "other.tif")
