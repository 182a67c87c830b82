#!/usr/bin/env python3
"""tok1d compare: every metric for one pair of images, as text and as JSON; equal images score
perfectly; a distorted image scores worse on every metric; images of different sizes, an
unreadable file and a missing file exit 1 with one line; AVIF and JPEG XL inputs when avifenc
and cjxl are installed.

Usage: test_compare.py PATH/TO/tok1d
"""
import json
import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest
import zlib

from cli_assertions import assert_one_line_error

TOK1D = None
KEYS = ["reference", "distorted", "width", "height", "psnr", "psnr_y", "ssim", "msssim",
        "ssimulacra2", "butteraugli", "butteraugli_3norm", "identical"]
METRICS = ["psnr", "psnr_y", "ssim", "msssim", "ssimulacra2", "butteraugli", "butteraugli_3norm"]


def run(*args, stdin=None):
    return subprocess.run([TOK1D, *args], input=stdin, capture_output=True, timeout=120)


def ppm(width, height, seed=1, noise=16):
    """A binary PPM with gradients, an edge and some texture (no image library needed)."""
    pixels = bytearray()
    state = seed
    for y in range(height):
        for x in range(width):
            state = (state * 1103515245 + 12345) & 0x7FFFFFFF
            n = (state >> 16) % noise if noise else 0
            pixels += bytes((((x * 255) // width + n) % 256,
                             ((y * 200) // height + (60 if x > width // 2 else 0)) % 256,
                             (128 + (x * y) % 64 + n) % 256))
    return b"P6\n%d %d\n255\n" % (width, height) + bytes(pixels)


def text_values(stdout):
    """{metric: its value text} from the text output ("name: value ...")."""
    values = {}
    for line in stdout.splitlines():
        name, _, rest = line.partition(":")
        values[name] = rest.split()[0] if rest.split() else ""
    return values


class CompareTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.reference = self.write("reference.ppm", ppm(200, 184, seed=1))
        # The same picture with other noise: a mild distortion everywhere.
        self.distorted = self.write("distorted.ppm", ppm(200, 184, seed=2))

    def write(self, name, data):
        path = os.path.join(self.tmp.name, name)
        with open(path, "wb") as out:
            out.write(data)
        return path

    def compare(self, *args):
        result = run("compare", *args)
        self.assertEqual(result.returncode, 0, result.stderr.decode())
        self.assertEqual(result.stderr, b"")
        return result.stdout.decode()

    def test_equal_images_score_perfectly(self):
        values = text_values(self.compare(self.reference, self.reference))
        self.assertEqual(list(values), METRICS)
        self.assertEqual(values["psnr"], "inf")
        self.assertEqual(values["psnr_y"], "inf")
        self.assertEqual(float(values["ssim"]), 1.0)
        self.assertEqual(float(values["msssim"]), 1.0)
        self.assertEqual(float(values["ssimulacra2"]), 100.0)
        self.assertEqual(float(values["butteraugli"]), 0.0)
        self.assertEqual(float(values["butteraugli_3norm"]), 0.0)

    def test_json_of_equal_images(self):
        result = json.loads(self.compare(self.reference, self.reference, "--json"))
        self.assertEqual(list(result), KEYS)
        self.assertEqual(result["reference"], self.reference)
        self.assertEqual((result["width"], result["height"]), (200, 184))
        self.assertIsNone(result["psnr"])  # infinite: JSON has no infinity
        self.assertIsNone(result["psnr_y"])
        self.assertTrue(result["identical"])
        self.assertEqual(result["ssimulacra2"], 100.0)
        self.assertEqual(result["butteraugli"], 0.0)
        self.assertEqual(result["butteraugli_3norm"], 0.0)

    def test_distorted_image_scores_worse_on_every_metric(self):
        result = json.loads(self.compare(self.reference, self.distorted, "--json"))
        self.assertFalse(result["identical"])
        for metric in METRICS:
            self.assertIsInstance(result[metric], float, metric)
            self.assertTrue(math.isfinite(result[metric]), metric)
        self.assertGreater(result["psnr"], 20)
        self.assertLess(result["psnr"], 60)
        self.assertLess(result["ssim"], 1)
        self.assertLess(result["msssim"], 1)
        self.assertLess(result["ssimulacra2"], 100)
        self.assertGreater(result["butteraugli"], 0)
        self.assertGreater(result["butteraugli"], result["butteraugli_3norm"])
        # The text output shows the same numbers, rounded.
        values = text_values(self.compare(self.reference, self.distorted))
        self.assertAlmostEqual(float(values["psnr"]), result["psnr"], places=3)
        self.assertAlmostEqual(float(values["ssimulacra2"]), result["ssimulacra2"], places=5)
        self.assertAlmostEqual(float(values["butteraugli"]), result["butteraugli"], places=5)

    def test_standard_input(self):
        with open(self.distorted, "rb") as f:
            result = run("compare", self.reference, "-", "--json", stdin=f.read())
        self.assertEqual(result.returncode, 0, result.stderr.decode())
        self.assertEqual(json.loads(result.stdout)["distorted"], "<stdin>")
        assert_one_line_error(self, run("compare", "-", "-"), 1, "standard input")

    def test_small_image_leaves_out_msssim(self):
        small = self.write("small.ppm", ppm(40, 30))
        result = json.loads(self.compare(small, small, "--json"))
        self.assertIsNone(result["msssim"])
        self.assertEqual(result["ssim"], 1.0)
        self.assertIn("msssim:            n/a (needs both sides of at least 176 pixels)",
                      self.compare(small, small))

    def test_different_sizes_exit_1(self):
        other = self.write("other.ppm", ppm(200, 180))
        result = run("compare", self.reference, other)
        assert_one_line_error(self, result, 1, "differ in size", "200x184", "200x180")
        self.assertEqual(result.stdout, b"")
        assert_one_line_error(self, run("compare", self.reference, other, "--json"), 1, "size")

    def test_bad_and_missing_files_exit_1(self):
        bad = self.write("bad.png", b"this is not an image\n")
        assert_one_line_error(self, run("compare", self.reference, bad), 1, "bad.png")
        assert_one_line_error(self, run("compare", bad, self.reference), 1, "bad.png")
        missing = os.path.join(self.tmp.name, "missing.png")
        assert_one_line_error(self, run("compare", self.reference, missing), 1, "missing.png")

    def test_usage_errors_exit_2(self):
        assert_one_line_error(self, run("compare", self.reference), 2)
        assert_one_line_error(self, run("compare", self.reference, self.distorted, "--nope"), 2)

    def test_avif_and_jxl_inputs(self):
        """Decoded by eval/codecs; transparency composited over white on both sides."""
        for alpha in (False, True):
            png = os.path.join(self.tmp.name, "reference.png")
            write_png(png, self.reference, alpha)  # the tools read PNG, not PPM
            encoded = {"avif": os.path.join(self.tmp.name, "encoded.avif"),
                       "jxl": os.path.join(self.tmp.name, "encoded.jxl")}
            commands = {"avif": ["avifenc", "-s", "9", "--min", "20", "--max", "20", png,
                                 encoded["avif"]],
                        "jxl": ["cjxl", png, encoded["jxl"], "-d", "1", "-e", "3"]}
            for name, command in commands.items():
                with self.subTest(format=name, alpha=alpha):
                    if shutil.which(command[0]) is None:
                        continue  # not installed
                    subprocess.run(command, check=True, capture_output=True)
                    result = run("compare", png, encoded[name], "--json")
                    self.assertEqual(result.returncode, 0, result.stderr.decode())
                    result = json.loads(result.stdout)
                    self.assertGreater(result["psnr"], 22)  # far lower if alpha were dropped
                    self.assertLess(result["ssimulacra2"], 100)


def write_png(path, ppm_path, alpha=False):
    """An 8-bit RGB PNG of a binary PPM (zlib only); with alpha, RGBA with the left half at
    alpha 128."""
    with open(ppm_path, "rb") as f:
        data = f.read()
    header, pixels = data.split(b"\n255\n", 1)
    width, height = (int(v) for v in header.split()[1:3])
    rows = b""
    for y in range(height):
        row = pixels[y * width * 3:(y + 1) * width * 3]
        if alpha:
            row = b"".join(row[x * 3:x * 3 + 3] + bytes((128 if x < width // 2 else 255,))
                           for x in range(width))
        rows += b"\0" + row

    def chunk(kind, body):
        return (struct.pack(">I", len(body)) + kind + body +
                struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    colour_type = 6 if alpha else 2
    with open(path, "wb") as out:
        out.write(b"\x89PNG\r\n\x1a\n" +
                  chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)) +
                  chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


if __name__ == "__main__":
    TOK1D = sys.argv[1]
    del sys.argv[1:]
    unittest.main(verbosity=1)
