#!/usr/bin/env bash
# Run the public VNN-LIB 2.0 conformance suite (vnnlib-satisfactory, PyPI) against this checkout.
#
#   bench/conformance.sh [VENV_DIR] [-- extra `vnnlib-satisfactory run` options, e.g. --test relu --verbose]
#
# VENV_DIR holds the suite's own virtual environment (created and filled with `pip install vnnlib-satisfactory`
# when missing; default: a temporary directory, removed at the end). The suite calls its solver by the name
# `verifier` on PATH: a shim in a temporary directory runs this checkout's cli.py with PYTHON (default: .venv's
# python, else python3). Prints the suite's output; its last lines are the summary (passed / failed / suspect /
# skipped). Options: TIMEOUT (default 10) per case.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
venv=""
if [[ $# -gt 0 && $1 != "--" ]]; then venv=$1; shift; fi
[[ $# -gt 0 && $1 == "--" ]] && shift
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
[[ -n $venv ]] || venv=$tmp/venv
if [[ ! -x $venv/bin/vnnlib-satisfactory ]]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q vnnlib-satisfactory
fi
python=${PYTHON:-}
if [[ -z $python ]]; then
    if [[ -x $here/.venv/bin/python ]]; then python=$here/.venv/bin/python; else python=$(command -v python3); fi
fi
mkdir -p "$tmp/bin"
cat > "$tmp/bin/verifier" <<SHIM
#!/usr/bin/env bash
PYTHONPATH="$here\${PYTHONPATH:+:\$PYTHONPATH}" exec "$python" "$here/cli.py" "\$@"
SHIM
chmod +x "$tmp/bin/verifier"
cd "$tmp"
PATH="$tmp/bin:$PATH" "$venv/bin/vnnlib-satisfactory" run --solver verifier --timeout "${TIMEOUT:-10}" "$@"
