#!/bin/bash
# Proves that a test run sent nothing off this machine. While the scenarios run, nftables
# counters on this host count
#   - DNS queries (port 53) this host sends to anything but loopback and our container
#     networks: podman's network resolver forwarding a container's lookup, for one;
#   - packets the containers send through this host to an address outside our container
#     networks, except the Debian mirror (package installation, not test traffic).
# Counters only: nothing is dropped, and the table is removed by `check` or `stop`. The DNS
# counter sees every process of this host: on a machine that also does other work (a
# workstation), EGRESS_GUARD=warn reports what it counted without failing the run.
#   tools/egress-guard.sh start    load the counters (table inet libsys_egress_guard)
#   tools/egress-guard.sh check    print them and remove the table; exit 1 if anything left
#   tools/egress-guard.sh stop     remove the table
set -euo pipefail
readonly TABLE="inet libsys_egress_guard"
# Loopback, the Molecule scenarios' and benchmarks' networks (198.51.100.0/24) and the lab's.
readonly LOCAL_V4="127.0.0.0/8, 198.51.100.0/24, 203.0.113.128/25"
# The scenarios' IPv6 addresses (tests/peers/roles/peer_ipv6). The bridges are IPv4 networks
# and nothing routes this prefix, but frames between two containers of one bridge pass this
# host's forward hook too (br_netfilter), as the IPv4 ones above do.
readonly LOCAL_V6="2001:db8:64::/48"

start() {
  local mirrors
  mirrors=$(printf '%s\n' ${LIBSYS_MIRROR_ADDRESSES:?source tools/collection-env.sh first} | paste -sd, -)
  nft delete table ${TABLE} 2>/dev/null || true
  nft -f - <<RULES
table ${TABLE} {
  counter dns_sent {}
  counter container_sent {}
  chain output {
    type filter hook output priority 0; policy accept;
    meta l4proto { tcp, udp } th dport 53 ip daddr != { ${LOCAL_V4} } counter name "dns_sent"
    meta l4proto { tcp, udp } th dport 53 ip6 daddr != ::1 counter name "dns_sent"
  }
  chain forward {
    type filter hook forward priority 0; policy accept;
    ip daddr != { ${LOCAL_V4}${mirrors:+, ${mirrors}} } counter name "container_sent"
    # Link-local (router solicitations to ff02::2, for one) never leaves the bridge.
    ip6 daddr != { fe80::/10, ff02::/16, ${LOCAL_V6} } counter name "container_sent"
  }
}
RULES
}

packets() {
  nft list counter ${TABLE} "$1" | awk '$1 == "packets" {print $2}'
}

check() {
  local dns sent
  dns=$(packets dns_sent)
  sent=$(packets container_sent)
  stop
  echo "egress guard: ${dns} DNS packets sent off this machine, ${sent} packets from containers to outside addresses"
  if [[ "${dns}" != 0 || "${sent}" != 0 ]]; then
    if [[ "${EGRESS_GUARD:-fail}" == "warn" ]]; then
      echo "egress guard: WARNING (EGRESS_GUARD=warn), test traffic must stay on this machine"
      return 0
    fi
    echo "egress guard: FAILED, test traffic must stay on this machine (loopback and the run's own containers)"
    return 1
  fi
}

stop() {
  nft delete table ${TABLE} 2>/dev/null || true
}

case "${1:-}" in
  start | check | stop) "$1" ;;
  *) echo "usage: $0 start|check|stop" >&2; exit 2 ;;
esac
