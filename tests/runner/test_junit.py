"""The JUnit report, parsed back with xml.etree."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from tests.runner.helpers import FALSIFIABLE, ROBUST, TOY, invoke


def _cases(path: Path) -> tuple[ET.Element, list[ET.Element]]:
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    suite = root.find("testsuite")
    assert suite is not None
    return suite, suite.findall("testcase")


def test_one_testcase_per_instance(tmp_path: Path) -> None:
    report = tmp_path / "out" / "report.xml"
    missing = tmp_path / "missing.vnnlib"
    res = invoke("run", "--model", TOY, ROBUST, FALSIFIABLE, missing, "--junit", report, "--quiet")
    assert res.exit_code == 3  # the missing spec is bad input
    suite, cases = _cases(report)
    assert [c.get("classname") for c in cases] == [str(TOY)] * 3
    assert [c.get("name") for c in cases] == [str(ROBUST), str(FALSIFIABLE), str(missing)]
    assert all(float(c.get("time")) >= 0 for c in cases)
    counts = [suite.get(k) for k in ("tests", "failures", "errors", "skipped")]
    assert counts == ["3", "1", "1", "0"]
    assert list(cases[0]) == []  # unsat passes
    failure = cases[1].find("failure")
    assert failure is not None and failure.text.startswith("((X_0 ") and "(Y_2 " in failure.text
    error = cases[2].find("error")
    assert error is not None and str(missing) in error.get("message")


def test_unknown_is_skipped_unless_strict(tmp_path: Path) -> None:
    args = ("run", "--model", TOY, ROBUST, "--method", "ibp", "--bab", "none", "--quiet")
    invoke(*args, "--junit", tmp_path / "lenient.xml")
    suite, [case] = _cases(tmp_path / "lenient.xml")
    skipped = case.find("skipped")
    assert skipped is not None and skipped.get("message").startswith("unknown") and suite.get("skipped") == "1"
    invoke(*args, "--junit", tmp_path / "strict.xml", "--junit-strict")
    suite, [case] = _cases(tmp_path / "strict.xml")
    assert case.find("failure").get("type") == "unknown" and suite.get("failures") == "1"
