#!/bin/bash
# Run the test stages of `make test` one after another, time each one, keep going after a
# failure so that one run shows every problem, print a summary, exit non-zero on any failure.
#
#   tools/run-tests.sh                 every stage
#   tools/run-tests.sh lint units      only the named stages
#   MOLECULE_SCENARIOS="stunnel" tools/run-tests.sh molecule
set -uo pipefail

readonly ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly BUILD="${ROOT}/.build"
# Outside the repository: inside it, ansible-test would ask this repository's git which files
# exist, and .build/ is ignored there.
readonly AT_ROOT="${TMPDIR:-/tmp}/libsys-onprem-ansible-test/ansible_collections/libsys/onprem"
readonly LOG_DIR="${BUILD}/test-logs"
# shellcheck source=tools/collection-env.sh
source "${ROOT}/tools/collection-env.sh"
export ANSIBLE_FORCE_COLOR=0 PY_COLORS=0 ANSIBLE_NOCOLOR=1

ALL_STAGES=(lint units sanity-oldest sanity-newest build molecule)
declare -a SUMMARY=()
FAILED=0

log() { printf '\n=== %s ===\n' "$*"; }

copy_for_ansible_test() {
  # ansible-test wants a real ansible_collections/NS/NAME tree: copy the files git knows
  # about (tracked, or untracked and not ignored) that make up the collection and its unit
  # tests. The development tooling (the same paths galaxy.yml keeps out of the tarball) is
  # linted by the lint stage instead.
  rm -rf "${AT_ROOT}"
  mkdir -p "${AT_ROOT}"
  (cd "${ROOT}" && git ls-files -co --exclude-standard \
    | grep -vE '^(tools|molecule|tests/peers|benchmarks|images|requirements|\.ci|\.config)/|^Makefile$' \
    | rsync -a --files-from=- ./ "${AT_ROOT}/")
}

stage_lint() {
  cd "${ROOT}" || return 1
  local rc=0
  yamllint --strict . || rc=1
  ruff check . || rc=1
  ruff format --check --diff plugins tests benchmarks molecule tools 2>/dev/null || rc=1
  ANSIBLE_ROLES_PATH="${ROOT}/tests/peers/roles" ansible-lint --offline -q || rc=1
  tools/gen-role-docs.sh --check || rc=1
  antsibull-changelog lint || rc=1
  check_example_layout || rc=1
  return $rc
}

check_example_layout() {
  # The README's "copy inventories/example, then `ansible-playbook site.yml`": from a copy
  # outside the repository, its ansible.cfg names the inventory and site.yml resolves the
  # collection's playbook, with every play finding its hosts.
  local copy rc=0
  copy=$(mktemp -d)
  cp -r "${ROOT}/inventories/example" "${copy}/campus"
  (cd "${copy}/campus" && ansible-playbook site.yml --syntax-check >/dev/null) || rc=1
  local listed
  listed=$(cd "${copy}/campus" && ansible-playbook site.yml --list-hosts 2>&1) || rc=1
  if [[ "$listed" != *onprem-mail.library.example.edu* ]]; then
    echo "example layout: site.yml lists no hosts of the example inventory"
    rc=1
  fi
  rm -rf "${copy}"
  return $rc
}

stage_units() {
  cd "${ROOT}" || return 1
  # A test that skips for a missing tool fails here (tests/unit/conftest.py).
  LIBSYS_REQUIRE_TOOLS=1 python -m pytest -q -n 2 tests/unit tests/playbooks
}

run_ansible_test() {
  local venv=$1 python=$2; shift 2
  [[ -x "${venv}/bin/ansible-test" ]] || { echo "missing ${venv}: run tools/setup-host.sh --sanity"; return 2; }
  copy_for_ansible_test
  cd "${AT_ROOT}" || return 1
  local rc=0
  "${venv}/bin/ansible-test" sanity --local --requirements --python "${python}" --color no "$@" || rc=1
  if [[ -d tests/unit ]]; then
    "${venv}/bin/ansible-test" units --local --requirements --python "${python}" --color no || rc=1
  fi
  return $rc
}

stage_sanity-oldest() {
  local python
  python=$("${BUILD}/venv-core-oldest/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])') || {
    echo "missing ${BUILD}/venv-core-oldest: run tools/setup-host.sh --sanity"
    return 2
  }
  run_ansible_test "${BUILD}/venv-core-oldest" "$python" && no_skipped_units
}

