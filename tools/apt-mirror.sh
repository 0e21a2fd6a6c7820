# Sourced by tools/build-images.sh and tools/collection-env.sh: the Debian mirrors the
# container images are built from and install packages from. By default the mirrors this
# host already uses (so the images come from the same archive); ONPREM_DEBIAN_MIRROR and
# ONPREM_DEBIAN_SECURITY_MIRROR override them.

host_mirror() {
  local wanted=$1 uri
  uri=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null \
        | awk '{print $2}' | grep -E "/${wanted}/?\$" | head -n1 || true)
  if [[ -z "$uri" ]]; then
    uri=$(grep -hs '^deb ' /etc/apt/sources.list 2>/dev/null \
          | awk '{print $2}' | grep -E "/${wanted}/?\$" | head -n1 || true)
  fi
  printf '%s' "${uri%/}"
}

MIRROR=${ONPREM_DEBIAN_MIRROR:-$(host_mirror debian)}
SECURITY_MIRROR=${ONPREM_DEBIAN_SECURITY_MIRROR:-$(host_mirror debian-security)}

# The host part of each mirror's URL (a name or an address literal), one per line.
mirror_hosts() {
  local url host
  for url in "${MIRROR}" "${SECURITY_MIRROR}"; do
    host=${url#*://}
    host=${host%%/*}
    host=${host%%:*}
    [[ -z "$host" ]] || printf '%s\n' "$host"
  done | sort -u
}

# The IPv4 addresses of the mirrors, one per line.
mirror_addresses() {
  local host
  for host in $(mirror_hosts); do
    if [[ "$host" =~ ^[0-9.]+$ ]]; then
      printf '%s\n' "$host"
    else
      getent ahostsv4 "$host" | awk '{print $1}'
    fi
  done | sort -u
}

# "name:address" for each mirror given by name (an address literal needs no entry),
# resolved here once: the containers get these entries instead of a working resolver.
mirror_host_entries() {
  local name address
  for name in $(mirror_hosts); do
    [[ ! "$name" =~ ^[0-9.]+$ ]] || continue
    address=$(getent ahostsv4 "$name" | awk 'NR == 1 {print $1}')
    if [[ -z "$address" ]]; then
      printf 'cannot resolve the Debian mirror %s: containers could not install packages\n' "$name" >&2
      return 1
    fi
    printf '%s:%s\n' "$name" "$address"
  done
}
