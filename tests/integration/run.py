#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
# run.py: run the end-to-end suites; one line per test, then "integration: N passed, N failed, N skipped".
import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


class LineResult(unittest.TextTestResult):
    def startTest(self, test):
        self._t0 = time.time()
        super().startTest(test)

    def _line(self, word, test, extra=""):
        self.stream.write("%-4s %s (%.1fs)%s\n" % (word, test.id().split(".", 1)[1],
                                                   time.time() - self._t0, extra))
        self.stream.flush()

    def addSuccess(self, test):
        unittest.TestResult.addSuccess(self, test)
        self._line("ok", test)

    def addFailure(self, test, err):
        unittest.TestResult.addFailure(self, test, err)
        self._line("FAIL", test, "\n" + self._exc_info_to_string(err, test))

    def addError(self, test, err):
        unittest.TestResult.addError(self, test, err)
        self._line("FAIL", test, "\n" + self._exc_info_to_string(err, test))

    def addSkip(self, test, reason):
        unittest.TestResult.addSkip(self, test, reason)
        self._line("skip", test, " -- " + reason)


def main():
    pattern = sys.argv[1] if len(sys.argv) > 1 else "test_*.py"
    suite = unittest.defaultTestLoader.discover(HERE, pattern=pattern)
    if len(sys.argv) > 2:
        wanted = sys.argv[2:]   # any of these substrings of the test id
        flat = []

        def walk(s):
            for t in s:
                if isinstance(t, unittest.TestSuite):
                    walk(t)
                elif any(w in t.id() for w in wanted):
                    flat.append(t)
        walk(suite)
        suite = unittest.TestSuite(flat)
    runner = unittest.TextTestRunner(stream=sys.stdout, resultclass=LineResult, verbosity=0)
    r = runner.run(suite)
    failed = len(r.failures) + len(r.errors)
    skipped = len(r.skipped)
    passed = r.testsRun - failed - skipped
    print("integration: %d passed, %d failed, %d skipped" % (passed, failed, skipped))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
