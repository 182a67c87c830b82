#!/usr/bin/env python3
"""tok1d sweep end to end: the CSV, JSON and SVG it writes for a folder of tiny images with a
tiny random model, the plug-in codecs (--codecs, AVIF and JPEG XL too), metric subsets
(--metrics), refusals of bad input, and (when cjpeg and cwebp are installed) JPEG and WebP
sizes equal to those of cjpeg -optimize and cwebp -m 6 at the same settings.

Usage: test_sweep_cli.py PATH/TO/tok1d PATH/TO/tok1d_make_test_model
"""
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
import xml.etree.ElementTree as ElementTree

TOK1D = MAKE_MODEL = None
TINY_MODEL_TOKENS = 6  # tests/codec/test_models.h TinyConfig
COLUMNS = ["image", "codec", "scale", "setting", "bytes", "bpp", "psnr", "psnr_y", "ssim", "msssim",
           "encode_ms", "decode_ms", "ssimulacra2", "butteraugli", "butteraugli_3norm"]
METRIC_COLUMNS = {"psnr": ["psnr"], "psnr_y": ["psnr_y"], "ssim": ["ssim"], "msssim": ["msssim"],
                  "ssimulacra2": ["ssimulacra2"], "butteraugli": ["butteraugli", "butteraugli_3norm"]}
PLOTS = {"psnr": "psnr.svg", "msssim": "msssim.svg", "ssimulacra2": "ssimulacra2.svg",
         "butteraugli": "butteraugli.svg"}


def run(*args):
    return subprocess.run([TOK1D, *args], capture_output=True, text=True, timeout=600)


def ppm(width, height, seed=1):
    """A binary PPM with smooth gradients and some texture (no image library needed)."""
    pixels = bytearray()
    state = seed
    for y in range(height):
        for x in range(width):
            state = (state * 1103515245 + 12345) & 0x7FFFFFFF
            pixels += bytes(((x * 255) // width, (y * 255) // height,
                             (128 + (x * y) % 64 + (state >> 16) % 16) % 256))
    return b"P6\n%d %d\n255\n" % (width, height) + bytes(pixels)


