#!/bin/bash
# make bench: run every benchmark in benchmarks/ (or the ones named), one after another so
# they do not compete for the 2 cores, saving each one's output in benchmarks/results/.
# Each benchmark measures its own baseline in the same run and prints ratios against it.
#   tools/run-benchmarks.sh                 all of them
#   tools/run-benchmarks.sh port_check      benchmarks/port_check_bench.py only
set -uo pipefail
readonly ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=tools/collection-env.sh
source "${ROOT}/tools/collection-env.sh"
mkdir -p "${ROOT}/benchmarks/results"

names=("$@")
if [[ ${#names[@]} -eq 0 ]]; then
  for file in "${ROOT}"/benchmarks/*_bench.py; do names+=("$(basename "${file%_bench.py}")"); done
fi
rc=0
# Counts what leaves this machine while the benchmarks run; anything fails the run.
trap '"${ROOT}/tools/egress-guard.sh" stop' EXIT
"${ROOT}/tools/egress-guard.sh" start || exit 1
for name in "${names[@]}"; do
  script="${ROOT}/benchmarks/${name}_bench.py"
  [[ -f "$script" ]] || { echo "no benchmark ${script}"; rc=2; continue; }
  printf '\n=== benchmark %s ===\n' "$name"
  if ! python "$script" 2>&1 | tee "${ROOT}/benchmarks/results/${name}.txt"; then
    echo "benchmark ${name} failed"
    rc=1
  fi
done
"${ROOT}/tools/egress-guard.sh" check || rc=1
exit $rc
