"""Reduction of Pilatus 2M int32 frames (2000 q bins, bbox CSR, Poisson errors) against a loop of
pyFAI's ``integrate1d``.

End to end: ``jellyroll reduce`` run as a whole process on bitshuffle-LZ4 HDF5 scans of two
sizes, its marginal frames/s (start-up cancels) beside a process running the pyFAI loop over
the same file, with the peak memory of each process; beside them the rates that decompression
alone and integration alone reach on the same cores, and the limit both together allow.
Then the integration engine on frames already in memory: frames/s, fraction of the
memory-bandwidth limit, and parity.

Frames are Poisson resamplings of the real CeO2 frame (``../shared/data/real``), or of a
simulated CeO2 ring pattern with the same geometry when that file is absent. Codes run in the
same run, alternately, and the best of the rounds of each is kept (the machine is shared).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import fabio
import h5py
import numba
import numpy as np
from rich.console import Console
from rich.table import Table

from jellyroll.io.chunks import ChunkFrames
from jellyroll.io.poni import integrator_from_poni_text
from jellyroll.io.raw_scan import RawScanWriter
from jellyroll.io.scans import FRAMES
from jellyroll.reduce import IntegrationSetup, Integrator
from jellyroll.reduce.kernels import GROUP
from jellyroll.reduce.run import available_cores

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"
NPT = 2000
N_FRAMES = 32
ROUNDS = 3
PYFAI_FRAMES = 16  # per round
PYFAI_KW = {
    "unit": "q_A^-1",
    "method": ("bbox", "csr", "cython"),
    "error_model": "poisson",
    "polarization_factor": 0.99,
}
SCAN_SIZES = (100, 1000)  # frames of the two scans reduced end to end
PYFAI_SIZES = (20, 60)  # frames of the same file the pyFAI loop integrates
E2E_ROUNDS = 3
VARIANTS = {  # jellyroll reduce options of the end-to-end runs, after --npt
    "plain": ["--filter", "none", "--no-air", "--block", "256"],
    "defaults": [],  # as a user gets it
    "split no": ["--split", "no"],
}
SIMULATED_PONI = """Detector: Pilatus2M
Distance: 0.5439
Poni1: 0.1447
Poni2: 0.1275
Rot1: -0.0002
Rot2: -0.0007
Rot3: 0.0
Wavelength: 1.7463e-11
"""


def _base_frame() -> tuple[np.ndarray, np.ndarray, str, str]:
    """(expected counts (H, W) with negative gaps, static mask, PONI text, source)."""
    if (REAL / "ceo2_pilatus2m.cbf").is_file():
        frame = fabio.open(str(REAL / "ceo2_pilatus2m.cbf")).data
        mask = fabio.open(str(REAL / "pilatus2m_mask.edf")).data != 0
        return frame, mask, (REAL / "ceo2_pilatus2m.poni").read_text(), "real CeO2 frame"
    ai = integrator_from_poni_text(SIMULATED_PONI)
    shape = ai.detector.max_shape
    q = ai.array_from_unit(shape, "center", "q_A^-1")
    counts = 20.0 + 5.0 / q
    for hkl in ((1, 1, 1), (2, 0, 0), (2, 2, 0), (3, 1, 1), (2, 2, 2), (4, 0, 0), (3, 3, 1)):
        centre = 2 * np.pi * np.sqrt(np.sum(np.square(hkl))) / 5.4116
        counts = counts + 400.0 * np.exp(-0.5 * ((q - centre) / 0.01) ** 2)
    mask = ai.detector.mask != 0
    return np.where(mask, -1, counts), mask, SIMULATED_PONI, "simulated CeO2 rings"


def _poisson_frames(base: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n int32 frames: Poisson counts of ``base``, its negative pixels (gaps) kept."""
    frames = rng.poisson(np.maximum(base, 0.0), size=(n, *base.shape)).astype(np.int32)
    frames[:, base < 0] = np.asarray(base[base < 0], np.int32)
    return frames


def _read_bandwidth(n_threads: int, repeats: int = 7) -> float:
    """Best read bandwidth (bytes/s) of threads summing disjoint parts of a 256 MB array."""
    data = np.ones(1 << 26, np.float32)
    parts = np.array_split(data, n_threads)
    best = np.inf
    with ThreadPoolExecutor(n_threads) as pool:
        for _ in range(repeats):
            start = time.perf_counter()
            list(pool.map(np.sum, parts))
            best = min(best, time.perf_counter() - start)
    return data.nbytes / best


def _relative(ours: np.ndarray, ref: np.ndarray) -> float:
    """Largest |ours - ref| / |ref| (0 where both are 0, e.g. one-pixel azimuthal sigma)."""
    diff = np.abs(ours.astype(np.float64) - ref)
    return float(np.max(np.divide(diff, np.abs(ref), out=diff.copy(), where=ref != 0)))