class SweepTest(unittest.TestCase):
    def setUp(self):
        self.directory = tempfile.TemporaryDirectory()
        self.addCleanup(self.directory.cleanup)
        self.tmp = self.directory.name
        self.model = os.path.join(self.tmp, "tiny.safetensors")
        subprocess.run([MAKE_MODEL, self.model], check=True)
        self.images = os.path.join(self.tmp, "images")
        os.mkdir(self.images)
        # One size, so that the two images' rate ranges overlap and curves can be averaged.
        for seed, name in enumerate(("a.ppm", "b.ppm")):
            with open(os.path.join(self.images, name), "wb") as out:
                out.write(ppm(96, 64, seed))
        with open(os.path.join(self.images, "README.md"), "w") as out:
            out.write("not an image\n")  # folders contribute image files only
        self.out = os.path.join(self.tmp, "out")

    def sweep(self, *args):
        return run("sweep", self.images, "-o", self.out, "--model", self.model,
                   "--tokens", "1,3,6", "--jpeg", "30,60", "--webp", "20,80", "--scales", "1,2",
                   "-j", "2", *args)

    def test_writes_csv_json_and_plots(self):
        result = self.sweep()
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("2 images, 28 runs", result.stderr)
        self.assertIn("BD-rate of tok1d-adaptive vs tok1d", result.stderr)
        self.assertNotIn("Caution", result.stderr)  # libjpeg's warnings at low quality
        with open(os.path.join(self.out, "sweep.csv")) as f:
            rows = list(csv.DictReader(f))
        # The older columns keep their positions; the perceptual metrics come after the timings.
        self.assertEqual(list(rows[0].keys()), COLUMNS)
        # Per image: tok1d at 3 counts, uniform and adaptive; JPEG and WebP at 2 qualities, each
        # at 2 scales.
        expected = ([("tok1d", "1", k) for k in ("1", "3", "6")] +
                    [("tok1d-adaptive", "1", k) for k in ("1", "3", "6")] +
                    [("jpeg", s, q) for s in ("1", "2") for q in ("30", "60")] +
                    [("webp", s, q) for s in ("1", "2") for q in ("20", "80")])
        for image, (width, height) in (("a.ppm", (96, 64)), ("b.ppm", (96, 64))):
            mine = [r for r in rows if r["image"] == os.path.join(self.images, image)]
            self.assertEqual([(r["codec"], r["scale"], r["setting"]) for r in mine], expected)
            for row in mine:
                self.assertGreater(int(row["bytes"]), 0)
                self.assertAlmostEqual(float(row["bpp"]), int(row["bytes"]) * 8 / (width * height), 5)
                self.assertGreater(float(row["psnr"]), 5)
                self.assertEqual(row["msssim"], "")  # undefined below 176 pixels a side
                self.assertLessEqual(float(row["ssim"]), 1)
                self.assertLessEqual(float(row["ssimulacra2"]), 100)
                self.assertGreater(float(row["butteraugli"]), 0)
                self.assertGreater(float(row["butteraugli_3norm"]), 0)
                self.assertLessEqual(float(row["butteraugli_3norm"]), float(row["butteraugli"]))
            tok1d_bytes = [int(r["bytes"]) for r in mine if r["codec"] == "tok1d"]
            self.assertEqual(tok1d_bytes, sorted(tok1d_bytes))
            # Adaptive allocation stays within the uniform file's size at each budget.
            adaptive_bytes = [int(r["bytes"]) for r in mine if r["codec"] == "tok1d-adaptive"]
            self.assertTrue(all(a <= u for a, u in zip(adaptive_bytes, tok1d_bytes)))
        with open(os.path.join(self.out, "summary.json")) as f:
            summary = json.load(f)
        self.assertEqual(summary["images"], 2)
        self.assertEqual(summary["settings"]["tokens"], [1, 3, 6])
        curves = {"tok1d", "tok1d-adaptive", "jpeg", "jpeg 1/2", "webp", "webp 1/2",
                  "jpeg best scale", "webp best scale"}
        self.assertEqual(set(summary["average_curves"]["psnr"]), curves)
        self.assertEqual(set(summary["bd_rate"]["psnr"]), {"tok1d", "tok1d-adaptive"})
        self.assertEqual(set(summary["bd_rate"]["msssim"]["tok1d"]), curves - {"tok1d"})
        self.assertEqual(set(summary["bd_rate"]),
                         {"psnr", "psnr_y", "ssim", "msssim", "ssimulacra2", "butteraugli",
                          "butteraugli_3norm"})
        self.assertEqual(set(summary["bd_rate"]["ssimulacra2"]["tok1d"]), curves - {"tok1d"})
        self.assertIn("negated", summary["bd_rate_note"])
        self.assertEqual(summary["settings"]["metrics"], list(METRIC_COLUMNS))
        self.assertEqual(set(summary["metric_ms_per_megapixel"]), set(METRIC_COLUMNS))
        self.assertEqual(len(summary["mean_by_setting"]), 14)
        # Butteraugli's average curves hold the distance itself: positive, falling with rate.
        for name, points in summary["average_curves"]["butteraugli"].items():
            self.assertTrue(all(distance > 0 for _, distance in points), name)
        jpeg = summary["average_curves"]["butteraugli"]["jpeg"]
        self.assertGreaterEqual(jpeg[0][1], jpeg[-1][1])
        self.assertIn("SSIMULACRA 2", result.stderr)
        for name in PLOTS.values():
            root = ElementTree.parse(os.path.join(self.out, name)).getroot()
            self.assertTrue(root.tag.endswith("svg"))
        psnr_plot = ElementTree.parse(os.path.join(self.out, "psnr.svg")).getroot()
        polylines = psnr_plot.findall("{http://www.w3.org/2000/svg}polyline")
        # One per curve of the rows whose average exists (a random model's tok1d points need not
        # make a front of two): at least jpeg, jpeg 1/2, webp, webp 1/2.
        averaged = [name for name, points in summary["average_curves"]["psnr"].items()
                    if points and "best" not in name]
        self.assertGreaterEqual(len(averaged), 4)
        self.assertEqual(len(polylines), len(averaged))

    def test_avif_and_jxl_at_every_scale(self):
        result = run("sweep", self.images, "-o", self.out, "--codecs", "jpeg,avif,jxl",
                     "--jpeg", "50", "--avif", "20,60", "--jxl", "300,100", "--scales", "1,2",
                     "--metrics", "psnr,ssimulacra2,butteraugli", "-j", "2")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertNotIn("BD-rate", result.stderr)  # no tok1d rows: nothing to compare
        with open(os.path.join(self.out, "sweep.csv")) as f:
            rows = list(csv.DictReader(f))
        expected = ([("jpeg", s, "50") for s in ("1", "2")] +
                    [("avif", s, q) for s in ("1", "2") for q in ("20", "60")] +
                    [("jxl", s, d) for s in ("1", "2") for d in ("300", "100")])
        mine = [r for r in rows if r["image"].endswith("a.ppm")]
        self.assertEqual([(r["codec"], r["scale"], r["setting"]) for r in mine], expected)
        for codec, worse, better in (("avif", "20", "60"), ("jxl", "300", "100")):
            for scale in ("1", "2"):
                by_setting = {r["setting"]: r for r in mine
                              if r["codec"] == codec and r["scale"] == scale}
                low, high = by_setting[worse], by_setting[better]
                self.assertLess(int(low["bytes"]), int(high["bytes"]), (codec, scale))
                self.assertLess(float(low["ssimulacra2"]), float(high["ssimulacra2"]), (codec, scale))
                self.assertGreater(float(low["butteraugli"]), float(high["butteraugli"]),
                                   (codec, scale))
            # Shrinking to half a side costs about a quarter of the bytes.
            full = [int(r["bytes"]) for r in mine if r["codec"] == codec and r["scale"] == "1"]
            half = [int(r["bytes"]) for r in mine if r["codec"] == codec and r["scale"] == "2"]
            self.assertTrue(all(h < f for h, f in zip(half, full)), codec)
        with open(os.path.join(self.out, "summary.json")) as f:
            summary = json.load(f)
        self.assertEqual(summary["settings"]["codecs"],
                         {"jpeg": [50], "avif": [20, 60], "jxl": [300, 100]})
        self.assertEqual(set(summary["average_curves"]["ssimulacra2"]),
                         {"jpeg", "jpeg 1/2", "avif", "avif 1/2", "jxl", "jxl 1/2",
                          "jpeg best scale", "avif best scale", "jxl best scale"})
        self.assertNotIn("bd_rate", summary)  # no tok1d curve to compare

    def test_metrics_subset(self):
        result = self.sweep("--metrics", "ssimulacra2,psnr", "--no-adaptive")
        self.assertEqual(result.returncode, 0, result.stderr)
        with open(os.path.join(self.out, "sweep.csv")) as f:
            rows = list(csv.DictReader(f))
        self.assertEqual(list(rows[0].keys()), COLUMNS)
        for row in rows:
            self.assertNotEqual(row["psnr"], "")
            self.assertNotEqual(row["ssimulacra2"], "")
            for column in ("psnr_y", "ssim", "msssim", "butteraugli", "butteraugli_3norm"):
                self.assertEqual(row[column], "", column)  # switched off: an empty field
        with open(os.path.join(self.out, "summary.json")) as f:
            summary = json.load(f)
        self.assertEqual(summary["settings"]["metrics"], ["psnr", "ssimulacra2"])  # column order
        self.assertEqual(set(summary["bd_rate"]), {"psnr", "ssimulacra2"})
        self.assertEqual(set(summary["average_curves"]), {"psnr", "ssimulacra2"})
        self.assertEqual(set(summary["metric_ms_per_megapixel"]), {"psnr", "ssimulacra2"})
        for entry in summary["mean_by_setting"]:
            self.assertIsNone(entry["butteraugli"])
            self.assertIsNotNone(entry["ssimulacra2"])
        for metric, name in PLOTS.items():
            self.assertEqual(os.path.exists(os.path.join(self.out, name)),
                             metric in ("psnr", "ssimulacra2"), name)
        self.assertIn("SSIMULACRA 2", result.stderr)
        self.assertNotIn("MS-SSIM", result.stderr)

    def test_refuses_to_overwrite_without_force(self):
        self.assertEqual(self.sweep().returncode, 0)
        again = self.sweep()
        self.assertEqual(again.returncode, 1)
        self.assertIn("sweep.csv", again.stderr)
        self.assertIn("--force", again.stderr)
        self.assertEqual(self.sweep("-f").returncode, 0)

    def test_baselines_only_need_no_model(self):
        result = run("sweep", os.path.join(self.images, "a.ppm"), "-o", self.out,
                     "--codecs", "jpeg,webp", "--jpeg", "30", "--webp", "30", "--scales", "1", "-q")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stderr, "")  # quiet, and no progress bar off a terminal
        with open(os.path.join(self.out, "sweep.csv")) as f:
            self.assertEqual([r["codec"] for r in csv.DictReader(f)], ["jpeg", "webp"])

    def test_patterns_are_expanded(self):
        result = run("sweep", os.path.join(self.images, "*.ppm"), "-o", self.out,
                     "--codecs", "jpeg", "--jpeg", "30", "--scales", "1")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("2 images", result.stderr)

    def test_bad_input(self):
        cases = [
            (["sweep", os.path.join(self.tmp, "missing.png"), "-o", self.out], 1,
             "missing.png: no such file or folder"),
            (["sweep", os.path.join(self.tmp, "*.nothing"), "-o", self.out], 1,
             "no file matches"),
            (["sweep", self.tmp, "-o", self.out, "--codecs", "jpeg"], 1, "no image files"),
            (["sweep", os.path.join(self.images, "README.md"), "-o", self.out, "--codecs", "jpeg"],
             1, "README.md"),
            (["sweep", self.images, "-o", self.out, "--model", self.model, "--tokens", "7"], 1,
             "--tokens 7 is more than the model's 6 tokens per tile"),
            (["sweep", self.images, "-o", self.out, "--tokens", "0"], 2, "--tokens"),
            (["sweep", self.images, "-o", self.out, "--codecs", "png"], 2, "--codecs"),
            (["sweep", self.images, "-o", self.out, "--jpeg", "101"], 2, "--jpeg"),
            (["sweep", self.images, "-o", self.out, "--avif", "101"], 2, "--avif"),
            (["sweep", self.images, "-o", self.out, "--jxl", "2501"], 2, "--jxl"),
            (["sweep", self.images, "-o", self.out, "--metrics", "vmaf"], 2, "--metrics"),
            (["sweep", self.images, "-o", os.path.join(self.images, "a.ppm")], 1,
             "is not a folder"),
        ]
        for args, code, message in cases:
            with self.subTest(args=args[1:]):
                result = run(*args)
                self.assertEqual(result.returncode, code, result.stderr)
                self.assertIn(message, result.stderr)
                self.assertFalse(os.path.exists(os.path.join(self.out, "sweep.csv")))


