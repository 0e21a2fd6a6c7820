# Sourced by tools/run-tests.sh, tools/lab.sh and tools/run-benchmarks.sh (ROOT set by the
# caller): the working tree is the collection libsys.onprem. Link it where Ansible and
# Python look for it, and put the controller virtualenv first on PATH.
export PATH="${ROOT}/.venv/bin:${PATH}"
export ANSIBLE_COLLECTIONS_PATH="${ROOT}/.build/collections"
export PYTHONPATH="${ANSIBLE_COLLECTIONS_PATH}${PYTHONPATH:+:${PYTHONPATH}}"
mkdir -p "${ANSIBLE_COLLECTIONS_PATH}/ansible_collections/libsys"
ln -sfn "${ROOT}" "${ANSIBLE_COLLECTIONS_PATH}/ansible_collections/libsys/onprem"

# The containers our runs create must not send anything off this machine, DNS included:
# their networks are made with --disable-dns (no podman resolver forwarding upstream), and
# every container gets the options below: a resolver on its own loopback, where nothing
# listens, so every lookup fails at once, and /etc/hosts entries for the Debian mirror so
# packages still install. A JSON list, read by molecule.yml (extra_opts), tools/lab.sh
# and the benchmarks.
# shellcheck source=tools/apt-mirror.sh
source "${ROOT}/tools/apt-mirror.sh"
# Resolved once per run: a script started by another (tools/lab.sh from a benchmark, for one)
# keeps its parent's values and looks nothing up.
if [[ -z "${LIBSYS_PODMAN_RUN_ARGS:-}" || -z "${LIBSYS_MIRROR_ADDRESSES:-}" ]]; then
  __libsys_mirrors=$(mirror_addresses) || return 1
  # A named mirror's first address goes into the containers' /etc/hosts.
  LIBSYS_PODMAN_RUN_ARGS=$(awk 'BEGIN {printf "[\"--dns=127.0.0.1\""}
    $1 != $2 && !seen[$1]++ {printf ", \"--add-host=%s:%s\"", $1, $2} END {print "]"}' <<<"${__libsys_mirrors}")
  # Every address of the mirrors, for tools/check-subnet.py and tools/egress-guard.sh.
  LIBSYS_MIRROR_ADDRESSES=$(awk '{print $2}' <<<"${__libsys_mirrors}" | sort -u | xargs)
  unset __libsys_mirrors
fi
export LIBSYS_PODMAN_RUN_ARGS LIBSYS_MIRROR_ADDRESSES
