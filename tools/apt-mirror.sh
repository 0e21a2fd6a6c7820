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

# "host address" for every IPv4 address of each mirror (an address literal stands for itself).
# The one place the mirrors' names are resolved; fails naming a mirror that does not resolve.
mirror_addresses() {
  local host found
  for host in $(mirror_hosts); do
    if [[ "$host" =~ ^[0-9.]+$ ]]; then
      printf '%s %s\n' "$host" "$host"
      continue
    fi
    found=$(getent ahostsv4 "$host" | awk -v host="$host" '!seen[$1]++ {print host, $1}')
    if [[ -z "$found" ]]; then
      printf 'cannot resolve the Debian mirror %s: containers could not install packages\n' "$host" >&2
      return 1
    fi
    printf '%s\n' "$found"
  done
}
