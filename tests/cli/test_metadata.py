#!/usr/bin/env python3
"""tok1d encode --metadata / decode / info / trim / batch: the ICC profile and EXIF of PNG,
JPEG and WebP inputs carried through a .t1d file (zstd-compressed `iccp` and `exif` chunks)
into the decoded PNG. Images are written here byte by byte (PNG), or by cjpeg and
cwebp/webpmux with the metadata segments added here (skipped where those tools are missing).

Usage: test_metadata.py PATH/TO/tok1d PATH/TO/tok1d_make_test_model
"""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cli_assertions import assert_one_line_error  # noqa: E402

TOK1D = MAKE_MODEL = MODEL = None
W, H = 40, 24


def run(*args):
    return subprocess.run([TOK1D, *args], capture_output=True, timeout=300)


def icc_profile(size, space=b"RGB "):
    """A sound ICC.1 display profile (RGB data, XYZ PCS, D50, no tags) of `size` bytes."""
    icc = bytearray((i * 7 + 3) % 256 for i in range(size))
    icc[0:128] = bytes(128)
    icc[0:4] = struct.pack(">I", size)
    icc[8:12] = struct.pack(">I", 0x04300000)
    icc[12:16], icc[16:20], icc[20:24], icc[36:40] = b"mntr", space, b"XYZ ", b"acsp"
    icc[68:80] = struct.pack(">III", 0xF6D6, 0x10000, 0xD32D)
    icc[128:132] = bytes(4)
    return bytes(icc)


def exif_blob(size):
    """EXIF from its TIFF header on (big-endian, one empty IFD), then filler."""
    head = b"MM\x00\x2a\x00\x00\x00\x08" + bytes(6)
    return head + bytes((i * 13 + 1) % 256 for i in range(len(head), size))


def pixels():
    return bytes(((x * 5 + y) % 256, (x * y) % 256, (x ^ y) % 256)[c]
                 for y in range(H) for x in range(W) for c in range(3))


def png_chunk(kind, data):
    return (struct.pack(">I", len(data)) + kind + data +
            struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def make_png(icc=None, exif=None):
    rows = b"".join(b"\x00" + pixels()[y * W * 3:(y + 1) * W * 3] for y in range(H))
    out = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", W, H, 8, 2, 0, 0, 0))
    if icc is not None:
        out += png_chunk(b"iCCP", b"test profile\x00\x00" + zlib.compress(icc))
    if exif is not None:
        out += png_chunk(b"eXIf", exif)
    return out + png_chunk(b"IDAT", zlib.compress(rows)) + png_chunk(b"IEND", b"")


def png_chunks(data):
    """{type: data} of a PNG's chunks (the first of each type)."""
    chunks, pos = {}, 8
    while pos + 12 <= len(data):
        length = struct.unpack(">I", data[pos:pos + 4])[0]
        chunks.setdefault(data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length])
        pos += 12 + length
    return chunks


def png_metadata(data):
    """(ICC profile, EXIF) of a PNG: iCCP decompressed, eXIf as stored; None where absent."""
    chunks = png_chunks(data)
    icc = None
    if b"iCCP" in chunks:
        name_end = chunks[b"iCCP"].index(b"\x00")
        icc = zlib.decompress(chunks[b"iCCP"][name_end + 2:])
    return icc, chunks.get(b"eXIf")


def jpeg_segments(icc, exif):
    """APP1 Exif and APP2 ICC_PROFILE segments (ICC.1 annex B.4), as a JPEG writer adds them."""
    out = b""
    if exif is not None:
        payload = b"Exif\x00\x00" + exif
        out += b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    if icc is not None:
        parts = [icc[i:i + 65519] for i in range(0, len(icc), 65519)]
        for n, part in enumerate(parts, 1):
            payload = b"ICC_PROFILE\x00" + bytes((n, len(parts))) + part
            out += b"\xff\xe2" + struct.pack(">H", len(payload) + 2) + payload
    return out


