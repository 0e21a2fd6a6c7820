#!/bin/bash
# The lab: podman containers for the integration host and the simulated peers, on a private
# podman network that uses a documentation range (203.0.113.128/25), driven by
# inventories/lab. Used by `make lab` and `make lab-down`.
#
#   tools/lab.sh up     create what is missing, converge site.yml, run preflight and the demo
#   tools/lab.sh down   remove the containers and the network
#   tools/lab.sh play PLAYBOOK [ARGS...]
#                       run one playbook against the running lab, with the lab's settings
#                       (benchmarks/site_bench.py re-runs site.yml this way)
set -euo pipefail

readonly ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly NETWORK=libsys-lab
readonly SUBNET=203.0.113.128/25
readonly REPORT_DIR="${ROOT}/lab-report"
# shellcheck source=tools/collection-env.sh
source "${ROOT}/tools/collection-env.sh"
export ANSIBLE_CONFIG="${ROOT}/inventories/lab/ansible.cfg"
export ANSIBLE_ROLES_PATH="${ROOT}/tests/peers/roles"
# The peer roles of tests/peers read these two, as under Molecule: the repository, and the
# directory for the lab's own state (test PKI, keys).
export MOLECULE_PROJECT_DIRECTORY="${ROOT}"
export MOLECULE_EPHEMERAL_DIRECTORY="${ROOT}/.build/lab"

# name image address [admin]: one line per container of the lab. The vendor's ranges in the lab
# are 203.0.113.144/28 (cloud, vendor mail relay), the campus is 203.0.113.160/27 (mail hub,
# kiosk, ASRS); the outsider is in neither. "admin": Ansible reaches it over SSH as the
# administrator, with the lab's key (the others over the podman connection).
readonly CONTAINERS=(
  "lab-onprem localhost/libsys-onprem/debian:12 203.0.113.140 admin"
  "lab-cloud localhost/libsys-onprem/peer:12 203.0.113.150"
  "lab-vendor-relay localhost/libsys-onprem/peer:12 203.0.113.151"
  "lab-mail-hub localhost/libsys-onprem/peer:12 203.0.113.170"
  "lab-kiosk localhost/libsys-onprem/peer:12 203.0.113.171"
  "lab-asrs localhost/libsys-onprem/peer:12 203.0.113.172"
  "lab-outsider localhost/libsys-onprem/peer:12 203.0.113.200"
)

# Names the lab's services use for each other (no DNS server in the lab: /etc/hosts).
readonly HOST_ENTRIES=(
  onprem.library.example.edu:203.0.113.140
  cloud.example.org:203.0.113.150
  relay.vendor.example.org:203.0.113.151
  hub.library.example.edu:203.0.113.170
)

log() { printf '[lab] %s\n' "$*" >&2; }

# The administrator's key pair of this lab (made once per lab; `make lab-down` removes it).
readonly ADMIN_KEY="${MOLECULE_EPHEMERAL_DIRECTORY}/ssh/admin"

make_admin_key() {
  [[ -f "${ADMIN_KEY}" ]] && return 0
  mkdir -p "$(dirname "${ADMIN_KEY}")"
  chmod 0700 "$(dirname "${ADMIN_KEY}")"
  ssh-keygen -q -t ed25519 -N '' -C "libsys-onprem lab admin" -f "${ADMIN_KEY}"
  rm -f "$(dirname "${ADMIN_KEY}")/known_hosts"
}

