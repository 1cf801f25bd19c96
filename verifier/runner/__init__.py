"""`verifier run`: batch runs over many (model, spec) instances, with resumable results and a CI gate.

Modules, one job each:
- `settings`: presets, TOML configuration and command-line values merged into one frozen `RunSettings`;
- `instances`: the plan (a VNN-COMP instances.csv, or `--model NET SPECS…`) and file fingerprints;
- `worker`: one instance from start to finish in whatever process runs it (model cache, timeout, error rows);
- `executors`: serial, `--jobs N` processes, or Ray actors, all yielding the same records;
- `records`: the append-only JSONL/CSV results file and `--resume`;
- `result_files`: per-instance VNN-COMP result and counterexample files (`--results-dir`);
- `batch`: the loop that ties them together; `gate`: the CI exit code; `junit`: the JUnit XML report;
- `progress`: live progress or plain log lines; `summary`: the summary table and `verifier.run/1` JSON;
- `command`: the click command.

Nothing here imports torch at module level, so `verifier --help` stays fast.
"""
