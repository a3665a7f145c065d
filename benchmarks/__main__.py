"""Run every benchmark and print jellyroll's figure beside its anchor, as a ratio.

Machines are noisy: each benchmark times jellyroll and its anchor in the same run.
"""

from __future__ import annotations

from benchmarks import (
    bench_bends3d,
    bench_diagnose,
    bench_locate,
    bench_nxct,
    bench_nxct_big,
    bench_operando,
    bench_phantom,
    bench_recon,
    bench_reduce,
    bench_spots,
)


def main() -> None:
    for module in (
        bench_reduce,
        bench_recon,
        bench_phantom,
        bench_nxct,
        bench_nxct_big,
        bench_bends3d,
        bench_diagnose,
        bench_locate,
        bench_operando,
        bench_spots,
    ):
        module.run()


if __name__ == "__main__":
    main()