start_containers() {
  make_admin_key
  if ! podman network exists "${NETWORK}"; then
    python3 "${ROOT}/tools/check-subnet.py" "${SUBNET}" || exit 1
    # No podman network DNS: nothing is forwarded off this machine (collection-env.sh).
    podman network create --disable-dns --subnet "${SUBNET}" "${NETWORK}" >/dev/null
  fi
  local line name image address admin
  for line in "${CONTAINERS[@]}"; do
    read -r name image address admin <<<"${line}"
    if podman container exists "${name}"; then
      [[ "$(podman inspect -f '{{.State.Running}}' "${name}")" == "true" ]] || podman start "${name}" >/dev/null
      continue
    fi
    mkdir -p "/var/cache/libsys-onprem/apt/lab-${name}"
    local add_hosts=() entry offline=()
    for entry in "${HOST_ENTRIES[@]}"; do add_hosts+=(--add-host "${entry}"); done
    mapfile -t offline < <(python3 -c 'import json, os; print(*json.loads(os.environ["LIBSYS_PODMAN_RUN_ARGS"]), sep="\n")')
    local admin_key=()
    [[ -z "${admin}" ]] || admin_key=(-v "${ADMIN_KEY}.pub:/home/admin/.ssh/authorized_keys:ro")
    podman run -d --name "${name}" --hostname "${name}" "${add_hosts[@]}" "${offline[@]}" \
      --network "${NETWORK}" --ip "${address}" \
      --systemd=always --cap-add NET_ADMIN \
      --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 \
      -v "/var/cache/libsys-onprem/apt/lab-${name}:/var/cache/apt/archives" "${admin_key[@]}" \
      --label org.libsys.onprem.lab=1 \
      "${image}" /sbin/init >/dev/null
    log "started ${name} (${address})"
  done
  for line in "${CONTAINERS[@]}"; do
    read -r name _ _ _ <<<"${line}"
    local tries=0
    # "degraded" is fine: a peer image carries services (postfix) that its role configures later.
    until [[ "$(podman exec "${name}" systemctl is-system-running 2>/dev/null)" =~ ^(running|degraded)$ ]]; do
      ((tries++ < 60)) || { log "${name}: systemd did not come up"; return 1; }
      sleep 1
    done
  done
}

run_play() {
  local title=$1; shift
  log "${title}: ansible-playbook $*"
  local start=$SECONDS
  ansible-playbook -i "${ROOT}/inventories/lab" "$@"
  STEPS+=("$(printf '%-34s %4d s' "${title}" $((SECONDS - start)))")
}

up() {
  [[ $EUID -eq 0 ]] || { log "run as root"; exit 2; }
  mkdir -p "${REPORT_DIR}"
  STEPS=()
  start_containers
  run_play "Set up the simulated peers" "${ROOT}/tests/peers/lab.yml"
  run_play "Converge playbooks/site.yml" "${ROOT}/playbooks/site.yml"
  if [[ -f "${ROOT}/tools/lab-demo.py" ]]; then
    log "end-to-end demo"
    "${ROOT}/.venv/bin/python" "${ROOT}/tools/lab-demo.py" --report-dir "${REPORT_DIR}"
  fi
  # What a sysadmin sees on the host (also as JSON in the report directory).
  log "operations: libsys-onprem-status on lab-onprem"
  local rc=0
  podman exec lab-onprem libsys-onprem-status || rc=$?
  podman exec lab-onprem libsys-onprem-status --json > "${REPORT_DIR}/status.json" || true
  STEPS+=("$(printf '%-34s exit %d (0 ok, 1 warning, 2 critical)' "Status command on lab-onprem" "${rc}")")
  printf '\nThe lab ran:\n'
  printf '  %s\n' "${STEPS[@]}"
  printf '\nContainers (podman ps --filter label=org.libsys.onprem.lab=1):\n'
  podman ps --filter label=org.libsys.onprem.lab=1 --format '  {{.Names}}\t{{.Status}}'
  printf '\nReports: %s\n' "${REPORT_DIR}"
  ls -1 "${REPORT_DIR}" 2>/dev/null | sed 's/^/  /'
  printf 'Remove the lab with: make lab-down\n'
}

down() {
  local ids
  ids=$(podman ps -aq --filter label=org.libsys.onprem.lab=1)
  [[ -z "${ids}" ]] || podman rm -f ${ids} >/dev/null
  ! podman network exists "${NETWORK}" || podman network rm "${NETWORK}" >/dev/null
  rm -rf "$(dirname "${ADMIN_KEY}")"
  log "lab removed"
}

play() {
  [[ $# -ge 1 ]] || { log "usage: $0 play PLAYBOOK [ARGS...]"; exit 2; }
  exec ansible-playbook -i "${ROOT}/inventories/lab" "$@"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  play) shift; play "$@" ;;
  *) echo "usage: $0 up|down|play PLAYBOOK [ARGS...]" >&2; exit 2 ;;
esac
