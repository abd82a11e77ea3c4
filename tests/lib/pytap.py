#!/usr/bin/env python3
"""Run one unittest module file and report each test case as a TAP test point."""
import importlib.util
import os
import sys
import traceback
import unittest


class TapResult(unittest.TestResult):
    def __init__(self):
        super().__init__()
        self.n = 0

    def _point(self, ok, test, directive=""):
        self.n += 1
        name = test.id().split(".", 1)[-1]
        print(f"{'ok' if ok else 'not ok'} {self.n} - {name}{directive}", flush=True)

    def _diag(self, err):
        text = "".join(traceback.format_exception(*err))
        for line in text.rstrip().splitlines():
            print(f"# {line}")

    def addSuccess(self, test):
        super().addSuccess(test)
        self._point(True, test)

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._point(False, test)
        self._diag(err)

    def addError(self, test, err):
        super().addError(test, err)
        self._point(False, test)
        self._diag(err)

    def addSubTest(self, test, subtest, err):
        # A failing subtest leaves its test without a point of its own: it is one.
        super().addSubTest(test, subtest, err)
        if err is not None:
            self._point(False, subtest)
            self._diag(err)

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._point(True, test, f" # SKIP {reason}")

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self._point(True, test, " # TODO expected failure")

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._point(False, test, " # unexpected success")


def main():
    path = os.path.abspath(sys.argv[1])
    here = os.path.dirname(path)
    sys.path[:0] = [here, os.path.join(os.path.dirname(here), "lib"),
                    os.path.join(os.path.dirname(here), "fakeaws")]
    name = os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    try:
        spec.loader.exec_module(mod)
    except Exception:
        print("1..1")
        print(f"not ok 1 - import {name}")
        for line in traceback.format_exc().splitlines():
            print(f"# {line}")
        return 1
    suite = unittest.defaultTestLoader.loadTestsFromModule(mod)
    result = TapResult()
    suite.run(result)
    # A failing setUpClass is reported by unittest as an error without a test point.
    if result.n == 0 and not result.wasSuccessful():
        print("not ok 1 - module setup")
        for _, text in result.errors:
            for line in text.splitlines():
                print(f"# {line}")
        result.n = 1
    print(f"1..{result.n}")
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