def _parity(integ: Integrator, frame: np.ndarray, mask: np.ndarray, call: str, **kw):
    """Largest relative differences of intensity and sigma, and the bins compared."""
    ours = integ.integrate(frame)
    ref = getattr(integ.ai, call)(frame, NPT, mask=mask | (frame < 0), **kw)
    signal = ref.intensity != 0
    d_int = _relative(ours.intensity[0][signal], ref.intensity[signal])
    d_sig = _relative(ours.sigma[0][signal], ref.sigma[signal])
    return d_int, d_sig, int(signal.sum())


def _peak_temporaries(integ: Integrator, frames: np.ndarray) -> float:
    """Peak Python-visible memory of ``integrate`` beyond its outputs, MB."""
    tracemalloc.start()
    result = integ.integrate(frames)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    outputs = result.intensity.nbytes + result.sigma.nbytes + result.count.nbytes
    return (peak - outputs) / 1e6


def _fps(run, n_frames: int) -> float:
    """Frames per second of one call of ``run`` that handles ``n_frames``."""
    start = time.perf_counter()
    run()
    return n_frames / (time.perf_counter() - start)


def _write_scan(path: Path, frames: np.ndarray, n: int, poni: str, mask: np.ndarray) -> None:
    """A bitshuffle-LZ4 raw scan of ``n`` frames (``frames`` in turn), 10 translations a line."""
    with RawScanWriter(path, frames.shape[1:], poni=poni, mask=mask, n_frames_hint=n) as writer:
        for start in range(0, n, frames.shape[0]):
            k = min(frames.shape[0], n - start)
            index = np.arange(start, start + k)
            writer.append(frames[:k], (index // 10) * 1.8, (index % 10) * 0.05)


PYFAI_LOOP = """
import sys, h5py, hdf5plugin, numpy as np
from jellyroll.io.poni import integrator_from_poni_text
path, n, npt = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with h5py.File(path, "r") as f:
    ai = integrator_from_poni_text(f["/entry/instrument/detector/poni"].asstr()[()])
    mask = f["/entry/instrument/detector/mask"][()] != 0
    data = f["/entry/instrument/detector/data"]
    for i in range(n):
        ai.integrate1d(data[i], npt, mask=mask, unit="q_A^-1", method=("bbox", "csr", "cython"),
                       error_model="poisson", polarization_factor=0.99)
"""


def _process(command: list[str]) -> tuple[float, float, float]:
    """(wall seconds, peak resident memory in MB, CPU seconds) of a whole child process."""
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    if status != 0:
        raise RuntimeError(f"{command[:4]} failed: {child.stderr.read().decode()[-2000:]}")
    child.stderr.close()
    return seconds, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def _marginal(times: dict[int, float]) -> float:
    """Frames/s of the frames the larger run had beyond the smaller one (start-up cancels)."""
    (small, t_small), (large, t_large) = sorted(times.items())
    return (large - small) / (t_large - t_small)


def _decode_rate(path: Path, n: int, threads: int) -> float:
    """Frames/s of reading and decoding ``n`` frames' chunks alone on ``threads`` threads."""
    with h5py.File(path, "r") as f:
        direct = ChunkFrames.of(f[FRAMES])
        assert direct is not None, "the bench scan must be read directly"
        buffers = np.empty((threads, *f[FRAMES].shape[1:]), f[FRAMES].dtype)

        def work(worker: int) -> None:
            for i in range(worker, n, threads):
                direct.read_into(i, buffers[worker])

        start = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(work, range(threads)))
        return n / (time.perf_counter() - start)


def end_to_end(console: Console, frames: np.ndarray, mask: np.ndarray, poni: str) -> None:
    """The end-to-end table (see the module docstring)."""
    cores = available_cores()
    with tempfile.TemporaryDirectory(prefix="jellyroll-bench-") as folder:
        folder_path = Path(folder)
        scans = {n: folder_path / f"scan_{n}.h5" for n in SCAN_SIZES}
        for n, path in scans.items():
            _write_scan(path, frames, n, poni, mask)
        integ = Integrator(IntegrationSetup(poni=poni, shape=frames.shape[1:], npt=NPT, mask=mask))
        integ.integrate(frames[:GROUP])  # JIT (cached) and first touch
        ours: dict[str, dict[int, float]] = {variant: {} for variant in VARIANTS}
        memory: dict[str, dict[int, float]] = {variant: {} for variant in VARIANTS}
        theirs: dict[int, float] = {}
        our_cpu: dict[str, dict[int, float]] = {variant: {} for variant in VARIANTS}
        their_cpu: dict[int, float] = {}
        decode_fps = integrate_fps = 0.0
        for _ in range(E2E_ROUNDS):  # each figure beside the others, best of the rounds
            for variant, options in VARIANTS.items():
                for n, path in scans.items():
                    output = folder_path / f"run_{n}.h5"
                    command = [sys.executable, "-m", "jellyroll.cli", "reduce", str(path),
                               "-o", str(output), "--npt", str(NPT), *options]  # fmt: skip
                    seconds, memory[variant][n], cpu = _process(command)
                    ours[variant][n] = min(ours[variant].get(n, np.inf), seconds)
                    our_cpu[variant][n] = min(our_cpu[variant].get(n, np.inf), cpu)
                    output.unlink()
            for n in PYFAI_SIZES:
                largest = str(scans[SCAN_SIZES[-1]])
                command = [sys.executable, "-c", PYFAI_LOOP, largest, str(n), str(NPT)]
                seconds, _, cpu = _process(command)
                theirs[n] = min(theirs.get(n, np.inf), seconds)
                their_cpu[n] = min(their_cpu.get(n, np.inf), cpu)
            decode_fps = max(decode_fps, _decode_rate(scans[SCAN_SIZES[0]], SCAN_SIZES[0], cores))
            integrate_fps = max(integrate_fps, _fps(lambda: integ.integrate(frames), len(frames)))
    e2e_fps, pyfai_fps = _marginal(ours["plain"]), _marginal(theirs)
    # both stages share the cores: per frame, the time of one plus the time of the other
    limit_fps = 1.0 / (1.0 / decode_fps + 1.0 / integrate_fps)
    table = Table(title=f"reduction end to end ({cores} cores, whole processes, marginal rates)")
    for column in ("measurement", "jellyroll", "anchor", "ratio"):
        table.add_column(column)
    table.add_row(
        f"jellyroll reduce, bitshuffle-LZ4 HDF5, Pilatus 2M int32, {NPT} q bins, "
        f"scans of {SCAN_SIZES[0]} and {SCAN_SIZES[1]} frames",
        f"{e2e_fps:.1f} frames/s (target >= 83)",
        f"pyFAI integrate1d loop reading the same file: {pyfai_fps:.1f} frames/s",
        f"{e2e_fps / pyfai_fps:.1f}x faster (target >= 10x)",
    )
    for variant, label in (
        ("defaults", "its default options (sigma-clip filter, bbox split, air check, spot filter)"),
        ("split no", "its default options but --split no (pyFAI's choice for sigma clipping)"),
    ):
        fps = _marginal(ours[variant])
        table.add_row(
            f"jellyroll reduce with {label}, same scans",
            f"{fps:.1f} frames/s (target >= 83)",
            f"pyFAI integrate1d loop (no filter): {pyfai_fps:.1f} frames/s",
            f"{fps / pyfai_fps:.2f}x",
        )
    table.add_row(
        "fraction of the limit of decoding + integrating on these cores",
        f"{e2e_fps:.1f} frames/s",
        f"decode alone {decode_fps:.0f}, integrate alone {integrate_fps:.0f} frames/s "
        f"(all {cores} cores each): together {limit_fps:.0f} frames/s",
        f"{e2e_fps / limit_fps:.0%} of the limit; {e2e_fps / decode_fps:.0%} of decode alone",
    )
    # CPU time is less sensitive than wall time to other programs on a shared machine
    their_ms = 1e3 / _marginal(their_cpu)
    for variant, cpu in our_cpu.items():
        our_ms = 1e3 / _marginal(cpu)
        table.add_row(
            f"marginal CPU time per frame ({variant}; user + system, all threads)",
            f"{our_ms:.1f} ms: {cores} idle cores kept busy give "
            f"{1e3 * cores / our_ms:.0f} frames/s",
            f"pyFAI loop (no filter): {their_ms:.1f} ms",
            f"{their_ms / our_ms:.1f}x less CPU per frame",
        )
    for variant, peaks in memory.items():
        small, large = (peaks[n] for n in SCAN_SIZES)
        table.add_row(
            f"peak memory of the jellyroll reduce process ({variant})",
            " vs ".join(f"{peaks[n]:.0f} MB ({n} frames)" for n in SCAN_SIZES),
            "must not grow with the number of frames",
            "ok" if large <= small * 1.1 + 50 else "GROWS",
        )
    console.print(table)


def run(console: Console | None = None) -> None:
    console = console or Console()
    rng = np.random.default_rng(0)
    base, mask, poni, source = _base_frame()
    frames = _poisson_frames(base, N_FRAMES, rng)
    end_to_end(console, frames, mask, poni)
    n_threads = numba.get_num_threads()

    start = time.perf_counter()
    integ = Integrator(IntegrationSetup(poni=poni, shape=base.shape, npt=NPT, mask=mask))
    build_s = time.perf_counter() - start
    ai = integ.ai
    integ.integrate(frames[:2])  # JIT (cached) and first touch
    ai.integrate1d(frames[0], NPT, mask=mask, **PYFAI_KW)  # pyFAI builds its CSR matrix

    def ours() -> None:
        integ.integrate(frames)

    def theirs() -> None:
        for frame in frames[:PYFAI_FRAMES]:
            ai.integrate1d(frame, NPT, mask=mask, **PYFAI_KW)

    jr_fps = pyfai_fps = 0.0
    for _ in range(ROUNDS):
        jr_fps = max(jr_fps, _fps(ours, N_FRAMES))
        pyfai_fps = max(pyfai_fps, _fps(theirs, PYFAI_FRAMES))

    bandwidth = _read_bandwidth(n_threads)
    frame_bytes = frames[0].nbytes
    matrix_share = integ.engine.nbytes / GROUP
    limit_fps = bandwidth / (frame_bytes + matrix_share)

    parity = _parity(integ, frames[0], mask, "integrate1d", **PYFAI_KW)
    clip = Integrator(
        IntegrationSetup(
            poni=poni, shape=base.shape, npt=NPT, mask=mask, split="no", filter="sigma-clip"
        )
    )
    clip_kw = {
        "unit": "q_A^-1",
        "method": ("no", "csr", "cython"),
        "error_model": "azimuthal",
        "polarization_factor": 0.99,
        "thres": clip.setup.clip_sigma,
        "max_iter": clip.setup.max_iterations,
    }
    clip_parity = _parity(clip, frames[0], mask, "sigma_clip_ng", **clip_kw)
    lanes = clip.engine.group
    clip_fps = _fps(lambda: clip.integrate(frames[:lanes]), lanes)
    clip_pyfai_fps = _fps(
        lambda: [clip.ai.sigma_clip_ng(f, NPT, mask=mask, **clip_kw) for f in frames[:4]], 4
    )
    memory = [_peak_temporaries(integ, frames[:n]) for n in (GROUP, N_FRAMES)]

    table = Table(title=f"integration engine ({source}, {n_threads} threads)")
    for column in ("measurement", "jellyroll", "anchor", "ratio"):
        table.add_column(column)
    table.add_row(
        f"integrate Pilatus 2M int32 frames, {NPT} q bins, bbox CSR, Poisson errors",
        f"{jr_fps:.0f} frames/s ({N_FRAMES} frames a call)",
        f"pyFAI integrate1d loop: {pyfai_fps:.1f} frames/s",
        f"{jr_fps / pyfai_fps:.1f}x faster (target >= 10x)",
    )
    table.add_row(
        "fraction of the memory-bandwidth limit",
        f"{jr_fps:.0f} frames/s",
        f"read {bandwidth / 1e9:.1f} GB/s / ({frame_bytes / 1e6:.1f} MB frame + "
        f"{matrix_share / 1e6:.1f} MB matrix share) = {limit_fps:.0f} frames/s",
        f"{jr_fps / limit_fps:.1%} of the limit",
    )
    table.add_row(
        f"parity with integrate1d, frame 0 ({parity[2]} bins with signal)",
        f"max |dI|/I {parity[0]:.1e}, max |dsigma|/sigma {parity[1]:.1e}",
        "bounds 1e-4 and 1e-3",
        "ok" if parity[0] <= 1e-4 and parity[1] <= 1e-3 else "FAILED",
    )
    table.add_row(
        f"sigma clip (azimuthal, {clip.setup.clip_sigma:g} sigma, no split) vs sigma_clip_ng",
        f"{clip_fps:.0f} frames/s; max |dI|/I {clip_parity[0]:.1e}, "
        f"|dsigma|/sigma {clip_parity[1]:.1e}",
        f"pyFAI sigma_clip_ng loop: {clip_pyfai_fps:.1f} frames/s; bound 1e-3",
        f"{clip_fps / clip_pyfai_fps:.1f}x faster, "
        + ("ok" if max(clip_parity[:2]) <= 1e-3 else "FAILED"),
    )
    table.add_row(
        f"peak temporary memory of integrate(), {GROUP} vs {N_FRAMES} frames",
        f"{memory[0]:.1f} MB vs {memory[1]:.1f} MB",
        "must not grow with the number of frames",
        "ok" if memory[1] <= memory[0] * 1.05 + 0.1 else "GROWS",
    )
    table.add_row(
        "integrator setup (pyFAI CSR matrix + jellyroll layout)",
        f"{build_s:.1f} s, {integ.engine.nnz / 1e6:.1f} M entries",
        "once per geometry",
        "",
    )
    console.print(table)


if __name__ == "__main__":
    run()
