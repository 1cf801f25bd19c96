"""`--junit FILE.xml`: one JUnit testcase per instance, for CI systems that render test reports.

classname = the model file, name = the spec file (as written in instances.csv or on the command line),
time = the instance's wall seconds. unsat passes; sat is a <failure> whose text is the counterexample;
error is an <error> with the one-line message; unknown and timeout are <skipped>, or <failure> with
`--junit-strict`.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Mapping, Sequence

from verifier.result import ERROR, SAT, TIMEOUT, UNKNOWN
from verifier.runner.result_files import counterexample_of, write_text_atomic


def _testcase(record: Mapping[str, Any], strict: bool) -> tuple[ET.Element, str]:
    """The element and its outcome: passed | failure | error | skipped."""
    case = ET.Element("testcase", classname=str(record["onnx"]), name=str(record["vnnlib"]),
                      time=f"{float(record['wall']):.3f}")
    verdict, message = record["verdict"], record.get("message") or ""
    if verdict == SAT:
        from verifier.report.vnncomp import format_counterexample

        cex = counterexample_of(record)
        node = ET.SubElement(case, "failure", message="falsified: counterexample found", type="sat")
        node.text = format_counterexample(cex.x, cex.y) if cex is not None else ""
        return case, "failure"
    if verdict == ERROR:
        ET.SubElement(case, "error", message=message or "error", type="error")
        return case, "error"
    if verdict in (UNKNOWN, TIMEOUT):
        text = f"{verdict}" + (f": {message}" if message else "")
        ET.SubElement(case, "failure" if strict else "skipped", message=text, type=verdict)
        return case, "failure" if strict else "skipped"
    return case, "passed"


def build(records: Sequence[Mapping[str, Any]], strict: bool = False, name: str = "verifier run") -> ET.Element:
    suite = ET.Element("testsuite", name=name)
    tally = {"failure": 0, "error": 0, "skipped": 0, "passed": 0}
    for record in records:
        case, outcome = _testcase(record, strict)
        suite.append(case)
        tally[outcome] += 1
    total_time = sum(float(r["wall"]) for r in records)
    attrs = {"tests": str(len(records)), "failures": str(tally["failure"]), "errors": str(tally["error"]),
             "skipped": str(tally["skipped"]), "time": f"{total_time:.3f}"}
    suite.attrib.update(attrs)
    root = ET.Element("testsuites", attrs)
    root.append(suite)
    return root


def write(path: Path, records: Sequence[Mapping[str, Any]], strict: bool = False) -> None:
    root = build(records, strict)
    ET.indent(root)
    text = '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, text)
