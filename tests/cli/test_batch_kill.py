#!/usr/bin/env python3
"""tok1d batch under SIGKILL: killed at random moments several times and resumed each time, a
batch run ends with an output tree equal byte for byte to an uninterrupted run's, and with no
temporary file left. Between kills, every output in place is already complete and final.

The moments are random: each run is killed once a random number of further outputs (none to a
third of those still missing) are in place, a random fraction of a millisecond to a few
milliseconds later, so kills land during start-up, between files and while files are being
written. The seed is printed; TOK1D_KILL_SEED repeats a run.

Usage: test_batch_kill.py PATH/TO/tok1d PATH/TO/tok1d_make_test_model
"""
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import unittest

from test_batch import files_under, make_tree, read, with_extension

TOK1D = MAKE_MODEL = MODEL = None
SEED = int(os.environ.get("TOK1D_KILL_SEED", time.time_ns() % 1_000_000))
KILLS = 8


def is_temporary(name):
    """The batch writer's temporary files: hidden, ".NAME.tmp-XXXXXX" next to NAME."""
    base = os.path.basename(name)
    return base.startswith(".") and ".tmp-" in base


class BatchKillTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.root = self.tmp.name
        self.rng = random.Random(SEED)

    def tearDown(self):
        self.tmp.cleanup()

    def path(self, *parts):
        return os.path.join(self.root, *parts)

    def command(self, direction, source, out, *options):
        return [TOK1D, "batch", direction, "-r", source, "-o", out, "--model", MODEL, *options]

    def kill_at_random_moment(self, process, out, expected):
        """Waits for a random number of further outputs in `out`, then a random moment more,
        and kills `process` with SIGKILL. Returns a description of the moment."""
        def outputs():
            return [n for n in files_under(out) if not is_temporary(n)] if os.path.isdir(out) else []
        present = len(outputs())
        target = present + self.rng.randint(0, max(0, (len(expected) - present) // 3))
        deadline = time.monotonic() + 120
        while process.poll() is None and len(outputs()) < target and time.monotonic() < deadline:
            time.sleep(0.0005)
        delay = self.rng.uniform(0, 0.005)
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        return f"after {target - present} more outputs and {1000 * delay:.2f} ms"

    def tree(self, root):
        return {name: read(os.path.join(root, name)) for name in files_under(root)}

    def check_killed_and_resumed(self, direction, source, options, kills=KILLS):
        """Runs `tok1d batch DIRECTION` once without interruption (the reference), then again
        into another folder, killing it `kills` times at random moments and resuming after each
        kill, and compares the two trees."""
        reference, out = self.path(direction + "-reference"), self.path(direction + "-killed")
        result = subprocess.run(self.command(direction, source, reference, *options),
                                capture_output=True, timeout=600)
        self.assertEqual(result.returncode, 0, result.stderr.decode())
        expected = self.tree(reference)
        self.assertTrue(expected)
        self.assertFalse([n for n in expected if is_temporary(n)])

        killed_mid_run = temporaries_seen = 0
        for attempt in range(kills):
            process = subprocess.Popen(self.command(direction, source, out, *options),
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            moment = self.kill_at_random_moment(process, out, expected)
            process.wait(timeout=600)
            if process.returncode == -signal.SIGKILL:
                killed_mid_run += 1
            else:  # it had finished before the kill
                self.assertEqual(process.returncode, 0, f"kill {attempt} {moment}")
            # Whatever is in place is complete and final; only hidden temporaries may be partial.
            for name, data in self.tree(out).items() if os.path.isdir(out) else []:
                if is_temporary(name):
                    temporaries_seen += 1
                    continue
                self.assertIn(name, expected, f"kill {attempt} {moment}")
                self.assertEqual(data, expected[name], f"{name} differs: kill {attempt} {moment}")
        # The run that finishes the job.
        result = subprocess.run(self.command(direction, source, out, *options),
                                capture_output=True, timeout=600)
        self.assertEqual(result.returncode, 0, result.stderr.decode())
        final = self.tree(out)
        self.assertEqual([n for n in final if is_temporary(n)], [], "temporary files left")
        self.assertEqual(sorted(final), sorted(expected))
        for name in expected:
            self.assertEqual(final[name], expected[name], f"{name} differs")
        print(f"batch {direction}: {killed_mid_run} of {kills} kills hit a running process; "
              f"{temporaries_seen} temporary files left by them", file=sys.stderr)
        # Most kills must hit a running process, or the test tests little.
        self.assertGreaterEqual(killed_mid_run, kills // 2, "runs finished before their kill")
        return expected

    def test_encode_killed_at_random_moments_resumes_to_the_same_tree(self):
        source = self.path("images")
        images = make_tree(source, 96)
        expected = self.check_killed_and_resumed("encode", source, ["--tokens", "6", "-j", "2"])
        self.assertEqual(set(expected), {with_extension(n, ".t1d") for n in images})

    def test_decode_killed_at_random_moments_resumes_to_the_same_tree(self):
        source, t1d = self.path("images"), self.path("t1d")
        images = make_tree(source, 64)
        result = subprocess.run(self.command("encode", source, t1d, "--tokens", "6"),
                                capture_output=True, timeout=600)
        self.assertEqual(result.returncode, 0, result.stderr.decode())
        expected = self.check_killed_and_resumed("decode", t1d, ["-j", "2"], kills=5)
        self.assertEqual(set(expected), {with_extension(n, ".png") for n in images})


if __name__ == "__main__":
    TOK1D, MAKE_MODEL = sys.argv[1], sys.argv[2]
    del sys.argv[1:]
    print(f"kill moments: seed {SEED} (TOK1D_KILL_SEED={SEED} repeats them)", flush=True)
    with tempfile.TemporaryDirectory() as models:
        MODEL = os.path.join(models, "tiny.safetensors")
        subprocess.run([MAKE_MODEL, MODEL, "1", "tiny"], check=True)
        outcome = unittest.main(verbosity=1, exit=False).result
    sys.exit(0 if outcome.wasSuccessful() else 1)
