"""Runs the pages' node known-answer tests (tests/web/*.test.mjs) with `node --test`.

They check onepw.js, keybundle.js, scopedkeys.js, jwe.js, hawk.js, api.js and flow.js
against the vectors the Python side uses too (tests/vectors/onepw.json, hawk.json,
keys-jwe.json).  Node is required: without it this fails, it never skips.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
MIN_NODE = 20  # globalThis.crypto.subtle, node:test, CustomEvent


def node_binary() -> str:
    path = shutil.which("node")
    assert path, ("node is not installed, so the web pages' crypto cannot be tested: "
                  "install Node.js 20 or newer (Debian: apt-get install nodejs)")
    version = subprocess.run([path, "--version"], capture_output=True, text=True,
                             check=True).stdout.strip()
    major = int(re.match(r"v(\d+)", version).group(1))  # type: ignore[union-attr]
    assert major >= MIN_NODE, f"node {version} is too old: Node.js {MIN_NODE}+ is needed"
    return path


def test_node_known_answer_tests_pass() -> None:
    files = sorted(HERE.glob("*.test.mjs"))
    assert len(files) >= 7, files
    proc = subprocess.run(
        [node_binary(), "--test", "--test-reporter=tap", *map(str, files)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    out = proc.stdout
    assert proc.returncode == 0, out[-6000:] + proc.stderr[-2000:]

    def count(name: str) -> int:
        m = re.search(rf"^# {name} (\d+)$", out, re.M)
        assert m, f"no '# {name}' line in node's output:\n{out[-2000:]}"
        return int(m.group(1))

    assert count("tests") >= 50, out[-2000:]
    assert count("fail") == 0 and count("cancelled") == 0
    assert count("skipped") == 0 and count("todo") == 0
    assert count("pass") == count("tests")
    # Every file contributed: a module that failed to import would show up as a failure,
    # a file with no tests would not, so check each one by a test name it must hold.
    for name in ("quickStretch/authPW/unwrapBKey", "unbundle", "oldsync k/kid",
                 "decrypts Mozilla's keys_jwe vector", "HAWK: ", "full sign-in",
                 "clock offset"):
        assert re.search(rf"^ok \d+ - .*{re.escape(name)}", out, re.M), name