# XXH64 (the .t1d chunk checksum), to forge a valid checksum over damaged chunk data.
P1, P2, P3, P4, P5 = (0x9E3779B185EBCA87, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9,
                      0x85EBCA77C2B2AE63, 0x27D4EB2F165667C5)
MASK = (1 << 64) - 1


def rotl(x, r):
    return ((x << r) | (x >> (64 - r))) & MASK


def xxh_round(acc, value):
    return (rotl((acc + value * P2) & MASK, 31) * P1) & MASK


def xxh64(data):
    n, p = len(data), 0
    lane = lambda at, size: int.from_bytes(data[at:at + size], "little")  # noqa: E731
    if n >= 32:
        v = [(P1 + P2) & MASK, P2, 0, (-P1) & MASK]
        while p + 32 <= n:
            v = [xxh_round(v[i], lane(p + 8 * i, 8)) for i in range(4)]
            p += 32
        h = (rotl(v[0], 1) + rotl(v[1], 7) + rotl(v[2], 12) + rotl(v[3], 18)) & MASK
        for value in v:
            h = ((h ^ xxh_round(0, value)) * P1 + P4) & MASK
    else:
        h = P5
    h = (h + n) & MASK
    while p + 8 <= n:
        h = (rotl(h ^ xxh_round(0, lane(p, 8)), 27) * P1 + P4) & MASK
        p += 8
    if p + 4 <= n:
        h = (rotl(h ^ ((lane(p, 4) * P1) & MASK), 23) * P2 + P3) & MASK
        p += 4
    while p < n:
        h = (rotl(h ^ ((data[p] * P5) & MASK), 11) * P1) & MASK
        p += 1
    h = ((h ^ (h >> 33)) * P2) & MASK
    h = ((h ^ (h >> 29)) * P3) & MASK
    return h ^ (h >> 32)


def t1d_chunks(data):
    """[(offset, type, data)] of a .t1d file's chunks after the preamble."""
    chunks, pos = [], 12
    while pos + 12 <= len(data):
        length = struct.unpack("<I", data[pos + 4:pos + 8])[0]
        chunks.append((pos, data[pos:pos + 4], data[pos + 8:pos + 8 + length]))
        pos += 12 + length
    return chunks


class MetadataCliTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.icc, self.exif = icc_profile(3000), exif_blob(700)

    def tearDown(self):
        self.tmp.cleanup()

    def path(self, name):
        return os.path.join(self.tmp.name, name)

    def write(self, name, data):
        with open(self.path(name), "wb") as f:
            f.write(data)
        return self.path(name)

    def read(self, path):
        with open(path, "rb") as f:
            return f.read()

    def encode(self, image, out, *extra):
        result = run("encode", image, "-o", out, "-f", "--tokens", "3", "--model", MODEL, *extra)
        self.assertEqual(result.returncode, 0, result.stderr.decode())
        return result

    def decode(self, t1d, out="out.png"):
        result = run("decode", t1d, "-o", self.path(out), "-f", "--model", MODEL)
        self.assertEqual(result.returncode, 0, result.stderr.decode())
        return png_metadata(self.read(self.path(out))), result.stderr.decode()

    def info(self, t1d):
        result = run("info", "--json", t1d)
        self.assertEqual(result.returncode, 0, result.stderr.decode())
        return json.loads(result.stdout)

    def round_trip(self, image, expected_icc, expected_exif, listing="all"):
        t1d = self.path("x.t1d")
        summary = self.encode(image, t1d, "--metadata", listing).stderr.decode()
        metadata = {entry["chunk"]: entry for entry in self.info(t1d)["metadata"]}
        self.assertEqual(set(metadata), {name for name, blob in
                                         (("iccp", expected_icc), ("exif", expected_exif))
                                         if blob is not None})
        if expected_icc is not None:
            self.assertEqual(metadata["iccp"]["bytes"], len(expected_icc))
            self.assertIn("ICC profile %d bytes" % len(expected_icc), summary)
        if expected_exif is not None:
            self.assertEqual(metadata["exif"]["bytes"], len(expected_exif))
        (icc, exif), warnings = self.decode(t1d)
        self.assertEqual(icc, expected_icc)
        self.assertEqual(exif, expected_exif)
        self.assertNotIn("warning", warnings)
        return t1d

    def test_png_round_trip_and_selection(self):
        image = self.write("in.png", make_png(self.icc, self.exif))
        t1d = self.round_trip(image, self.icc, self.exif)
        text = run("info", t1d).stdout.decode()
        self.assertIn("metadata:      ICC profile 3000 bytes (", text)
        self.assertIn("EXIF 700 bytes (", text)
        self.round_trip(image, self.icc, None, "icc")
        self.round_trip(image, None, self.exif, "exif")
        self.round_trip(image, self.icc, self.exif, "icc,exif")
        self.round_trip(image, None, None, "none")
        # The default is none, as in cwebp.
        self.encode(image, self.path("plain.t1d"))
        self.assertEqual(self.info(self.path("plain.t1d"))["metadata"], [])
        self.assertEqual(self.decode(self.path("plain.t1d"))[0], (None, None))

    def test_metadata_is_small_and_counts_towards_bytes(self):
        image = self.write("in.png", make_png(self.icc, self.exif))
        plain, kept = self.path("plain.t1d"), self.path("kept.t1d")
        self.encode(image, plain)
        self.encode(image, kept, "--metadata", "all")
        stored = sum(entry["stored_bytes"] for entry in self.info(kept)["metadata"])
        self.assertLess(stored, len(self.icc) + len(self.exif))  # zstd-compressed
        self.assertEqual(len(self.read(kept)), len(self.read(plain)) + stored + 2 * 12)
        budget = len(self.read(kept))
        result = run("encode", image, "-o", self.path("budget.t1d"), "--bytes", str(budget),
                     "--model", MODEL, "--metadata", "all")
        self.assertEqual(result.returncode, 0, result.stderr.decode())
        self.assertLessEqual(len(self.read(self.path("budget.t1d"))), budget)

    @unittest.skipUnless(shutil.which("cjpeg"), "needs cjpeg")
    def test_jpeg_round_trip(self):
        ppm = self.write("in.ppm", b"P6\n%d %d\n255\n" % (W, H) + pixels())
        jpeg = subprocess.run(["cjpeg", "-quality", "90", ppm], check=True,
                              capture_output=True).stdout
        big_icc = icc_profile(150000)  # three APP2 segments
        image = self.write("in.jpg", jpeg[:2] + jpeg_segments(big_icc, self.exif) + jpeg[2:])
        self.round_trip(image, big_icc, self.exif)

    @unittest.skipUnless(shutil.which("cwebp") and shutil.which("webpmux"), "needs cwebp, webpmux")
    def test_webp_round_trip(self):
        png = self.write("in.png", make_png())
        webp = self.path("in.webp")
        subprocess.run(["cwebp", "-quiet", "-lossless", png, "-o", webp], check=True)
        self.write("icc.bin", self.icc)
        self.write("exif.bin", self.exif)
        with_icc = self.path("icc.webp")
        subprocess.run(["webpmux", "-set", "icc", self.path("icc.bin"), webp, "-o", with_icc],
                       check=True, capture_output=True)
        both = self.path("both.webp")
        subprocess.run(["webpmux", "-set", "exif", self.path("exif.bin"), with_icc, "-o", both],
                       check=True, capture_output=True)
        self.round_trip(both, self.icc, self.exif)

    def test_trim_and_batch_keep_metadata(self):
        image = self.write("in.png", make_png(self.icc, self.exif))
        t1d = self.path("x.t1d")
        self.encode(image, t1d, "--metadata", "all")
        trimmed = self.path("trimmed.t1d")
        self.assertEqual(run("trim", t1d, "-o", trimmed, "-t", "1").returncode, 0)
        self.assertEqual(self.decode(trimmed)[0], (self.icc, self.exif))

        os.makedirs(self.path("in"))
        shutil.copy(image, self.path("in/a.png"))
        result = run("batch", "encode", self.path("in"), "-o", self.path("out"), "--tokens", "2",
                     "--metadata", "exif", "--model", MODEL)
        self.assertEqual(result.returncode, 0, result.stderr.decode())
        result = run("batch", "decode", self.path("out"), "-o", self.path("back"),
                     "--model", MODEL)
        self.assertEqual(result.returncode, 0, result.stderr.decode())
        self.assertEqual(png_metadata(self.read(self.path("back/a.png"))), (None, self.exif))

    def test_profile_for_other_data_is_not_kept_and_ppm_output_warns(self):
        # A gray profile does not describe the RGB samples tok1d codes (libpng refuses it in
        # an RGB PNG; JPEG and WebP profiles are checked by tok1d, tests/imageio/metadata_test).
        image = self.write("in.png", make_png(icc_profile(400, b"GRAY"), self.exif))
        t1d = self.path("x.t1d")
        result = self.encode(image, t1d, "--metadata", "all")
        self.assertIn("warning: ", result.stderr.decode())
        self.assertIn("ICC profile is not kept", result.stderr.decode())
        self.assertEqual([e["chunk"] for e in self.info(t1d)["metadata"]], ["exif"])
        # Not a word about metadata nobody asked for.
        self.assertEqual(self.encode(image, t1d).stderr.decode().count("warning"), 0)

        self.encode(self.write("ok.png", make_png(self.icc, self.exif)), t1d, "--metadata", "all")
        result = run("decode", t1d, "-o", self.path("out.ppm"), "-f", "--model", MODEL)
        self.assertEqual(result.returncode, 0, result.stderr.decode())
        self.assertIn("PPM output cannot hold", result.stderr.decode())

    def test_bad_list_is_a_usage_error(self):
        image = self.write("in.png", make_png())
        for listing in ("xmp", "icc,xmp", ""):
            with self.subTest(listing=listing):
                result = run("encode", image, "-o", self.path("x.t1d"), "--tokens", "2",
                             "--model", MODEL, "--metadata", listing)
                assert_one_line_error(self, result, 2, "--metadata")
                self.assertFalse(os.path.exists(self.path("x.t1d")))

    def test_corrupt_zstd_payload_is_a_warning_and_the_metadata_is_dropped(self):
        image = self.write("in.png", make_png(self.icc, self.exif))
        t1d = self.path("x.t1d")
        self.encode(image, t1d, "--metadata", "all")
        data = bytearray(self.read(t1d))
        offset, _, chunk = next(c for c in t1d_chunks(data) if c[1] == b"iccp")
        end = offset + 8 + len(chunk)
        # The checksum this file has is the one computed here: the forgery below is valid.
        self.assertEqual(struct.unpack("<I", data[end:end + 4])[0],
                         xxh64(bytes(data[offset:end])) & 0xFFFFFFFF)
        data[offset + 8 + len(chunk) // 2] ^= 0x55
        data[end:end + 4] = struct.pack("<I", xxh64(bytes(data[offset:end])) & 0xFFFFFFFF)
        damaged = self.write("damaged.t1d", bytes(data))
        self.assertEqual(run("info", damaged).returncode, 0)
        (icc, exif), warnings = self.decode(damaged)
        self.assertIsNone(icc)
        self.assertEqual(exif, self.exif)
        self.assertIn("warning: ", warnings)
        self.assertIn("chunk 'iccp'", warnings)
        self.assertIn("ICC profile is left out", warnings)


if __name__ == "__main__":
    TOK1D, MAKE_MODEL = sys.argv[1], sys.argv[2]
    del sys.argv[1:]
    with tempfile.TemporaryDirectory() as models:
        MODEL = os.path.join(models, "tiny.safetensors")
        subprocess.run([MAKE_MODEL, MODEL, "1", "tiny"], check=True)
        outcome = unittest.main(verbosity=1, exit=False).result
    sys.exit(0 if outcome.wasSuccessful() else 1)
