#!/usr/bin/env python3
"""The manual pages match the command: every subcommand has a page (man/tok1d-SUB.1), every
option that `tok1d [SUB] --help` lists is documented in the OPTIONS section of its page and
every option documented there exists, each page has the usual sections, and groff renders
each page without a warning.

Usage: test_man_pages.py PATH/TO/tok1d PATH/TO/man
"""
import os
import re
import shutil
import subprocess
import sys
import unittest

TOK1D = MAN_DIR = None

SECTIONS = ["NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "EXIT STATUS", "EXAMPLES", "SEE ALSO"]
# An option name: "-o" or "--no-deblock", not a negative number or a lone "-" (stdin).
OPTION = re.compile(r"(?<![\w-])(--?[A-Za-z][A-Za-z0-9-]*)")


def help_text(*command):
    result = subprocess.run([TOK1D, *command, "--help"], capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


def help_options(text):
    """Option names from CLI11 help: the lines under "Options:" (also in option groups) that
    start with an option, up to the column where its description begins."""
    names = set()
    for line in text.splitlines():
        match = re.match(r"^\s+(-[^\s]*)", line)
        if match:
            names.update(name for name in match.group(1).split(",") if name.startswith("-"))
    return names


def subcommands(text):
    """Names listed under "Subcommands:" in CLI11 help."""
    names, inside = [], False
    for line in text.splitlines():
        if line.startswith("Subcommands:"):
            inside = True
        elif inside and re.match(r"^\s+\w", line):
            names.append(line.split()[0])
        elif inside and not line.strip():
            break
    return names


def plain(roff):
    """roff source with font escapes removed and \\- made a plain hyphen."""
    roff = re.sub(r"\\f(\[[^\]]*\]|\(..|.)", "", roff)
    return roff.replace("\\-", "-").replace("\\&", "")


def sections(page):
    """{section name: its text}, from the .SH lines."""
    found, name = {}, None
    for line in plain(page).splitlines():
        if line.startswith(".SH "):
            name = line[4:].strip().strip('"')
            found[name] = ""
        elif name:
            found[name] += line + "\n"
    return found


def documented_options(options_section):
    """Option names in the tags (the line after .TP) of the OPTIONS section."""
    names, lines = set(), options_section.splitlines()
    for previous, line in zip(lines, lines[1:]):
        if previous.startswith(".TP"):
            names.update(OPTION.findall(line))
    return names


class ManPageTest(unittest.TestCase):
    def page(self, name):
        path = os.path.join(MAN_DIR, name + ".1")
        self.assertTrue(os.path.exists(path), f"no manual page {path}")
        with open(path, encoding="utf-8") as f:
            return path, f.read()

    def check_page(self, name, *help_commands):
        path, page = self.page(name)
        found = sections(page)
        for section in SECTIONS:
            self.assertIn(section, found, f"{path}: no {section} section")
        accepted = set()
        for command in help_commands:
            accepted |= help_options(help_text(*command))
        documented = documented_options(found["OPTIONS"])
        self.assertEqual(sorted(accepted - documented), [],
                         f"{path}: options the command accepts but the page does not document")
        self.assertEqual(sorted(documented - accepted), [],
                         f"{path}: options the page documents but the command does not accept")

    def test_main_page(self):
        self.check_page("tok1d", [])

    def test_every_subcommand_has_a_complete_page(self):
        commands = subcommands(help_text())
        self.assertIn("batch", commands)
        for command in commands:
            with self.subTest(command=command):
                nested = subcommands(help_text(command))
                # `batch encode` and `batch decode` share one page.
                helps = [[command, sub] for sub in nested] or [[command]]
                self.check_page("tok1d-" + command, *helps)

    def test_pages_render_without_warnings(self):
        groff = shutil.which("groff")
        if groff is None:
            self.skipTest("groff is not installed (scripts/install-deps installs groff-base)")
        for name in sorted(os.listdir(MAN_DIR)):
            if not name.endswith(".1"):
                continue
            with self.subTest(page=name):
                result = subprocess.run([groff, "-man", "-Tutf8", "-ww", "-z",
                                         os.path.join(MAN_DIR, name)], capture_output=True)
                self.assertEqual(result.returncode, 0, result.stderr.decode())
                self.assertEqual(result.stderr.decode(), "")

    def test_man_renders_the_main_page(self):
        man = shutil.which("man")
        if man is None:
            self.skipTest("man is not installed (scripts/install-deps installs man-db)")
        result = subprocess.run([man, "-l", os.path.join(MAN_DIR, "tok1d.1")],
                                capture_output=True, env=dict(os.environ, MANPAGER="cat",
                                                              PAGER="cat", MANWIDTH="80"))
        self.assertEqual(result.returncode, 0, result.stderr.decode())
        self.assertIn("tok1d-batch(1)", result.stdout.decode())


if __name__ == "__main__":
    TOK1D, MAN_DIR = sys.argv[1], sys.argv[2]
    del sys.argv[1:]
    unittest.main(verbosity=1)
