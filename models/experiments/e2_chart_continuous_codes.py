"""Is the chart's colour error the quantiser's or the decoder's? Decodes samples/chart.png's
tiles (PyTorch, no refinement or deblocking) from the encoder's rounded FSQ values and from the
same values unrounded, and prints each flat bar's worst channel error of its mean colour.

  python3 models/experiments/e2_chart_continuous_codes.py MODEL.safetensors
"""
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from data import load_rgb, tile_image, untile_image  # noqa: E402
from eval_run import bar_errors, chart_bars  # noqa: E402
from export import load_model  # noqa: E402

torch.set_num_threads(1)
model = load_model(sys.argv[1])[0].eval()
chart = load_rgb(os.path.join(HERE, "..", "..", "samples", "chart.png"))
tiles, rows, cols = tile_image(chart, model.cfg["tile"])
x = torch.tensor(tiles).float() / 255
bars = chart_bars(chart)


def report(name, y):
    image = untile_image((y.clamp(0, 1) * 255).round().byte().numpy(), rows, cols, *chart.shape[:2])
    errors = bar_errors(chart, image, bars)
    print(f"{name}: worst {max(errors):.1f}, bars " + " ".join(f"{e:.0f}" for e in errors))


with torch.no_grad():
    bounded = model.fsq.bound(model.encode_latent(x))
    for k in (32, 128):
        keep = torch.full((x.shape[0],), k)
        report(f"k = {k:3d} rounded   ", model.decode_codes(torch.round(bounded) / model.fsq.half_width, keep))
        report(f"k = {k:3d} unrounded ", model.decode_codes(bounded / model.fsq.half_width, keep))
