#!/usr/bin/env python3
"""tok1d encode / decode end to end: round trips, rate settings, trimming, truncation and every
refusal (exit code, one-line message, no output file left behind).

Runs with tiny random models made by tok1d_make_test_model; with the real model file as well
when it exists (one round trip on a larger image).

Usage: test_codec_cli.py PATH/TO/tok1d PATH/TO/tok1d_make_test_model [REAL_MODEL]
"""
import json
import math
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cli"))
from cli_assertions import assert_one_line_error  # noqa: E402

TOK1D = MAKE_MODEL = REAL_MODEL = None


def run(*args, stdin=None):
    return subprocess.run([TOK1D, *args], input=stdin, capture_output=True, timeout=300)


def ppm(width, height, seed=1):
    """A binary PPM with a deterministic pattern (no image library needed)."""
    pixels = bytearray()
    state = seed
    for y in range(height):
        for x in range(width):
            state = (state * 1103515245 + 12345) & 0x7FFFFFFF
            pixels += bytes(((x * 7 + y * 3) % 256, (x * y) % 256, (state >> 16) % 256))
    return b"P6\n%d %d\n255\n" % (width, height) + bytes(pixels)


def mixed_ppm(width, height):
    """Smooth in the left half, noise in the right: tiles differ in what tokens buy."""
    pixels = bytearray()
    state = 7
    for y in range(height):
        for x in range(width):
            state = (state * 1103515245 + 12345) & 0xFFFFFFFF
            if x < width // 2:
                pixels += bytes(((60 + x) % 256, (80 + y) % 256, 120))
            else:
                pixels += bytes(((state >> 8) & 0xFF, (state >> 12) & 0xFF, (state >> 16) & 0xFF))
    return b"P6\n%d %d\n255\n" % (width, height) + bytes(pixels)


def ppm_pixels(data):
    fields = data.split(maxsplit=4)
    assert fields[0] == b"P6" and fields[3] == b"255"
    return fields[4]


def psnr(a, b):
    """RGB PSNR (peak 255) of two equally sized sample strings."""
    error = sum((x - y) ** 2 for x, y in zip(a, b)) / len(a)
    return math.inf if error == 0 else 10 * math.log10(255 * 255 / error)


def png_size(data):
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


def ppm_size(data):
    fields = data.split(maxsplit=3)
    assert fields[0] == b"P6"
    return int(fields[1]), int(fields[2])


class CodecCliTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.models_dir = tempfile.TemporaryDirectory()
        cls.model = os.path.join(cls.models_dir.name, "tiny.safetensors")
        cls.other_model = os.path.join(cls.models_dir.name, "other.safetensors")
        subprocess.run([MAKE_MODEL, cls.model, "1", "tiny"], check=True)
        subprocess.run([MAKE_MODEL, cls.other_model, "2", "other"], check=True)

    @classmethod
    def tearDownClass(cls):
        cls.models_dir.cleanup()

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name
        self.outputs = os.path.join(self.dir, "out")
        os.mkdir(self.outputs)

    def tearDown(self):
        self.tmp.cleanup()

    def path(self, name):
        return os.path.join(self.dir, name)

    def out(self, name):
        return os.path.join(self.outputs, name)

    def image(self, width, height, seed=1):
        path = self.path(f"in_{width}x{height}_{seed}.ppm")
        with open(path, "wb") as f:
            f.write(ppm(width, height, seed))
        return path

    def encode(self, image, output, *args, model=None):
        return run("encode", image, "-o", output, "--model", model or self.model, *args)

    def decode(self, t1d, output, *args, model=None):
        return run("decode", t1d, "-o", output, "--model", model or self.model, *args)

    def ok(self, result):
        self.assertEqual(result.returncode, 0, result.stderr.decode())
        return result

    def assert_error(self, result, rc, *fragments):
        assert_one_line_error(self, result, rc, *fragments)
        self.assertEqual(os.listdir(self.outputs), [], "an output file was left behind")

    def read(self, path):
        with open(path, "rb") as f:
            return f.read()

    # -- round trips ---------------------------------------------------------------------------

    def test_round_trip_keeps_any_size(self):
        for width, height in [(1, 1), (17, 300), (300, 17), (37, 19), (16, 16)]:
            with self.subTest(size=(width, height)):
                t1d, png = self.out(f"{width}x{height}.t1d"), self.out(f"{width}x{height}.png")
                result = self.ok(self.encode(self.image(width, height), t1d, "--tokens", "4"))
                line = result.stderr.decode().strip()
                self.assertEqual(line.count("\n"), 0)
                self.assertIn(f"({width}x{height}, ", line)
                self.assertIn("4 tokens per tile", line)
                self.assertIn(f"{os.path.getsize(t1d)} bytes", line)
                self.assertIn("bpp", line)
                self.ok(self.decode(t1d, png))
                self.assertEqual(png_size(self.read(png)), (width, height))

    def test_ppm_output_and_stats(self):
        t1d, ppm_out = self.out("a.t1d"), self.out("a.ppm")
        result = self.ok(self.encode(self.image(40, 30), t1d, "--tokens", "6", "--stats"))
        self.assertRegex(result.stderr.decode(), r"PSNR -?\d+\.\d\d dB")
        self.ok(self.decode(t1d, ppm_out))
        self.assertEqual(ppm_size(self.read(ppm_out)), (40, 30))

    def test_stdin_and_stdout(self):
        image = ppm(33, 20)
        encoded = self.ok(run("encode", "-", "-o", "-", "--tokens", "3", "--model", self.model, stdin=image))
        self.assertEqual(encoded.stdout[:4], b"\x89T1D")
        decoded = self.ok(run("decode", "-", "-o", "-", "--model", self.model, stdin=encoded.stdout))
        self.assertEqual(png_size(decoded.stdout), (33, 20))

    def test_trimmed_file_decodes_like_decode_tokens(self):
        image = self.image(50, 35)
        full, trimmed = self.out("full.t1d"), self.out("trimmed.t1d")
        self.ok(self.encode(image, full, "--tokens", "6"))
        for k in (1, 2, 5):
            self.ok(run("trim", full, "-o", trimmed, "--tokens", str(k), "-f"))
            a, b = self.out(f"direct{k}.png"), self.out(f"trimmed{k}.png")
            self.ok(self.decode(full, a, "--tokens", str(k)))
            self.ok(self.decode(trimmed, b))
            self.assertEqual(self.read(a), self.read(b), f"k={k}")
            # Encoding at k directly gives the same file as trimming (which drops the colour
            # restoration of the tiles it cuts).
            direct_encode = self.out(f"encoded{k}.t1d")
            self.ok(self.encode(image, direct_encode, "--tokens", str(k), "--no-restore"))
            self.assertEqual(self.read(direct_encode), self.read(trimmed))

    def test_colour_restoration_is_written_applied_and_can_be_left_out(self):
        image = self.image(60, 40)
        restored, plain = self.out("restored.t1d"), self.out("plain.t1d")
        self.ok(self.encode(image, restored, "--tokens", "6"))
        self.ok(self.encode(image, plain, "--tokens", "6", "--no-restore"))
        self.assertIn("rstr", self.info(restored)["extra_chunks"])
        self.assertNotIn("rstr", self.info(plain)["extra_chunks"])
        self.assertGreater(self.info(restored)["restoration_tiles"], 0)
        self.assertEqual(self.info(plain)["restoration_tiles"], 0)
        self.assertIn("colour maps on", self.ok(run("info", restored)).stdout.decode())
        original = ppm_pixels(self.read(image))
        decoded = {}
        for name, t1d, args in (("restored", restored, ()), ("plain", plain, ()),
                                ("ignored", restored, ("--no-restore",))):
            decoded[name] = self.out(f"{name}.ppm")
            self.ok(self.decode(t1d, decoded[name], *args))
        self.assertGreater(psnr(original, ppm_pixels(self.read(decoded["restored"]))),
                           psnr(original, ppm_pixels(self.read(decoded["plain"]))))
        # The tokens are the same: ignoring the maps gives the plain file's decode.
        self.assertEqual(self.read(decoded["ignored"]), self.read(decoded["plain"]))
        # A byte budget counts the chunk.
        budget = os.path.getsize(restored)
        fitted = self.out("fitted.t1d")
        self.ok(self.encode(image, fitted, "--bytes", str(budget - 1)))
        self.assertLessEqual(os.path.getsize(fitted), budget - 1)

    def test_truncated_file_decodes_its_complete_layers(self):
        full, cut, png = self.out("full.t1d"), self.path("cut.t1d"), self.out("cut.png")
        # A cut file loses the layer span it ends in (format 1.2, spans of 1 KiB): 600 tiles
        # make layers of 450 bytes, so 6 layers are two spans of 3.
        self.ok(self.encode(self.image(480, 320), full, "--tokens", "6", "--no-restore"))
        data = self.read(full)
        with open(cut, "wb") as f:
            f.write(data[: len(data) * 2 // 3])
        result = self.ok(self.decode(cut, png))
        stderr = result.stderr.decode()
        self.assertEqual(stderr.count("truncated"), 1, stderr)  # one warning, not two
        complete = int(stderr.split("truncated after ")[1].split()[0])
        self.assertTrue(0 < complete < 6)
        # --strict refuses it: exit 1, one line, no output.
        strict_png = self.out("strict.png")
        strict = self.decode(cut, strict_png, "--strict")
        self.assertEqual(strict.returncode, 1)
        self.assertIn("truncated", strict.stderr.decode())
        self.assertEqual(len(strict.stderr.decode().strip().splitlines()), 1)
        self.assertFalse(os.path.exists(strict_png))
        self.ok(self.decode(full, self.out("strict-full.png"), "--strict"))
        reference = self.out("reference.png")
        self.ok(self.decode(full, reference, "--tokens", str(complete)))
        self.assertEqual(self.read(png), self.read(reference))

    def test_exif_orientation_turns_the_image_upright(self):
        # A "phone" JPEG stored sideways: 64x32 pixels with EXIF orientation 6 (rotate 90 degrees
        # clockwise to display). It encodes and decodes upright, 32x64; --keep-orientation keeps
        # the stored 64x32.
        cjpeg = shutil.which("cjpeg")
        if cjpeg is None:
            self.skipTest("cjpeg (libjpeg-turbo-progs) is not installed")
        ppm = self.path("sideways.ppm")
        with open(ppm, "wb") as f:
            f.write(b"P6 64 32 255\n" + bytes((x * 4) % 256 for x in range(64 * 32 * 3)))
        jpeg_data = subprocess.run([cjpeg, "-quality", "90", ppm], check=True,
                                   capture_output=True).stdout
        # EXIF: a big-endian TIFF header with one IFD entry, Orientation (0x0112) SHORT = 6.
        tiff = (b"MM\x00\x2a\x00\x00\x00\x08" + b"\x00\x01" +
                b"\x01\x12\x00\x03\x00\x00\x00\x01\x00\x06\x00\x00" + b"\x00\x00\x00\x00")
        app1 = b"Exif\x00\x00" + tiff
        segment = b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1
        jpeg = self.path("sideways.jpg")
        with open(jpeg, "wb") as f:
            f.write(jpeg_data[:2] + segment + jpeg_data[2:])
        for extra, size in (((), (32, 64)), (("--keep-orientation",), (64, 32))):
            t1d, png = self.out("o.t1d"), self.out("o.png")
            self.ok(self.encode(jpeg, t1d, "--tokens", "2", "-f", *extra))
            self.ok(self.decode(t1d, png, "-f"))
            with open(png, "rb") as f:
                width, height = struct.unpack(">II", f.read(24)[16:24])
            self.assertEqual((width, height), size, extra)

    # -- rate settings -------------------------------------------------------------------------

    def test_bytes_gives_the_largest_file_that_fits(self):
        # Uniform allocation: exactly the --tokens file of the largest k that fits.
        image = self.image(64, 64)
        sizes = {}
        for k in range(1, 7):
            path = self.out(f"k{k}.t1d")
            self.ok(self.encode(image, path, "--tokens", str(k)))
            sizes[k] = os.path.getsize(path)
        for k in range(1, 6):
            for budget in (sizes[k], sizes[k + 1] - 1):
                path = self.out(f"b{budget}.t1d")
                self.ok(self.encode(image, path, "--bytes", str(budget), "--allocation", "uniform", "-f"))
                self.assertEqual(self.read(path), self.read(self.out(f"k{k}.t1d")), f"budget {budget}")
        bpp_path = self.out("bpp.t1d")
        bpp = sizes[3] * 8 / (64 * 64)
        self.ok(self.encode(image, bpp_path, "--bpp", repr(bpp + 1e-9), "--allocation", "uniform"))
        self.assertEqual(os.path.getsize(bpp_path), sizes[3])

    def mixed_image(self, width=96, height=64):
        path = self.path(f"mixed_{width}x{height}.ppm")
        with open(path, "wb") as f:
            f.write(mixed_ppm(width, height))
        return path

    def info(self, t1d):
        return json.loads(self.ok(run("info", "--json", t1d)).stdout)

    def assert_summary_matches(self, line, t1d):
        """The encode line states the file's real token counts."""
        counts = self.info(t1d)["tokens_per_tile"]
        if min(counts) == max(counts):
            self.assertIn(f"{counts[0]} token{'' if counts[0] == 1 else 's'} per tile", line)
        else:
            mean = sum(counts) / len(counts)
            self.assertIn(f"mean {mean:.1f} tokens per tile ({min(counts)}..{max(counts)})", line)
        self.assertIn(f"{os.path.getsize(t1d)} bytes", line)

    def test_adaptive_bytes_fit_the_budget(self):
        image = self.mixed_image()
        self.ok(self.encode(image, self.out("k1.t1d"), "--tokens", "1"))
        self.ok(self.encode(image, self.out("k6.t1d"), "--tokens", "6"))
        smallest, largest = os.path.getsize(self.out("k1.t1d")), os.path.getsize(self.out("k6.t1d"))
        per_tile = 0  # adaptive files whose tiles keep different counts
        for budget in (smallest, (2 * smallest + largest) // 3, (smallest + largest) // 2,
                       (smallest + 2 * largest) // 3, largest - 1, largest + 50):
            for allocation in ("adaptive", "uniform"):
                with self.subTest(budget=budget, allocation=allocation):
                    path = self.out(f"{allocation}{budget}.t1d")
                    result = self.ok(self.encode(image, path, "--bytes", str(budget), "--allocation", allocation))
                    self.assertLessEqual(os.path.getsize(path), budget)
                    self.assert_summary_matches(result.stderr.decode().strip(), path)
                    counts = self.info(path)["tokens_per_tile"]
                    if allocation == "uniform":
                        self.assertEqual(min(counts), max(counts))
                    per_tile += min(counts) != max(counts)
        self.assertGreater(per_tile, 0, "no budget gave per-tile counts: the summary's mean form is untested")
        # --bpp the same way.
        path = self.out("bpp.t1d")
        self.ok(self.encode(image, path, "--bpp", repr((smallest + largest) / 2 * 8 / (96 * 64))))
        self.assertLessEqual(os.path.getsize(path), (smallest + largest) // 2)

    def test_default_allocation_uniform_for_sizes_adaptive_for_psnr(self):
        # As measured on Kodak (docs/sweep.md): the same files as the explicit choices.
        image = self.mixed_image()
        self.ok(self.encode(image, self.out("k1.t1d"), "--tokens", "1"))
        self.ok(self.encode(image, self.out("k6.t1d"), "--tokens", "6"))
        budget = str((os.path.getsize(self.out("k1.t1d")) + os.path.getsize(self.out("k6.t1d"))) // 2)
        full_ppm = self.out("k6.ppm")
        self.ok(self.decode(self.out("k6.t1d"), full_ppm))
        target = f"{psnr(ppm_pixels(self.read(image)), ppm_pixels(self.read(full_ppm))) - 1:.3f}"
        for rate, default in ((["--bytes", budget], "uniform"), (["--psnr", target], "adaptive")):
            with self.subTest(rate=rate):
                implicit, explicit = self.out(f"{rate[0]}.t1d"), self.out(f"{rate[0]}-{default}.t1d")
                self.ok(self.encode(image, implicit, *rate))
                self.ok(self.encode(image, explicit, *rate, "--allocation", default))
                self.assertEqual(self.read(implicit), self.read(explicit))
        help_text = run("encode", "--help").stdout.decode()
        self.assertIn("default: uniform with --bytes and --bpp, adaptive with --psnr", help_text)

    def test_psnr_reaches_the_target(self):
        image = self.mixed_image()
        full, full_ppm = self.out("k6.t1d"), self.out("k6.ppm")
        self.ok(self.encode(image, full, "--tokens", "6"))
        self.ok(self.decode(full, full_ppm))
        original = ppm_pixels(self.read(image))
        best = psnr(original, ppm_pixels(self.read(full_ppm)))
        for target in (best - 3, best - 1, best - 0.05):
            for allocation in ("adaptive", "uniform"):
                with self.subTest(target=target, allocation=allocation):
                    path, decoded = self.out(f"{allocation}{target:.2f}.t1d"), self.out("decoded.ppm")
                    result = self.ok(self.encode(image, path, "--psnr", f"{target:.3f}", "--allocation",
                                                 allocation, "--stats"))
                    line = result.stderr.decode().strip()
                    self.assert_summary_matches(line, path)
                    stated = float(re.search(r"PSNR (-?\d+\.\d+) dB", line).group(1))
                    self.ok(self.decode(path, decoded, "-f"))
                    measured = psnr(original, ppm_pixels(self.read(decoded)))
                    self.assertGreaterEqual(measured, round(target, 3) - 1e-9)
                    self.assertAlmostEqual(stated, measured, delta=0.006)
                    self.assertLessEqual(os.path.getsize(path), os.path.getsize(full))

    def test_unreachable_psnr_names_the_best(self):
        result = self.encode(self.mixed_image(), self.out("x.t1d"), "--psnr", "99")
        self.assert_error(result, 1, "cannot reach 99.00 dB", "all 6 tokens per tile give ")
        self.assertRegex(result.stderr.decode(), r"give -?\d+\.\d\d dB$")
        self.assert_error(self.encode(self.mixed_image(), self.out("x.t1d"), "--psnr", "99",
                                      "--allocation", "uniform"), 1, "cannot reach 99.00 dB")

    def test_adaptive_budget_below_the_smallest_file(self):
        self.assert_error(self.encode(self.image(20, 20), self.out("x.t1d"), "--bytes", "50",
                                      "--allocation", "adaptive"), 1, "smallest file", "bytes")

    def test_unreachable_rate_is_an_error(self):
        self.assert_error(self.encode(self.image(20, 20), self.out("x.t1d"), "--bytes", "50"),
                          1, "smallest file")
        self.assert_error(self.encode(self.image(20, 20), self.out("x.t1d"), "--bpp", "0.01"),
                          1, "bpp")

    def test_rate_options_are_exclusive_and_required(self):
        image = self.image(8, 8)
        self.assert_error(self.encode(image, self.out("x.t1d")), 2)
        self.assert_error(self.encode(image, self.out("x.t1d"), "--tokens", "2", "--bytes", "500"), 2)
        self.assert_error(self.encode(image, self.out("x.t1d"), "--tokens", "0"), 2)
        self.assert_error(self.encode(image, self.out("x.t1d"), "--bpp", "-1"), 2)
        self.assert_error(self.encode(image, self.out("x.t1d"), "--psnr", "20", "--tokens", "2"), 2)
        self.assert_error(self.encode(image, self.out("x.t1d"), "--psnr", "20", "--bytes", "500"), 2)
        self.assert_error(self.encode(image, self.out("x.t1d"), "--psnr", "0"), 2)
        # --tokens is the same count everywhere: an allocation is meaningless with it.
        self.assert_error(self.encode(image, self.out("x.t1d"), "--tokens", "2", "--allocation", "adaptive"), 2)
        self.assert_error(self.encode(image, self.out("x.t1d"), "--bytes", "500", "--allocation", "greedy"), 2)

    # -- refusals ------------------------------------------------------------------------------

    def test_too_many_tokens(self):
        image = self.image(8, 8)
        self.assert_error(self.encode(image, self.out("x.t1d"), "--tokens", "7"), 1, "more than the model")
        t1d = self.path("ok.t1d")
        self.ok(self.encode(image, t1d, "--tokens", "2"))
        self.assert_error(self.decode(t1d, self.out("x.png"), "--tokens", "7"), 1, "more than the model")
        self.assert_error(self.decode(t1d, self.out("x.png"), "--tokens", "0"), 2)

    def test_wrong_model(self):
        t1d = self.path("a.t1d")
        self.ok(self.encode(self.image(20, 20), t1d, "--tokens", "3"))
        self.assert_error(self.decode(t1d, self.out("x.png"), model=self.other_model), 1,
                          "made with model 'tiny'", "--model")

    def test_corrupt_inputs(self):
        t1d = self.path("a.t1d")
        self.ok(self.encode(self.image(20, 20), t1d, "--tokens", "3"))
        data = bytearray(self.read(t1d))
        data[-20] ^= 0x40
        bad = self.path("bad.t1d")
        with open(bad, "wb") as f:
            f.write(data)
        if os.environ.get("TOK1D_CHECKSUMS_SKIPPED") != "1":  # fuzzing builds (tests/checksum_mode.h)
            self.assert_error(self.decode(bad, self.out("x.png")), 1, "bad.t1d")
        self.assert_error(self.decode(self.image(8, 8), self.out("x.png")), 1)
        not_image = self.path("not_image.ppm")
        with open(not_image, "wb") as f:
            f.write(b"hello")
        self.assert_error(self.encode(not_image, self.out("x.t1d"), "--tokens", "2"), 1)
        bad_model = self.path("bad.safetensors")
        with open(bad_model, "wb") as f:
            f.write(self.read(self.model)[:1000])
        self.assert_error(self.encode(self.image(8, 8), self.out("x.t1d"), "--tokens", "2", model=bad_model),
                          1, "bad.safetensors")
        self.assert_error(self.encode(self.image(8, 8), self.out("x.t1d"), "--tokens", "2",
                                      model=self.path("missing.safetensors")), 1, "missing.safetensors")

    def test_no_overwrite_without_force(self):
        image, t1d = self.image(8, 8), self.out("a.t1d")
        self.ok(self.encode(image, t1d, "--tokens", "2"))
        before = self.read(t1d)
        result = self.encode(image, t1d, "--tokens", "3")
        self.assertEqual(result.returncode, 1)
        self.assertIn("already exists", result.stderr.decode())
        self.assertEqual(self.read(t1d), before)
        self.ok(self.encode(image, t1d, "--tokens", "3", "-f"))
        self.assertNotEqual(self.read(t1d), before)

    def test_unknown_device(self):
        self.assert_error(self.encode(self.image(8, 8), self.out("x.t1d"), "--tokens", "2", "--device", "tpu"),
                          1, "tpu")

    # -- the real model ------------------------------------------------------------------------

    # -- --effort: the token search through the decoder ---------------------------------------

    def test_effort_files_decode_and_keep_the_rate_target(self):
        image = self.mixed_image()
        original = ppm_pixels(self.read(image))
        plain, searched = self.out("e0.t1d"), self.out("e3.t1d")
        self.ok(self.encode(image, plain, "--tokens", "4"))
        self.ok(self.encode(image, searched, "--tokens", "4", "--effort", "3"))
        self.assertNotEqual(self.read(plain), self.read(searched))
        # Tiles keep 1/2 to 3/2 of --tokens: the search drops tail tokens that do not pay and
        # adds the next ones where they do.
        self.assertLessEqual(set(self.info(searched)["tokens_per_tile"]), {2, 3, 4, 5, 6})
        decoded = self.out("e3.ppm")
        self.ok(self.decode(searched, decoded))
        self.assertEqual(len(ppm_pixels(self.read(decoded))), len(original))
        # A byte budget holds with the search as without it.
        budget = os.path.getsize(plain)
        path = self.out("bytes.t1d")
        self.ok(self.encode(image, path, "--bytes", str(budget), "--effort", "2"))
        self.assertLessEqual(os.path.getsize(path), budget)
        # Effort 0 is the plain encoder's file.
        zero = self.out("zero.t1d")
        self.ok(self.encode(image, zero, "--tokens", "4", "--effort", "0"))
        self.assertEqual(self.read(zero), self.read(plain))

    def test_steps_round_trip_trim_and_usage_errors(self):
        image = self.image(40, 24)
        stepped, trimmed, direct = self.out("s.t1d"), self.out("t.t1d"), self.out("d.t1d")
        self.ok(self.encode(image, stepped, "--tokens", "4", "--steps", "1:2,3:3"))
        info = json.loads(self.ok(run("info", stepped, "--json")).stdout)
        self.assertEqual(info["format_version"], "1.4")
        self.assertEqual(info["steps"], [{"first": 1, "step": 2}, {"first": 3, "step": 3}])
        self.ok(self.decode(stepped, self.out("s.ppm")))
        # The plan is per file: a trim to 1 token is the file encoded for 1 token, and keeps no
        # stepped token, so the plan is left out.
        self.ok(run("trim", stepped, "-o", trimmed, "--tokens", "1"))
        self.ok(self.encode(image, direct, "--tokens", "1", "--steps", "1:2,3:3"))
        self.assertEqual(self.read(trimmed), self.read(direct))
        self.assertEqual(json.loads(self.ok(run("info", trimmed, "--json")).stdout)["steps"], [])
        for name in ("s.t1d", "s.ppm", "t.t1d", "d.t1d"):
            os.remove(self.out(name))
        for steps in ("x", "2", "2:0", "2:256", "3:2,1:2", "2:2,", "", "-1:2", " 2:2"):
            with self.subTest(steps=steps):
                self.assert_error(self.encode(image, self.out("e.t1d"), "--tokens", "2", "--steps", steps),
                                  2, "--steps")
        self.assert_error(self.encode(image, self.out("e.t1d"), "--tokens", "2", "--steps", "9:2"),
                          1, "quantiser steps")
        self.assert_error(self.encode(image, self.out("e.t1d"), "--tokens", "2", "--steps", "1:2",
                                      "--effort", "1"), 1, "--steps")

    def test_effort_out_of_range_is_a_usage_error(self):
        image = self.image(20, 20)
        for effort in ("10", "-1", "x"):
            with self.subTest(effort=effort):
                self.assert_error(self.encode(image, self.out("e.t1d"), "--tokens", "2", "--effort", effort),
                                  2, "--effort")

    def test_real_model_effort_beats_effort_zero(self):
        if not REAL_MODEL or not os.path.exists(REAL_MODEL):
            self.skipTest("no real model file")
        image = self.image(128, 128)
        original = ppm_pixels(self.read(image))
        scores = {}
        for effort in ("0", "1"):
            t1d, ppm_out = self.out(f"e{effort}.t1d"), self.out(f"e{effort}.ppm")
            self.ok(self.encode(image, t1d, "--tokens", "8", "--effort", effort, model=REAL_MODEL))
            self.ok(self.decode(t1d, ppm_out, "--no-deblock", model=REAL_MODEL))
            scores[effort] = (psnr(original, ppm_pixels(self.read(ppm_out))), os.path.getsize(t1d))
        # The search lowers squared error + lambda * bits: better PSNR or a smaller file.
        self.assertTrue(scores["1"][0] > scores["0"][0] or scores["1"][1] < scores["0"][1], scores)

    def test_real_model_round_trip(self):
        if not REAL_MODEL or not os.path.exists(REAL_MODEL):
            self.skipTest("no real model file")
        t1d, png = self.out("real.t1d"), self.out("real.png")
        result = self.ok(self.encode(self.image(300, 140), t1d, "--tokens", "16", "--stats", model=REAL_MODEL))
        self.assertIn("6 tiles", result.stderr.decode())
        self.ok(self.decode(t1d, png, model=REAL_MODEL))
        self.assertEqual(png_size(self.read(png)), (300, 140))

    def test_real_model_refinement_layers(self):
        if not REAL_MODEL or not os.path.exists(REAL_MODEL):
            self.skipTest("no real model file")
        image = self.image(300, 140)
        full, plain = self.out("refined.t1d"), self.out("plain.t1d")
        self.ok(self.encode(image, full, "--tokens", "128", model=REAL_MODEL))
        self.ok(self.encode(image, plain, "--tokens", "128", "--no-refine", model=REAL_MODEL))
        info = json.loads(self.ok(run("info", full, "--json")).stdout)
        plain_info = json.loads(self.ok(run("info", plain, "--json")).stdout)
        if info["refinement"]["bits"] == 0:
            self.skipTest("the model has no refinement plan")
        self.assertEqual(info["format_version"], "1.3")
        self.assertEqual(plain_info["format_version"], "1.2")
        self.assertEqual(plain_info["refinement"]["bits"], 0)
        self.assertEqual(info["tokens_per_tile"], plain_info["tokens_per_tile"])
        refined = info["refinement"]["tokens"]
        self.assertEqual(info["layers_per_tile"], [128 + refined] * 6)
        self.assertGreater(os.path.getsize(full), os.path.getsize(plain))
        # k tokens keep the refinements placed before token k: trim equals encode -t k.
        for k in (1, 8, 64):
            with self.subTest(k=k):
                trimmed, direct = self.out(f"trim{k}.t1d"), self.out(f"enc{k}.t1d")
                self.ok(run("trim", full, "-o", trimmed, "--tokens", str(k)))
                # Trimming drops the colour restoration of every tile it cuts (rstr chunk).
                self.ok(self.encode(image, direct, "--tokens", str(k), "--no-restore", model=REAL_MODEL))
                self.assertEqual(self.read(trimmed), self.read(direct))
                trimmed_info = json.loads(self.ok(run("info", trimmed, "--json")).stdout)
                kept = sum(a < k for a in info["refinement"]["after"])
                self.assertEqual(trimmed_info["layers_per_tile"][0], k + kept)
                # A file that keeps no refinement layer leaves the plan (REFN) out; still 1.3.
                self.assertEqual(trimmed_info["refinement"]["bits"] != 0, kept > 0)
                self.assertEqual(trimmed_info["format_version"], "1.3")
                png_a, png_b = self.out(f"a{k}.png"), self.out(f"b{k}.png")
                self.ok(self.decode(full, png_a, "--tokens", str(k), model=REAL_MODEL))
                self.ok(self.decode(trimmed, png_b, model=REAL_MODEL))
                self.assertEqual(self.read(png_a), self.read(png_b))


if __name__ == "__main__":
    TOK1D, MAKE_MODEL = sys.argv[1], sys.argv[2]
    REAL_MODEL = sys.argv[3] if len(sys.argv) > 3 else None
    del sys.argv[1:]
    unittest.main(verbosity=1)
