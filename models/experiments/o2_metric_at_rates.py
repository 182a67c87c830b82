"""Issue 16's "mean SSIMULACRA 2 at 0.03 and 0.05 bpp": per image, a codec's curve (for a codec
with scales, the Pareto front over all its scales: its best scale there), read at each rate
linearly in log bpp; then the mean over the images whose curve reaches that rate, as
docs/sweep.md's figures (tok1d −59.6 / −50.4, JPEG at its best scale −59.8 / −43.3 for
d7509d95). Rows may come from several sweep.csv files (JPEG from a full sweep, tok1d from another).

  python3 models/experiments/o2_metric_at_rates.py --metric ssimulacra2 \\
      docs/sweep-kodak/sweep.csv:jpeg docs/sweep-kodak/sweep.csv:tok1d
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from compare_sweeps import at_rate, pareto, read  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sources", nargs="+", help="SWEEP.csv:CODEC")
    ap.add_argument("--metric", default="ssimulacra2")
    ap.add_argument("--rates", default="0.03,0.05")
    args = ap.parse_args()
    for source in args.sources:
        path, codec = source.rsplit(":", 1)
        rows = read(path, codec, every_scale=True)
        cells = []
        for bpp in (float(r) for r in args.rates.split(",")):
            values = []
            for image_rows in rows.values():
                curve = pareto([(float(r["bpp"]), float(r[args.metric])) for r in image_rows
                                if r.get(args.metric)])
                value = at_rate(curve, bpp)
                if value is not None:
                    values.append(value)
            cells.append(f"{bpp}: {np.mean(values):.1f} ({len(values)} images)" if values else f"{bpp}: -")
        print(f"{codec:6s} {args.metric}  " + "  ".join(cells) + f"  [{path}]")


if __name__ == "__main__":
    main()
