"""Podman options that keep the benchmarks' containers from sending anything off this machine.

The networks are made without podman's DNS, which would forward to this host's upstream
resolver what it cannot answer. The containers get the options tools/collection-env.sh puts in
LIBSYS_PODMAN_RUN_ARGS (tools/run-benchmarks.sh sources it): a resolver on their own loopback,
so every lookup fails at once, and the Debian mirror in /etc/hosts so packages still install.
"""

import json
import os

NETWORK_OPTIONS = ["--disable-dns"]


def container_options() -> list[str]:
    return json.loads(os.environ.get("LIBSYS_PODMAN_RUN_ARGS", '["--dns=127.0.0.1"]'))
