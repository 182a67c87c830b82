#!/usr/bin/env python3
"""tok1d encode / decode / trim / info with the range coder, end to end: a tiny random model
with random entropy tables added (tok1d_add_test_entropy_tables).

Usage: test_entropy_cli.py PATH/TO/tok1d PATH/TO/tok1d_make_test_model
                           PATH/TO/tok1d_add_test_entropy_tables
"""
import json
import os
import subprocess
import sys
import tempfile
import unittest

TOK1D = MAKE_MODEL = ADD_TABLES = None


def run(*args):
    return subprocess.run([TOK1D, *args], capture_output=True, timeout=300)


def ppm(width, height):
    pixels = bytearray()
    for y in range(height):
        for x in range(width):
            pixels += bytes(((x * 5 + y) % 256, (x * y) % 256, (x ^ y) % 256))
    return b"P6\n%d %d\n255\n" % (width, height) + bytes(pixels)


class EntropyCliTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.TemporaryDirectory()
        d = cls.dir.name
        cls.plain_model = os.path.join(d, "tiny.safetensors")
        cls.model = os.path.join(d, "tiny-tables.safetensors")
        subprocess.run([MAKE_MODEL, cls.plain_model, "1", "tiny"], check=True)
        subprocess.run([ADD_TABLES, cls.plain_model, cls.model], check=True)
        cls.image = os.path.join(d, "image.ppm")
        with open(cls.image, "wb") as f:
            f.write(ppm(70, 45))  # 5x3 tiles of 16 with cropped borders

    @classmethod
    def tearDownClass(cls):
        cls.dir.cleanup()

    def path(self, name):
        return os.path.join(self.dir.name, name)

    def encode(self, out, *extra, model=None, image=None):
        result = run("encode", image or self.image, "-o", out, "-f", "--tokens", "6",
                     "--model", model or self.model, "-j", "1", *extra)
        self.assertEqual(result.returncode, 0, result.stderr.decode())
        return out

    def decode(self, t1d, out, *extra):
        result = run("decode", t1d, "-o", out, "-f", "--model", self.model, "-j", "1", *extra)
        self.assertEqual(result.returncode, 0, result.stderr.decode())
        with open(out, "rb") as f:
            return f.read(), result.stderr.decode()

    def info(self, t1d):
        result = run("info", "--json", t1d)
        self.assertEqual(result.returncode, 0, result.stderr.decode())
        return json.loads(result.stdout)

    def test_range_is_the_default_with_tables_and_decodes_like_raw(self):
        ranged = self.encode(self.path("range.t1d"))
        raw = self.encode(self.path("raw.t1d"), "--coder", "raw")
        self.assertEqual(self.info(ranged)["entropy_coder"], "range")
        self.assertEqual(self.info(ranged)["format_version"], "1.2")
        self.assertEqual(self.info(raw)["entropy_coder"], "raw")
        self.assertEqual(self.info(raw)["format_version"], "1.2")
        # Same tokens, so the same pixels.
        self.assertEqual(self.decode(ranged, self.path("a.ppm"))[0],
                         self.decode(raw, self.path("b.ppm"))[0])

    def test_model_without_tables_uses_raw_and_refuses_range(self):
        plain = self.encode(self.path("plain.t1d"), model=self.plain_model)
        self.assertEqual(self.info(plain)["entropy_coder"], "raw")
        result = run("encode", self.image, "-o", self.path("x.t1d"), "--tokens", "2",
                     "--model", self.plain_model, "--coder", "range")
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("entropy tables", result.stderr.decode())
        self.assertFalse(os.path.exists(self.path("x.t1d")))

    def test_trim_and_truncation_decode_coarser_images(self):
        full = self.encode(self.path("full.t1d"))
        trimmed = self.path("trimmed.t1d")
        result = run("trim", full, "-t", "3", "-o", trimmed, "-f")
        self.assertEqual(result.returncode, 0, result.stderr.decode())
        from_trim, _ = self.decode(trimmed, self.path("t.ppm"))
        from_full_at_3, _ = self.decode(full, self.path("f3.ppm"), "--tokens", "3")
        self.assertEqual(from_trim, from_full_at_3)

        # A download cut inside the last layer span decodes the layers of the spans before it
        # (600 tiles: about 1.6 KB of layers, two or more 1 KiB spans).
        big_image = self.path("big.ppm")
        with open(big_image, "wb") as f:
            f.write(ppm(480, 320))
        big = self.encode(self.path("big.t1d"), image=big_image)
        meta = self.info(big)
        chunks = meta["layer_chunks"]
        self.assertGreaterEqual(len(chunks), 2)
        self.assertTrue(all(chunk["type"] == "LAYS" for chunk in chunks))
        # Ancillary chunks come after HEAD, but the colour restoration (rstr), which is last.
        before_layers = sum(size for kind, size in zip(meta["extra_chunks"], meta["extra_chunk_bytes"])
                            if kind != "rstr")
        last_at = (meta["header_bytes"] + before_layers +
                   sum(chunk["bytes"] for chunk in chunks[:-1]))
        with open(big, "rb") as f:
            data = f.read()[:last_at + chunks[-1]["bytes"] // 2]
        cut = self.path("cut.t1d")
        with open(cut, "wb") as f:
            f.write(data)
        from_cut, warnings = self.decode(cut, self.path("c.ppm"))
        self.assertIn("truncated", warnings)
        kept = str(chunks[-1]["first_layer"])
        self.assertEqual(from_cut, self.decode(big, self.path("fk.ppm"), "--tokens", kept)[0])

    def test_damaged_layer_is_reported(self):
        if os.environ.get("TOK1D_CHECKSUMS_SKIPPED") == "1":
            self.skipTest("a fuzzing build checks no checksums (tests/checksum_mode.h)")
        full = self.encode(self.path("full.t1d"))
        with open(full, "rb") as f:
            data = bytearray(f.read())
        meta = self.info(full)
        self.assertGreater(meta["layer_chunks"][0]["bytes"], 40)
        data[meta["header_bytes"] + sum(meta["extra_chunk_bytes"]) + 30] ^= 0x20  # in a span
        damaged = self.path("damaged.t1d")
        with open(damaged, "wb") as f:
            f.write(data)
        result = run("decode", damaged, "-o", self.path("d.ppm"), "--model", self.model)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("checksum", result.stderr.decode())
        self.assertFalse(os.path.exists(self.path("d.ppm")))

    def test_other_model_is_a_model_mismatch(self):
        other = self.path("other-tables.safetensors")
        subprocess.run([MAKE_MODEL, self.path("other.safetensors"), "2", "other"], check=True)
        subprocess.run([ADD_TABLES, self.path("other.safetensors"), other], check=True)
        full = self.encode(self.path("full.t1d"))
        result = run("decode", full, "-o", self.path("m.ppm"), "--model", other)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("made with model 'tiny'", result.stderr.decode())


if __name__ == "__main__":
    TOK1D, MAKE_MODEL, ADD_TABLES = sys.argv[1:4]
    unittest.main(argv=sys.argv[:1])
