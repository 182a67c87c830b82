#!/usr/bin/env python3
"""Tests of the tok1d command: exit codes, messages, output files.

Usage: test_cli.py PATH/TO/tok1d PATH/TO/tests/data/container
"""
import json
import os
import subprocess
import sys
import tempfile
import unittest

from cli_assertions import assert_one_line_error

TOK1D = None
GOLDEN = None


# Fuzzing builds (scripts/test-sanitizers) accept any .t1d checksum (tests/checksum_mode.h).
CHECKSUMS_SKIPPED = os.environ.get("TOK1D_CHECKSUMS_SKIPPED") == "1"


def golden(name):
    return os.path.join(GOLDEN, name)


def run(*args, stdin=None):
    return subprocess.run([TOK1D, *args], input=stdin, capture_output=True, timeout=60)


class CliTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def path(self, name):
        return os.path.join(self.dir, name)

    def assert_error(self, result, rc, *fragments):
        assert_one_line_error(self, result, rc, *fragments)

    def assert_nothing_written(self):
        self.assertEqual(os.listdir(self.dir), [])

    # -- global behaviour --------------------------------------------------------------------

    def test_version_names_backends(self):
        result = run("-V")
        self.assertEqual(result.returncode, 0)
        self.assertRegex(result.stdout.decode(), r"^tok1d \d+\.\d+\.\d+ .*backends: cpu")

    def test_usage_errors_exit_2(self):
        self.assert_error(run(), 2, "subcommand")
        self.assert_error(run("frobnicate"), 2)
        self.assert_error(run("info"), 2, "INPUT")
        self.assert_error(run("info", "--no-such-flag", golden("valid_minimal.t1d")), 2)
        self.assert_error(run("trim", golden("valid_minimal.t1d"), "-o", self.path("x"), "--tokens", "0"), 2)
        self.assert_error(run("trim", golden("valid_minimal.t1d"), "--tokens", "2"), 2, "--output")
        self.assert_nothing_written()

    def test_help_per_subcommand(self):
        for command in ("info", "trim"):
            result = run(command, "--help")
            self.assertEqual(result.returncode, 0)
            self.assertIn(b"Usage: tok1d " + command.encode(), result.stdout)
            self.assertIn(b"Exit status", result.stdout)

    # -- info --------------------------------------------------------------------------------

    def test_info_text(self):
        result = run("info", golden("valid_per_tile_counts.t1d"))
        self.assertEqual(result.returncode, 0, result.stderr)
        out = result.stdout.decode()
        for fragment in ("40x20", "3x2 of 16 px", "0..5 per tile of 8, mean 2.7, 16 in all", "FSQ 7x5x5x5x5",
                         "entropy coder: raw", "test-model", "250 bytes"):
            self.assertIn(fragment, out)

    def test_info_json_keys_and_stdin(self):
        with open(golden("valid_per_tile_counts.t1d"), "rb") as f:
            result = run("info", "--json", "-", stdin=f.read())
        self.assertEqual(result.returncode, 0, result.stderr)
        info = json.loads(result.stdout)
        self.assertEqual(info["format_version"], "1.0")
        self.assertEqual((info["width"], info["height"], info["tile_size"]), (40, 20, 16))
        self.assertEqual(info["tiles"], 6)
        self.assertEqual(info["tokens_per_tile"], [5, 0, 3, 1, 5, 2])
        self.assertEqual(info["fsq_levels"], [7, 5, 5, 5, 5])
        self.assertEqual(info["entropy_coder"], "raw")
        self.assertEqual(info["model_name"], "test-model")
        self.assertEqual(info["model_sha256"], bytes(range(32)).hex())
        self.assertEqual(info["bytes"], 250)
        self.assertAlmostEqual(info["bpp"], 250 * 8 / (40 * 20))
        self.assertFalse(info["truncated"])
        self.assertEqual(info["layers_complete"], 5)

    def test_info_truncated_file_warns(self):
        result = run("info", "--json", golden("truncated_in_layer_3.t1d"))
        self.assertEqual(result.returncode, 0)
        self.assertIn(b"warning: ", result.stderr)
        self.assertIn(b"truncated after 3 of 5", result.stderr)
        info = json.loads(result.stdout)
        self.assertTrue(info["truncated"])
        self.assertEqual(info["layers_complete"], 3)
        quiet = run("-q", "info", golden("truncated_in_layer_3.t1d"))
        self.assertEqual(quiet.stderr, b"")

    def test_info_other_coder_works_without_the_coder(self):
        result = run("info", "--json", golden("valid_other_coder.t1d"))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(json.loads(result.stdout)["entropy_coder"], "coder-7")

    def test_info_bad_inputs(self):
        self.assert_error(run("info", self.path("missing.t1d")), 1, "missing.t1d", "No such file")
        text = self.path("notes.txt")
        with open(text, "w") as f:
            f.write("just some text\n")
        self.assert_error(run("info", text), 1, "notes.txt", "not a .t1d")
        if not CHECKSUMS_SKIPPED:
            self.assert_error(run("info", golden("invalid_checksum.t1d")), 1, "checksum mismatch")
        self.assert_error(run("info", golden("invalid_major_version.t1d")), 1,
                          "version 2.0 is not supported", "newer tok1d")
        self.assert_error(run("info", golden("invalid_reserved_colour_flag.t1d")), 1, "reserved")
        self.assert_error(run("info", self.dir), 1, "directory")

    def test_every_invalid_golden_file_fails(self):
        for name in sorted(os.listdir(GOLDEN)):
            if name.startswith("invalid_") and not (CHECKSUMS_SKIPPED and "checksum" in name):
                with self.subTest(name=name):
                    self.assert_error(run("info", golden(name)), 1, name)

    # -- trim --------------------------------------------------------------------------------

    def read(self, path):
        with open(path, "rb") as f:
            return f.read()

    def test_trim_matches_golden_and_reports(self):
        out = self.path("out.t1d")
        result = run("trim", golden("valid_per_tile_counts.t1d"), "-o", out, "--tokens", "2")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(self.read(out), self.read(golden("valid_trimmed_to_2.t1d")))
        self.assertIn(b"250 bytes ->", result.stderr)
        self.assertEqual(os.listdir(self.dir), ["out.t1d"])  # no temporary files left

    def test_spans_info_and_trim(self):
        # Format 1.2: layer spans are shown by info and cut by trim without re-coding.
        result = run("info", golden("valid_spans.t1d"))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn(".t1d 1.2", result.stdout.decode())
        self.assertIn("5 layers", result.stdout.decode())
        self.assertIn("in 3 LAYS chunks", result.stdout.decode())
        info = json.loads(run("info", "--json", golden("valid_spans.t1d")).stdout)
        self.assertEqual(info["layer_payload_bytes"], [9, 7, 5, 4, 4])
        self.assertEqual([(c["first_layer"], c["layers"]) for c in info["layer_chunks"]],
                         [(0, 1), (1, 2), (3, 2)])
        self.assertEqual(info["header_bytes"] + sum(info["layer_bytes"]) +
                         sum(info["extra_chunk_bytes"]) + 16, info["bytes"])
        out = self.path("out.t1d")
        result = run("trim", golden("valid_spans.t1d"), "-o", out, "--tokens", "2")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(self.read(out), self.read(golden("valid_spans_trimmed_to_2.t1d")))
        self.assert_error(run("info", golden("invalid_span_length_overrun.t1d")), 1, "add up to")

    def test_trim_stdin_to_stdout(self):
        result = run("trim", "-", "-o", "-", "-t", "2",
                     stdin=self.read(golden("valid_per_tile_counts.t1d")))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout, self.read(golden("valid_trimmed_to_2.t1d")))

    def test_trim_does_not_overwrite_without_force(self):
        out = self.path("out.t1d")
        with open(out, "wb") as f:
            f.write(b"precious")
        result = run("trim", golden("valid_minimal.t1d"), "-o", out, "--tokens", "2")
        self.assert_error(result, 1, "already exists", "--force")
        self.assertEqual(self.read(out), b"precious")
        result = run("-q", "trim", golden("valid_minimal.t1d"), "-o", out, "--tokens", "2", "-f")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stderr, b"")
        self.assertTrue(self.read(out).startswith(b"\x89T1D"))
        self.assertEqual(os.listdir(self.dir), ["out.t1d"])

    def test_trim_refuses_output_equal_to_input(self):
        src = self.path("a.t1d")
        with open(src, "wb") as f:
            f.write(self.read(golden("valid_minimal.t1d")))
        self.assert_error(run("trim", src, "-o", src, "--tokens", "1", "-f"), 1, "is the input")
        self.assert_error(run("trim", src, "-o", os.path.join(self.dir, ".", "a.t1d"), "-t", "1", "-f"),
                          1, "is the input")
        self.assertEqual(self.read(src), self.read(golden("valid_minimal.t1d")))

    def test_trim_bad_input_leaves_no_output(self):
        out = self.path("out.t1d")
        for name in ("invalid_checksum.t1d", "invalid_major_version.t1d", "missing.t1d"):
            if CHECKSUMS_SKIPPED and "checksum" in name:
                continue
            with self.subTest(name=name):
                self.assert_error(run("trim", golden(name), "-o", out, "--tokens", "1"), 1, name)
                self.assert_nothing_written()

    def test_trim_truncated_input(self):
        out = self.path("out.t1d")
        result = run("trim", golden("truncated_in_layer_3.t1d"), "-o", out, "--tokens", "3")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn(b"warning: ", result.stderr)
        self.assertEqual(run("info", out).returncode, 0)  # a complete file again
        os.remove(out)
        result = run("trim", golden("truncated_in_layer_3.t1d"), "-o", out, "--tokens", "4")
        self.assert_error(result, 1, "truncated after 3")
        self.assert_nothing_written()


if __name__ == "__main__":
    TOK1D, GOLDEN = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    unittest.main(argv=sys.argv[:1], verbosity=1)