@unittest.skipUnless(shutil.which("cjpeg") and shutil.which("cwebp"),
                     "cjpeg and cwebp not installed (libjpeg-turbo-progs, webp)")
class ReferenceToolsTest(unittest.TestCase):
    """The libraries called as cjpeg and cwebp call them: the same bytes at the same settings."""

    def test_sizes_match_cjpeg_and_cwebp(self):
        with tempfile.TemporaryDirectory() as tmp:
            image = os.path.join(tmp, "image.ppm")
            with open(image, "wb") as out:
                out.write(ppm(200, 150, seed=7))
            out_dir = os.path.join(tmp, "out")
            jpeg_qualities, webp_qualities = [2, 10, 50, 90], [0, 10, 75, 95]
            result = run("sweep", image, "-o", out_dir, "--codecs", "jpeg,webp", "--scales", "1",
                         "--jpeg", ",".join(map(str, jpeg_qualities)),
                         "--webp", ",".join(map(str, webp_qualities)))
            self.assertEqual(result.returncode, 0, result.stderr)
            with open(os.path.join(out_dir, "sweep.csv")) as f:
                ours = {(r["codec"], int(r["setting"])): int(r["bytes"]) for r in csv.DictReader(f)}
            for quality in jpeg_qualities:
                made = subprocess.run(["cjpeg", "-quality", str(quality), "-optimize", image],
                                      capture_output=True, check=True).stdout
                self.assertLessEqual(abs(ours[("jpeg", quality)] - len(made)), 0.01 * len(made),
                                     f"jpeg quality {quality}")
            for quality in webp_qualities:
                target = os.path.join(tmp, "out.webp")
                subprocess.run(["cwebp", "-quiet", "-q", str(quality), "-m", "6", image, "-o", target],
                               check=True)
                size = os.path.getsize(target)
                self.assertLessEqual(abs(ours[("webp", quality)] - size), 0.01 * size,
                                     f"webp quality {quality}")


if __name__ == "__main__":
    TOK1D, MAKE_MODEL = sys.argv[1], sys.argv[2]
    unittest.main(argv=sys.argv[:1], verbosity=2)
