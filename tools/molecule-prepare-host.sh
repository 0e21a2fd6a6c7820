#!/bin/bash
# Molecule "dependency" step of every scenario (see .config/molecule/config.yml): creates the
# scenario's podman network with a fixed subnet (the /27 of documentation range holding its
# first platform address, or the /28 when that holds them all; see CONTRIBUTING.md) and the apt cache directories its platforms
# mount. The podman driver cannot be given a subnet in molecule.yml, and without one the
# platforms' fixed addresses would not fit the network it makes. It also makes the run's
# administrator key for SSH. Idempotent.
set -euo pipefail
file=${1:?usage: $0 SCENARIO_DIR/molecule.yml EPHEMERAL_DIR}
ephemeral=${2:?usage: $0 SCENARIO_DIR/molecule.yml EPHEMERAL_DIR}
network=$(awk '$1 == "network:" {print $2; exit}' "$file")
address=$(awk '$1 == "ip:" {print $2; exit}' "$file")
addresses=$(awk '$1 == "ip:" {print $2}' "$file")
# Without podman's network DNS (--disable-dns): it would forward what it cannot answer (the
# SMTP servers' reverse lookups of their clients, for one) to this host's upstream resolver.
# The containers get a resolver that fails at once instead (extra_opts in molecule.yml).
if [[ -n "$network" ]] && podman network exists "$network" \
    && [[ "$(podman network inspect -f '{{.DNSEnabled}}' "$network")" == "true" ]]; then
  podman network rm "$network" >/dev/null
  echo "removed podman network ${network}: made with DNS by an older version"
fi
if [[ -n "$network" && -n "$address" ]] && ! podman network exists "$network"; then
  IFS=. read -r a b c d <<<"$address"
  # The /28 holding the first address when every address is in it (the postfix scenario
  # shares a /27 with the benchmarks), else the /27.
  subnet="${a}.${b}.${c}.$((d / 16 * 16))/28"
  for other in $addresses; do
    [[ "${other%.*}" == "${a}.${b}.${c}" && $((${other##*.} / 16)) -eq $((d / 16)) ]] \
      || subnet="${a}.${b}.${c}.$((d / 32 * 32))/27"
  done
  python3 "$(dirname "${BASH_SOURCE[0]}")/check-subnet.py" "$subnet"
  podman network create --disable-dns --subnet "$subnet" "$network" >/dev/null
  echo "created podman network ${network} (${subnet}, no DNS)"
fi
# The administrator's key of this run: Ansible reaches the hosts under test with it over SSH, and
# their containers mount its public half as /home/admin/.ssh/authorized_keys. Made when the run's
# ephemeral directory has none (Molecule empties that directory when a test run ends).
key="${ephemeral}/ssh/admin"
if [[ ! -f "$key" ]]; then
  mkdir -p -m 0700 "$(dirname "$key")" "$(dirname "$key")/cp"
  rm -f "$(dirname "$key")/known_hosts"
  ssh-keygen -q -t ed25519 -N '' -C "libsys-onprem molecule admin" -f "$key"
  echo "made this run's administrator key ${key}"
fi
# Host side of "volumes: [/var/cache/libsys-onprem/apt/NAME:/var/cache/apt/archives]".
grep -oE '/var/cache/libsys-onprem/apt/[A-Za-z0-9._-]+' "$file" | sort -u | xargs -r mkdir -p
