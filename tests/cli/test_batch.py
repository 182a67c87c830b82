#!/usr/bin/env python3
"""tok1d batch encode / decode: trees of generated images, a corrupt file among them, resuming
after a kill, -f, sharding, JSON records, exit statuses, and nothing partial ever left behind.

Runs with a tiny random model made by tok1d_make_test_model (fast); with the real model as well
when its file exists (one small round trip).

Usage: test_batch.py PATH/TO/tok1d PATH/TO/tok1d_make_test_model [REAL_MODEL]
"""
import json
import os
import random
import signal
import struct
import subprocess
import sys
import tempfile
import time
import unittest
import zlib

TOK1D = MAKE_MODEL = REAL_MODEL = None
MODEL = None  # the tiny model, made once


def ppm(width, height, seed):
    rng = random.Random(seed)
    base = [rng.randrange(256) for _ in range(3)]
    pixels = bytearray()
    for y in range(height):
        for x in range(width):
            pixels += bytes(((base[0] + 3 * x) % 256, (base[1] + 5 * y) % 256,
                             (base[2] + x * y) % 256))
    return b"P6\n%d %d\n255\n" % (width, height) + bytes(pixels)


def png(width, height, seed):
    """An 8-bit RGB PNG, written by hand (no image library needed)."""
    raw = ppm(width, height, seed).split(b"\n", 3)[3]
    rows = b"".join(b"\x00" + raw[y * width * 3:(y + 1) * width * 3] for y in range(height))

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data +
                struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) +
            chunk(b"IEND", b""))


def png_size(data):
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def run(*args, stdin=None, model=None):
    return subprocess.run([TOK1D, *args, "--model", model or MODEL], input=stdin,
                          capture_output=True, timeout=600)


def files_under(root):
    """Every file below root, as paths relative to it (hidden ones included)."""
    found = set()
    for folder, _, names in os.walk(root):
        for name in names:
            found.add(os.path.relpath(os.path.join(folder, name), root))
    return found


def make_tree(root, count, corrupt=None, nested=True):
    """`count` images of 32 to 64 pixels a side, PPM and PNG, spread over subfolders when
    nested; `corrupt` names one more file that is not a valid image. Returns {relative path:
    (width, height)} of the valid images."""
    rng = random.Random(count)
    images = {}
    for i in range(count):
        width, height = rng.randrange(32, 65), rng.randrange(32, 65)
        folder = os.path.join(f"set{i % 3}", f"part{i % 2}") if nested and i % 4 else ""
        name = os.path.join(folder, f"img{i:03d}" + (".png" if i % 2 else ".ppm"))
        write(os.path.join(root, name), (png if i % 2 else ppm)(width, height, i))
        images[name] = (width, height)
    if corrupt:
        write(os.path.join(root, corrupt), b"\x89PNG\r\n\x1a\n" + b"not really a png" * 8)
    return images


def with_extension(path, extension):
    return os.path.splitext(path)[0] + extension


def summary(result):
    """(done, skipped, failed) from the summary line."""
    for line in result.stderr.decode().splitlines():
        if line.startswith("tok1d batch ") and " done, " in line:
            counts = line.split(": ", 1)[1].split(" (")[0].split(", ")
            return tuple(int(part.split()[0]) for part in counts[:3])
    raise AssertionError("no summary line in:\n" + result.stderr.decode())


def records(result):
    return [json.loads(line) for line in result.stdout.decode().splitlines()]


class BatchTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.root = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def path(self, *parts):
        return os.path.join(self.root, *parts)

    def assert_exit(self, result, code):
        self.assertEqual(result.returncode, code, result.stderr.decode())

    def assert_nothing_partial(self, folder):
        hidden = [name for name in files_under(folder) if os.path.basename(name).startswith(".")]
        self.assertEqual(hidden, [], "temporary files left behind")

    # -- the "done when" -----------------------------------------------------------

    def test_hundred_images_with_one_corrupt_round_trip(self):
        source, out, back = self.path("DIR"), self.path("OUT"), self.path("BACK")
        images = make_tree(source, 99, corrupt="broken.png", nested=False)
        before = {name: read(os.path.join(source, name)) for name in files_under(source)}

        encoded = run("batch", "encode", source, "-o", out, "-j", "2", "--tokens", "4")
        self.assert_exit(encoded, 1)
        self.assertEqual(summary(encoded), (99, 0, 1))
        errors = [line for line in encoded.stderr.decode().splitlines() if "error" in line]
        self.assertTrue(any("broken.png" in line for line in errors), errors)
        self.assertEqual(files_under(out), {with_extension(n, ".t1d") for n in images})
        self.assert_nothing_partial(out)

        decoded = run("batch", "decode", out, "-o", back)
        self.assert_exit(decoded, 0)
        self.assertEqual(summary(decoded), (99, 0, 0))
        self.assertEqual(files_under(back), {with_extension(n, ".png") for n in images})
        for name, size in images.items():
            self.assertEqual(png_size(read(os.path.join(back, with_extension(name, ".png")))), size)
        self.assert_nothing_partial(back)

        after = {name: read(os.path.join(source, name)) for name in files_under(source)}
        self.assertEqual(before, after, "an input was changed")

    # -- trees, lists, names ---------------------------------------------------------------

    def test_output_tree_mirrors_input_tree(self):
        source, out = self.path("photos"), self.path("out")
        images = make_tree(source, 12)
        result = run("batch", "encode", "-r", source, "-o", out, "--tokens", "3")
        self.assert_exit(result, 0)
        self.assertEqual(summary(result), (12, 0, 0))
        self.assertEqual(files_under(out), {with_extension(n, ".t1d") for n in images})

    def test_batch_output_equals_single_file_commands(self):
        source, out, back = self.path("in"), self.path("out"), self.path("back")
        images = make_tree(source, 4, nested=False)
        self.assert_exit(run("batch", "encode", source, "-o", out, "--tokens", "5", "-j", "2"), 0)
        self.assert_exit(run("batch", "decode", out, "-o", back, "--tokens", "2"), 0)
        for name in images:
            single_t1d, single_png = self.path("single.t1d"), self.path("single.png")
            self.assert_exit(run("encode", os.path.join(source, name), "-o", single_t1d,
                                 "--tokens", "5", "-f"), 0)
            self.assertEqual(read(single_t1d), read(os.path.join(out, with_extension(name, ".t1d"))))
            self.assert_exit(run("decode", single_t1d, "-o", single_png, "--tokens", "2", "-f"), 0)
            self.assertEqual(read(single_png), read(os.path.join(back, with_extension(name, ".png"))))

    def test_folder_without_r_takes_its_own_files_and_says_so(self):
        source, out = self.path("in"), self.path("out")
        images = make_tree(source, 8)
        top = {name for name in images if os.sep not in name}
        result = run("batch", "encode", source, "-o", out, "--tokens", "2")
        self.assert_exit(result, 0)
        self.assertIn("not searched (-r searches them)", result.stderr.decode())
        self.assertEqual(files_under(out), {with_extension(n, ".t1d") for n in top})

    def test_from_list_with_base_and_files_by_name(self):
        source, out = self.path("photos"), self.path("out")
        images = sorted(make_tree(source, 6))
        listed = "".join(os.path.join(source, name) + "\n" for name in images[:4]).encode()
        result = run("batch", "encode", "--from-list", "-", "--base", source, "-o", out,
                     "--tokens", "2", stdin=listed)
        self.assert_exit(result, 0)
        self.assertEqual(files_under(out), {with_extension(n, ".t1d") for n in images[:4]})
        # Without --base a file named directly goes to the top of the output folder.
        flat = self.path("flat")
        self.assert_exit(run("batch", "encode", os.path.join(source, images[5]), "-o", flat,
                             "--tokens", "2"), 0)
        self.assertEqual(files_under(flat), {with_extension(os.path.basename(images[5]), ".t1d")})

    def test_two_inputs_with_one_output_fail_the_second(self):
        source, out = self.path("in"), self.path("out")
        write(os.path.join(source, "a.ppm"), ppm(40, 40, 1))
        write(os.path.join(source, "a.png"), png(40, 40, 2))
        write(os.path.join(source, "b.ppm"), ppm(40, 40, 3))
        result = run("batch", "encode", source, "-o", out, "--tokens", "2")
        self.assert_exit(result, 1)
        self.assertEqual(summary(result), (2, 0, 1))
        self.assertIn("is also the output of", result.stderr.decode())

    def test_missing_input_is_reported_and_the_rest_go_on(self):
        source, out = self.path("in"), self.path("out")
        make_tree(source, 3, nested=False)
        result = run("batch", "encode", source, self.path("missing.png"), "-o", out,
                     "--tokens", "2")
        self.assert_exit(result, 1)
        self.assertEqual(summary(result), (3, 0, 1))
        self.assertIn("missing.png", result.stderr.decode())

    # -- resuming --------------------------------------------------------------------------

    def test_rerun_after_simulated_kill_resumes_and_cleans_up(self):
        source, out = self.path("in"), self.path("out")
        images = sorted(make_tree(source, 10))
        self.assert_exit(run("batch", "encode", "-r", source, "-o", out, "--tokens", "3"), 0)
        # A killed run: three outputs never renamed into place, their temporary files left.
        an_hour_ago = time.time() - 3600
        for name in images[:3]:
            output = os.path.join(out, with_extension(name, ".t1d"))
            partial = read(output)[:50]
            os.remove(output)
            temporary = os.path.join(os.path.dirname(output),
                                     "." + os.path.basename(output) + ".tmp-Ab12Cd")
            write(temporary, partial)
            os.utime(temporary, (an_hour_ago, an_hour_ago))
        result = run("batch", "encode", "-r", source, "-o", out, "--tokens", "3", "-v")
        self.assert_exit(result, 0)
        self.assertEqual(summary(result), (3, 7, 0))
        self.assertIn("removed 3 temporary files", result.stderr.decode())
        self.assert_nothing_partial(out)
        back = self.path("back")
        self.assert_exit(run("batch", "decode", "-r", out, "-o", back), 0)
        self.assertEqual(len(files_under(back)), 10)

    def test_real_kill_leaves_only_complete_outputs_and_a_rerun_finishes(self):
        source, out = self.path("in"), self.path("out")
        images = make_tree(source, 60, nested=False)
        command = [TOK1D, "batch", "encode", source, "-o", out, "--tokens", "6", "-j", "1",
                   "--model", MODEL]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while time.time() < deadline and process.poll() is None:
            if os.path.isdir(out) and any(n.endswith(".t1d") for n in os.listdir(out)):
                break
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
        process.wait()
        finished = {n for n in os.listdir(out) if n.endswith(".t1d")}
        for name in finished:  # every output there is complete
            self.assert_exit(subprocess.run([TOK1D, "info", os.path.join(out, name)],
                                            capture_output=True), 0)
        result = run("batch", "encode", source, "-o", out, "--tokens", "6")
        self.assert_exit(result, 0)
        done, skipped, failed = summary(result)
        self.assertEqual((done + skipped, skipped, failed), (60, len(finished), 0))
        self.assertEqual(files_under(out), {with_extension(n, ".t1d") for n in images})

    def test_interrupt_finishes_files_in_progress(self):
        source, out = self.path("in"), self.path("out")
        make_tree(source, 60, nested=False)
        process = subprocess.Popen([TOK1D, "batch", "encode", source, "-o", out, "--tokens",
                                    "6", "-j", "1", "--model", MODEL],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 60
        while time.time() < deadline and process.poll() is None:
            if os.path.isdir(out) and os.listdir(out):
                break
            time.sleep(0.01)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
        self.assert_nothing_partial(out)
        if process.returncode != 0:  # unless it had finished already
            self.assertEqual(process.returncode, 1, stderr)
            self.assertIn("not started", stderr.decode())
        result = run("batch", "encode", source, "-o", out, "--tokens", "6")
        self.assert_exit(result, 0)
        self.assertEqual(len(files_under(out)), 60)

    def test_force_converts_again(self):
        source, out = self.path("in"), self.path("out")
        images = sorted(make_tree(source, 5, nested=False))
        self.assert_exit(run("batch", "encode", source, "-o", out, "--tokens", "2"), 0)
        first = read(os.path.join(out, with_extension(images[0], ".t1d")))
        again = run("batch", "encode", source, "-o", out, "--tokens", "5")
        self.assert_exit(again, 0)
        self.assertEqual(summary(again), (0, 5, 0))
        self.assertEqual(read(os.path.join(out, with_extension(images[0], ".t1d"))), first)
        forced = run("batch", "encode", source, "-o", out, "--tokens", "5", "-f")
        self.assert_exit(forced, 0)
        self.assertEqual(summary(forced), (5, 0, 0))
        self.assertNotEqual(read(os.path.join(out, with_extension(images[0], ".t1d"))), first)
        self.assert_nothing_partial(out)

    # -- sharding --------------------------------------------------------------------------

    def test_three_shards_cover_every_file_exactly_once(self):
        source, out = self.path("in"), self.path("out")
        images = make_tree(source, 20, corrupt="set0/bad.ppm")
        inputs = set()
        sizes = []
        for index in range(3):
            result = run("batch", "encode", "-r", source, "-o", out, "--tokens", "2",
                         "--shard", f"{index}/3", "--json")
            shard_inputs = {os.path.relpath(r["input"], source) for r in records(result)}
            self.assertFalse(inputs & shard_inputs, "a file in two shards")
            inputs |= shard_inputs
            sizes.append(len(shard_inputs))
            self.assertTrue(all(r["status"] != "skipped" for r in records(result)))
        self.assertEqual(inputs, set(images) | {os.path.join("set0", "bad.ppm")})
        self.assertLessEqual(max(sizes) - min(sizes), 1)
        self.assertEqual(files_under(out), {with_extension(n, ".t1d") for n in images})

    # -- reporting -------------------------------------------------------------------------

    def test_json_records(self):
        source, out = self.path("in"), self.path("out")
        images = make_tree(source, 3, corrupt="bad.png", nested=False)
        result = run("batch", "encode", source, "-o", out, "--tokens", "2", "--stats", "--json")
        self.assert_exit(result, 1)
        by_input = {os.path.basename(r["input"]): r for r in records(result)}
        self.assertEqual(set(by_input), set(images) | {"bad.png"})
        self.assertEqual(by_input["bad.png"]["status"], "failed")
        self.assertIn("bad.png", by_input["bad.png"]["error"])
        for name, (width, height) in images.items():
            record = by_input[name]
            self.assertEqual(record["status"], "done")
            self.assertEqual((record["width"], record["height"], record["tokens"]), (width, height, 2))
            self.assertEqual(record["bytes_out"], os.path.getsize(record["output"]))
            self.assertEqual(record["bytes_in"], os.path.getsize(record["input"]))
            self.assertIn("psnr", record)
            self.assertIn("bpp", record)
        skipped = records(run("batch", "encode", source, "-o", out, "--tokens", "2", "--json"))
        self.assertEqual(sorted(r["status"] for r in skipped), ["failed", "skipped", "skipped", "skipped"])

    def test_psnr_target_and_adaptive_counts_in_records(self):
        source = self.path("in")
        images = make_tree(source, 3, nested=False)
        full = records(run("batch", "encode", source, "-o", self.path("full"), "--tokens", "6",
                           "--stats", "--json"))
        target = min(r["psnr"] for r in full) - 1.0
        result = run("batch", "encode", source, "-o", self.path("out"), "--psnr", f"{target:.3f}",
                     "--allocation", "adaptive", "--stats", "--json", "-j", "2")
        self.assert_exit(result, 0)
        done = records(result)
        self.assertEqual(len(done), len(images))
        full_bytes = {os.path.basename(r["input"]): r["bytes_out"] for r in full}
        for record in done:
            self.assertGreaterEqual(record["psnr"], round(target, 3) - 1e-9)
            self.assertLessEqual(record["bytes_out"], full_bytes[os.path.basename(record["input"])])
            self.assertTrue(1 <= record["tokens_min"] <= record["tokens"] <= record["tokens_max"] <= 6)
            info = json.loads(subprocess.run([TOK1D, "info", "--json", record["output"]],
                                             capture_output=True, check=True).stdout)
            counts = info["tokens_per_tile"]
            self.assertEqual((record["tokens_min"], record["tokens_max"]), (min(counts), max(counts)))
            self.assertAlmostEqual(record["tokens"], sum(counts) / len(counts))

    def test_decode_groups_equal_one_file_at_a_time_and_bad_files_fail_alone(self):
        source, out = self.path("in"), self.path("out")
        make_tree(source, 9, nested=False)  # 4 to 16 tiles each: several files per group
        self.assert_exit(run("batch", "encode", source, "-o", out, "--tokens", "4",
                             "--coder", "raw"), 0)
        # Among them a damaged file (found when read) and one made with another model (found
        # by the codec, when its group decodes).
        write(os.path.join(out, "img004.t1d"), read(os.path.join(out, "img004.t1d"))[:20])
        other = self.path("other.safetensors")
        subprocess.run([MAKE_MODEL, other, "2", "other"], check=True)
        self.assert_exit(run("encode", os.path.join(source, "img006.ppm"), "-o",
                             os.path.join(out, "img006.t1d"), "--tokens", "4", "--coder", "raw",
                             "-f", model=other), 0)
        outputs = {}
        for name, options in (("grouped", ["-j", "1", "--group-tiles", "32", "-v"]),
                              ("one", ["-j", "1", "-v"]),  # the CPU's default
                              ("large", ["-j", "2", "--group-tiles", "1000"])):
            result = run("batch", "decode", out, "-o", self.path(name), *options)
            self.assert_exit(result, 1)
            self.assertEqual(summary(result), (7, 0, 2))
            errors = [line for line in result.stderr.decode().splitlines() if "error" in line]
            self.assertTrue(any("img004.t1d" in line for line in errors), errors)
            self.assertTrue(any("img006.t1d" in line and "other" in line for line in errors), errors)
            if name == "grouped":
                self.assertIn("groups of up to 32 tiles", result.stderr.decode())
            elif name == "one":
                self.assertIn("one file at a time", result.stderr.decode())
            self.assert_nothing_partial(self.path(name))
            outputs[name] = {n: read(os.path.join(self.path(name), n))
                             for n in files_under(self.path(name))}
        self.assertEqual(len(outputs["one"]), 7)
        self.assertEqual(outputs["grouped"], outputs["one"])
        self.assertEqual(outputs["large"], outputs["one"])

    def test_log_lines_when_not_on_a_terminal(self):
        source, out = self.path("in"), self.path("out")
        make_tree(source, 3, nested=False)
        result = run("batch", "encode", source, "-o", out, "--tokens", "2")
        lines = result.stderr.decode().splitlines()
        self.assertEqual(sum("tokens per tile" in line for line in lines), 3, lines)
        quiet = run("batch", "encode", source, "-o", self.path("quiet"), "--tokens", "2", "-q")
        self.assert_exit(quiet, 0)
        self.assertEqual(quiet.stderr, b"")

    # -- exit statuses ---------------------------------------------------------------------

    def test_usage_errors_exit_2(self):
        source = self.path("in")
        make_tree(source, 1, nested=False)
        out = self.path("out")
        for args in (["batch", "encode", source, "--tokens", "2"],           # no -o
                     ["batch", "encode", "-o", out, "--tokens", "2"],         # no inputs
                     ["batch", "encode", source, "-o", out],                  # no rate
                     ["batch", "encode", source, "-o", out, "-t", "2", "--psnr", "20"],
                     ["batch", "encode", source, "-o", out, "-t", "2", "--allocation", "uniform"],
                     ["batch", "encode", source, "-o", out, "-t", "2", "--shard", "3/3"],
                     ["batch", "encode", source, "-o", out, "-t", "2", "--shard", "x"],
                     ["batch", "decode", source, "-o", out, "-j", "0"],
                     ["batch", "decode", source, "-o", out, "--group-tiles", "0"],
                     ["batch", "encode", source, "-o", out, "-t", "2", "--group-tiles", "4"],
                     ["batch", source, "-o", out]):
            with self.subTest(args=args):
                result = run(*args)
                self.assert_exit(result, 2)
                self.assertFalse(os.path.exists(out))

    def test_errors_before_any_file_exit_1(self):
        source, out = self.path("in"), self.path("out")
        make_tree(source, 2, nested=False)
        result = run("batch", "encode", "--from-list", self.path("no-such-list"), "-o", out,
                     "--tokens", "2")
        self.assert_exit(result, 1)
        self.assertIn("no-such-list", result.stderr.decode())
        result = run("batch", "encode", source, "-o", out, "--tokens", "99")
        self.assert_exit(result, 1)
        self.assertIn("more than the model", result.stderr.decode())
        self.assertFalse(os.path.exists(out) and os.listdir(out))

    # -- the BLAS's kernels ----------------------------------------------------------------

    def test_matrix_products_use_the_kernels_the_cpu_can_run(self):
        # OpenBLAS 0.3.21 falls back to SSE3 kernels on CPUs newer than itself; tok1d restarts
        # with OPENBLAS_CORETYPE set (kernels/cpu/cpu_backend.h), unless the user set it.
        try:
            with open("/proc/cpuinfo") as f:
                flags = next(line for line in f if line.startswith("flags")).split()
        except (OSError, StopIteration):
            self.skipTest("no /proc/cpuinfo")
        if "avx2" not in flags or "fma" not in flags:
            self.skipTest("a CPU without AVX2: the fallback cores are its own")
        image = self.path("small.ppm")
        write(image, ppm(40, 40, 1))

        def core(env):
            result = subprocess.run([TOK1D, "encode", image, "-o", self.path("small.t1d"), "-f",
                                     "-t", "4", "-v", "--model", MODEL], capture_output=True,
                                    timeout=60, env=env)
            self.assert_exit(result, 0)
            line = next((l for l in result.stderr.decode().splitlines() if "OpenBLAS" in l), None)
            if line is None:
                self.skipTest("not built on OpenBLAS")
            return line.split(" MAX_THREADS")[0].split()[-1]

        env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
        fallbacks = {"Unknown", "Prescott", "Core2", "Penryn", "Dunnington", "Nehalem",
                     "Sandybridge"}
        self.assertNotIn(core(env), fallbacks)
        self.assertEqual(core(dict(env, OPENBLAS_CORETYPE="Prescott")), "Prescott")

    # -- the real model --------------------------------------------------------------------

    def test_real_model_round_trip(self):
        if not REAL_MODEL or not os.path.exists(REAL_MODEL):
            self.skipTest("no real model file")
        source, out, back = self.path("in"), self.path("out"), self.path("back")
        images = make_tree(source, 4, nested=False)
        self.assert_exit(run("batch", "encode", source, "-o", out, "--tokens", "16", "-j", "2",
                             model=REAL_MODEL), 0)
        self.assert_exit(run("batch", "decode", out, "-o", back, model=REAL_MODEL), 0)
        self.assertEqual(files_under(back), {with_extension(n, ".png") for n in images})


if __name__ == "__main__":
    TOK1D, MAKE_MODEL = sys.argv[1], sys.argv[2]
    REAL_MODEL = sys.argv[3] if len(sys.argv) > 3 else None
    del sys.argv[1:]
    with tempfile.TemporaryDirectory() as models:
        MODEL = os.path.join(models, "tiny.safetensors")
        subprocess.run([MAKE_MODEL, MODEL, "1", "tiny"], check=True)
        outcome = unittest.main(verbosity=1, exit=False).result
    sys.exit(0 if outcome.wasSuccessful() else 1)