stage_sanity-newest() {
  # The newest core needs a newer Python than Debian 12's: ansible-test runs in the Debian 13
  # image (Python 3.13) with no network, installing from the wheelhouse that
  # tools/setup-host.sh --sanity downloaded (pip.conf points there; ansible-test passes no
  # PIP_* variables on). NET_ADMIN: the unit tests make unanswered ports with nft drop rules.
  local wheels="${BUILD}/wheels-core-newest"
  [[ -f "${wheels}/requirements/pip.txt" ]] || { echo "missing ${wheels}: run tools/setup-host.sh --sanity"; return 2; }
  "${ROOT}/tools/build-sanity-image.sh" || return 1
  copy_for_ansible_test
  local core cache="${BUILD}/sanity-newest"
  core=$(grep -v '^#' "${ROOT}/requirements/sanity-newest.txt")
  # The container's virtualenv and ansible-test's own ones are kept between runs, for as long
  # as the wheelhouse is the same.
  if ! cmp -s "${BUILD}/stamps/wheels-core-newest.sha" "${cache}/wheelhouse.sha"; then
    rm -rf "$cache"
    mkdir -p "${cache}/venv" "${cache}/ansible"
    cp "${BUILD}/stamps/wheels-core-newest.sha" "${cache}/wheelhouse.sha"
  fi
  podman run --rm --network none --cap-add NET_ADMIN --entrypoint /bin/sh \
    -v "${cache}/venv:/venv" -v "${cache}/ansible:/root/.ansible" \
    -v "${wheels}:/wheels:ro" -v "${AT_ROOT%/ansible_collections/*}:/src" \
    -v "${ROOT}/tools/ansible-test-get-pip.py:/get-pip.py:ro" \
    -e CORE="$core" -e PIP="$(cat "${wheels}/requirements/pip.txt")" \
    localhost/libsys-onprem/sanity:13 -euc '
      printf "[global]\nno-index = true\nfind-links = /wheels\ndisable-pip-version-check = true\n" >/etc/pip.conf
      [ -x /venv/bin/python ] || python3 -m venv /venv
      /venv/bin/pip install -q "$PIP" "$CORE"
      mkdir -p /root/.ansible/test/cache
      cp /get-pip.py "/root/.ansible/test/cache/get_pip_$(echo "${PIP#pip==}" | tr . _).py"
      cd /src/ansible_collections/libsys/onprem
      export PATH=/venv/bin:$PATH
      rc=0
      ansible-test sanity --local --requirements --python 3.13 --color no || rc=1
      ansible-test units --local --requirements --python 3.13 --color no || rc=1
      exit $rc' || return 1
  no_skipped_units
}

no_skipped_units() {
  # ansible-test does not pass LIBSYS_REQUIRE_TOOLS on: a unit test skipped for a missing
  # tool would pass silently, so count the skips in its JUnit files.
  local skipped
  skipped=$(cat "${AT_ROOT}"/tests/output/junit/*-units.xml | grep -o 'skipped="[0-9]*"' | grep -vc 'skipped="0"')
  if [[ "$skipped" -ne 0 ]]; then
    grep -h -o '<skipped[^>]*>' "${AT_ROOT}"/tests/output/junit/*-units.xml
    echo "unit tests were skipped under ansible-test (a tool they need is missing)"
    return 1
  fi
}

stage_build() {
  cd "${ROOT}" || return 1
  local out="${BUILD}/dist" installed="${BUILD}/installed"
  rm -rf "${out}" "${installed}"
  mkdir -p "${out}" "${installed}"
  ansible-galaxy collection build --force --output-path "${out}" . || return 1
  local tarball
  tarball=$(ls "${out}"/libsys-onprem-*.tar.gz)
  # Install with only the target on the collections path, so the working-tree link does not
  # count as "already installed", then read the docs from what was installed.
  ANSIBLE_COLLECTIONS_PATH="${installed}" \
    ansible-galaxy collection install --offline --no-deps --force -p "${installed}" "${tarball}" || return 1
  [[ -f "${installed}/ansible_collections/libsys/onprem/MANIFEST.json" ]] || { echo "install left no MANIFEST.json"; return 1; }
  local rc=0 role
  for role in roles/*/; do
    role=$(basename "${role}")
    echo "--- ansible-doc -t role libsys.onprem.${role} (from the installed tarball)"
    ANSIBLE_COLLECTIONS_PATH="${installed}" ansible-doc -t role "libsys.onprem.${role}" >/dev/null \
      || { echo "ansible-doc failed for ${role}"; rc=1; }
  done
  ANSIBLE_COLLECTIONS_PATH="${installed}" ansible-doc -l libsys.onprem || rc=1
  return $rc
}

run_scenario() {
  local s=$1 start=$SECONDS log="${LOG_DIR}/molecule-$1.log"
  # Each scenario has a deadline (a hung step must not hold CI until its own limit); its
  # sequence starts with destroy, so what a killed run leaves is removed by the next.
  if timeout --kill-after=60 "${MOLECULE_SCENARIO_TIMEOUT:-2400}" molecule test -s "${s}" >"${log}" 2>&1 \
    && ! grep -q 'no tests found' "${log}"; then
    echo "--- molecule ${s}: passed in $((SECONDS - start)) s ($(grep -hoE '[0-9]+ passed[^=]*' "${log}" | tail -n1))"
  else
    echo "--- molecule ${s}: FAILED in $((SECONDS - start)) s; why, from .build/test-logs/molecule-${s}.log:"
    failure_excerpt "${log}"
    return 1
  fi
}

failure_excerpt() {
  # The end of a failed scenario's log is the destroy step, which says nothing about the
  # failure: show the failed step, the task errors, the test assertions and pytest's summary.
  local log=$1
  echo "... failed steps:"
  grep -E '^[a-z_0-9]+ > [a-z_]+: Executed: Failed' "${log}" || echo "(none recorded)"
  echo "... first task errors (fatal:/failed:, 3 lines each, at most 10):"
  grep -A2 -m10 -E '(^|[[:space:]])(fatal|failed): \[' "${log}" | cut -c1-400
  echo "... test assertions (at most 60 lines):"
  grep -E '^E +' "${log}" | head -n 60 | cut -c1-400
  echo "... pytest summary:"
  sed -n '/short test summary info/,/ in [0-9.]*s/p' "${log}" | cut -c1-400
}

stage_molecule() {
  # Scenarios use separate networks and container names, so they can run side by side;
  # MOLECULE_JOBS of them at a time (default 2: the containers mostly wait on apt and
  # services, not on the CPU).
  cd "${ROOT}" || return 1
  # The longest scenarios start first, so that the short ones fill the gaps at the end.
  local longest_first="site stunnel mail_relay print_proxy sftp_drop"
  local all s2
  # Scenario directories only: a verify run leaves molecule/__pycache__ behind.
  all=$(cd molecule && ls -d */molecule.yml | cut -d/ -f1 | xargs)
  for s2 in ${all}; do [[ " ${longest_first} " == *" ${s2} "* ]] || longest_first+=" ${s2}"; done
  local scenarios=${MOLECULE_SCENARIOS:-${longest_first}}
  local jobs=${MOLECULE_JOBS:-2} rc=0 s running=0
  # Counts what leaves this machine while the scenarios run; anything fails the stage.
  trap '"${ROOT}/tools/egress-guard.sh" stop' EXIT
  "${ROOT}/tools/egress-guard.sh" start || return 1
  for s in ${scenarios}; do
    [[ -f "molecule/${s}/molecule.yml" ]] || { echo "no scenario molecule/${s}"; rc=1; continue; }
    if ((running >= jobs)); then
      wait -n || rc=1
      ((running--))
    fi
    run_scenario "${s}" &
    ((running++))
  done
  while ((running > 0)); do
    wait -n || rc=1
    ((running--))
  done
  "${ROOT}/tools/egress-guard.sh" check || rc=1
  return $rc
}

main() {
  local stages=("$@")
  [[ ${#stages[@]} -gt 0 ]] || stages=("${ALL_STAGES[@]}")
  mkdir -p "${LOG_DIR}"
  local total_start=$SECONDS stage
  for stage in "${stages[@]}"; do
    declare -F "stage_${stage}" >/dev/null || { echo "unknown stage: ${stage}"; exit 2; }
    log "${stage}"
    local start=$SECONDS
    if ( "stage_${stage}" ); then
      SUMMARY+=("$(printf '%-14s passed  %5d s' "${stage}" $((SECONDS - start)))")
    else
      SUMMARY+=("$(printf '%-14s FAILED  %5d s' "${stage}" $((SECONDS - start)))")
      FAILED=1
    fi
  done
  log "summary"
  printf '%s\n' "${SUMMARY[@]}"
  printf '%-14s %s  %5d s\n' "total" "$([[ $FAILED -eq 0 ]] && echo passed || echo FAILED)" \
    $((SECONDS - total_start))
  return $FAILED
}

main "$@"
