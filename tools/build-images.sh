#!/bin/bash
# Build the container images used by Molecule and the lab, from Debian's archive, with
# debootstrap. No registry is involved. Each image carries a label with the hash of its
# recipe; an image whose label matches is kept, so a second run costs a few seconds.
#
#   tools/build-images.sh            build what is missing or out of date
#   tools/build-images.sh --force    rebuild everything
#
# Images (all local, fully qualified):
#   localhost/libsys-onprem/debian:12, :13   systemd as PID 1, python3, python3-apt, sshd and an
#                                            administrator "admin" with sudo (key mounted per run)
#   localhost/libsys-onprem/peer:12          the simulated peers (tools preinstalled)
set -euo pipefail

readonly HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly IMAGES_DIR="$(cd "${HERE}/../images" && pwd)"
readonly LABEL=org.libsys.onprem.recipe
readonly CACHE_ROOT=/var/cache/libsys-onprem
FORCE=0
[[ "${1:-}" == "--force" ]] && FORCE=1

log() { printf '[images] %s\n' "$*" >&2; }

# shellcheck source=tools/apt-mirror.sh
source "${HERE}/apt-mirror.sh"
if [[ -z "$MIRROR" ]]; then
  log "cannot find this host's Debian mirror in /etc/apt; set ONPREM_DEBIAN_MIRROR"
  exit 2
fi

recipe_hash() {
  # The recipe is this script, the mirror choice and the image directory's files: any
  # change rebuilds.
  cat "${BASH_SOURCE[0]}" "${HERE}/apt-mirror.sh" "$@" | sha256sum | cut -c1-16
}

current_label() {
  podman image inspect --format "{{ index .Labels \"${LABEL}\" }}" "$1" 2>/dev/null || true
}

# The administrator Ansible connects as, the way campus hosts are managed: a non-root account
# with sudo, reached with a key. The key is not in the image: each test run or lab makes its
# own and mounts the public half read-only as /home/admin/.ssh/authorized_keys. Host keys are
# not in the image either (every container would share them): a unit makes them at first boot.
add_admin() {
  local root=$1
  chroot "${root}" useradd --create-home --shell /bin/bash --comment 'Administrator (test image)' admin
  install -d -m 0700 "${root}/home/admin/.ssh"
  chroot "${root}" chown admin:admin /home/admin/.ssh
  printf 'admin ALL=(ALL:ALL) NOPASSWD: ALL\n' >"${root}/etc/sudoers.d/libsys-onprem-test-admin"
  chmod 0440 "${root}/etc/sudoers.d/libsys-onprem-test-admin"
  rm -f "${root}"/etc/ssh/ssh_host_*
  cat >"${root}/etc/systemd/system/libsys-onprem-test-hostkeys.service" <<'UNIT'
[Unit]
Description=Generate this container's SSH host keys (test image)
Before=ssh.service ssh.socket
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=ssh.service ssh.socket
UNIT
  mkdir -p "${root}/etc/systemd/system/ssh.service.wants" "${root}/etc/systemd/system/ssh.socket.wants"
  ln -sf ../libsys-onprem-test-hostkeys.service "${root}/etc/systemd/system/ssh.service.wants/"
  ln -sf ../libsys-onprem-test-hostkeys.service "${root}/etc/systemd/system/ssh.socket.wants/"
}

build_base() {
  local suite=$1 version=$2
  local image="localhost/libsys-onprem/debian:${version}"
  local want
  want=$(recipe_hash "${IMAGES_DIR}/base-packages.txt")-${suite}
  if [[ $FORCE -eq 0 && "$(current_label "$image")" == "$want" ]]; then
    log "${image} is up to date"
    return 0
  fi
  log "building ${image} from ${suite} (debootstrap, about a minute)"
  local root
  root=$(mktemp -d "/var/tmp/onprem-${suite}.XXXXXX")
  trap 'rm -rf "${root}"' RETURN
  chmod 0755 "${root}"
  local include
  include=$(grep -v '^#' "${IMAGES_DIR}/base-packages.txt" | xargs | tr ' ' ',')
  debootstrap --variant=minbase --include="${include}" "${suite}" "${root}" "${MIRROR}" \
    >"${root}.log" 2>&1 || { tail -n 30 "${root}.log" >&2; rm -f "${root}.log"; return 1; }
  rm -f "${root}.log"
  {
    echo "deb ${MIRROR} ${suite} main"
    echo "deb ${MIRROR} ${suite}-updates main"
    [[ -n "$SECURITY_MIRROR" ]] && echo "deb ${SECURITY_MIRROR} ${suite}-security main"
  } >"${root}/etc/apt/sources.list"
  # Containers do not need these units; they only slow boot or fail without hardware.
  for unit in systemd-resolved.service systemd-timesyncd.service getty@tty1.service \
              systemd-networkd.service console-getty.service; do
    ln -sf /dev/null "${root}/etc/systemd/system/${unit}"
  done
  # On a host with the cgroup v1 hierarchy (this one), systemd inside a container is not told
  # when a cgroup becomes empty: stopping a user's manager (user@UID.service, which logind
  # does 10 s after the user's last SSH session) can hang in final-sigkill for minutes, and
  # that user's next login waits for it. Once started, user managers stay up.
  mkdir -p "${root}/etc/systemd/logind.conf.d"
  printf '[Login]\nUserStopDelaySec=infinity\n' >"${root}/etc/systemd/logind.conf.d/libsys-onprem-test.conf"
  printf 'libsys-onprem-test\n' >"${root}/etc/hostname"
  add_admin "${root}"
  chroot "${root}" apt-get update -qq >/dev/null
  chroot "${root}" apt-get clean
  tar -C "${root}" -c . | podman import --quiet \
    --change 'CMD ["/sbin/init"]' \
    --change "LABEL ${LABEL}=${want}" \
    --change 'ENV container=podman' \
    --change 'STOPSIGNAL SIGRTMIN+3' \
    - "${image}" >/dev/null
  log "built ${image}"
}

build_peer() {
  local version=$1
  local image="localhost/libsys-onprem/peer:${version}"
  local want
  want=$(recipe_hash "${IMAGES_DIR}/Containerfile.peer" "${IMAGES_DIR}/base-packages.txt")
  if [[ $FORCE -eq 0 && "$(current_label "$image")" == "$want" ]]; then
    log "${image} is up to date"
    return 0
  fi
  log "building ${image}"
  podman build --quiet --pull=never --build-arg "BASE=localhost/libsys-onprem/debian:${version}" \
    --label "${LABEL}=${want}" -t "${image}" -f "${IMAGES_DIR}/Containerfile.peer" \
    "${IMAGES_DIR}" >/dev/null
  log "built ${image}"
}

main() {
  [[ $EUID -eq 0 ]] || { log "run as root (debootstrap and podman import need it)"; exit 2; }
  mkdir -p "${CACHE_ROOT}/apt/12" "${CACHE_ROOT}/apt/13"
  local pids=()
  build_base bookworm 12 & pids+=($!)
  build_base trixie 13 & pids+=($!)
  local failed=0
  for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
  [[ $failed -eq 0 ]] || { log "a base image failed to build"; exit 1; }
  build_peer 12
}

main "$@"
