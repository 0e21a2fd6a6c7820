#!/bin/bash
# Molecule "dependency" step of every scenario (see .config/molecule/config.yml): creates the
# scenario's podman network with a fixed subnet (the /27 of documentation range holding its
# first platform address, see CONTRIBUTING.md) and the apt cache directories its platforms
# mount. The podman driver cannot be given a subnet in molecule.yml, and without one the
# platforms' fixed addresses would not fit the network it makes. Idempotent.
set -euo pipefail
file=${1:?usage: $0 SCENARIO_DIR/molecule.yml}
network=$(awk '$1 == "network:" {print $2; exit}' "$file")
address=$(awk '$1 == "ip:" {print $2; exit}' "$file")
if [[ -n "$network" && -n "$address" ]] && ! podman network exists "$network"; then
  IFS=. read -r a b c d <<<"$address"
  subnet="${a}.${b}.${c}.$((d / 32 * 32))/27"
  python3 "$(dirname "${BASH_SOURCE[0]}")/check-subnet.py" "$subnet"
  podman network create --subnet "$subnet" "$network" >/dev/null
  echo "created podman network ${network} (${subnet})"
fi
# Host side of "volumes: [/var/cache/libsys-onprem/apt/NAME:/var/cache/apt/archives]".
grep -oE '/var/cache/libsys-onprem/apt/[A-Za-z0-9._-]+' "$file" | sort -u | xargs -r mkdir -p
