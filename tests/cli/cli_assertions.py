"""Assertions shared by the Python tests of the tok1d command."""


def assert_one_line_error(test, result, rc, *fragments):
    """Exit status rc and, on stderr, 'tok1d: error: …' naming the problem (one line for
    errors, exit 1; usage errors, exit 2, may add CLI11's hint)."""
    test.assertEqual(result.returncode, rc, result.stderr)
    stderr = result.stderr.decode()
    test.assertTrue(stderr.startswith("tok1d: error: "), stderr)
    if rc == 1:
        test.assertEqual(stderr.count("\n"), 1, stderr)
    for fragment in fragments:
        test.assertIn(fragment, stderr)
