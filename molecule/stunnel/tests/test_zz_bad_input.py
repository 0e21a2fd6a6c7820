"""Bad input fails before any change, and a configuration that stunnel refuses (dry run) or
that does not start never replaces a working tunnel. Runs last (it re-runs the role)."""

from __future__ import annotations

import json

from conftest import bad_input_tests, hosts_in, podman_host
from role_runs import CONVERGE, FINGERPRINT, PKI, fingerprint
from role_runs import run_role as run_role_on

HOST = "onprem-stunnel-deb12"
GOOD_TUNNELS = [
    {"name": "sip2", "mode": "client", "accept_port": 6001, "connect_host": "cloud.example.org"},
    {
        "name": "sip2-foreign-ca",
        "mode": "client",
        "accept_port": 6002,
        "connect_host": "cloud.example.org",
        "connect_port": 6444,
    },
    {
        "name": "sip2-wrong-name",
        "mode": "client",
        "accept_port": 6003,
        "connect_host": "cloud.example.org",
        "connect_port": 6445,
    },
    {
        "name": "asrs-in",
        "mode": "server",
        "accept_port": 5001,
        "connect_host": "198.51.100.78",
        "connect_port": 4000,
        "check_host": "cloud-client.example.org",
        "allowed_sources": ["198.51.100.80/29", "198.51.100.65/32"],
    },
]


def tunnels(index: int = 0, **change) -> list[dict]:
    """GOOD_TUNNELS with entry INDEX changed."""
    return [dict(t, **change) if i == index else t for i, t in enumerate(GOOD_TUNNELS)]


def run_role(extra: dict):
    return run_role_on(HOST, extra)


BAD_INPUT = {
    # Not the first entry, so the message must name the right one.
    "unknown-mode": (
        {"stunnel_tunnels": tunnels(1, mode="bridge")},
        ["stunnel_tunnels[1] (name: sip2-foreign-ca): mode 'bridge' is not one of client, server"],
    ),
    "server-without-check-host": (
        {"stunnel_tunnels": tunnels(3, check_host="")},
        ["stunnel_tunnels[3] (name: asrs-in): a server tunnel needs check_host, the name on the cloud's client"],
    ),
    "port-out-of-range": (
        {"stunnel_tunnels": tunnels(accept_port=70000)},
        ["stunnel_tunnels[0] (name: sip2)", "70000 is outside 1-65535"],
    ),
    "invalid-cidr": (
        {"stunnel_tunnels": tunnels(allowed_sources=["198.51.100.300/30"])},
        ["stunnel_tunnels[0].allowed_sources[0]", "198.51.100.300/30"],
    ),
    "cidr-host-bits": (
        {"stunnel_tunnels": tunnels(allowed_sources=["198.51.100.89/30"])},
        ["198.51.100.89/30", "host bits"],
    ),
    "every-address-without-opt-in": (
        {"stunnel_tunnels": tunnels(3, allowed_sources=["198.51.100.80/29", "0.0.0.0/0"])},
        ["stunnel_tunnels[3].allowed_sources[1]: '0.0.0.0/0' lets in every address", "onprem_allow_any_source: true"],
    ),
    "duplicate-name": (
        {"stunnel_tunnels": [*GOOD_TUNNELS, dict(GOOD_TUNNELS[0], accept_port=6009)]},
        ["duplicate", "name sip2"],
    ),
    "duplicate-port": (
        {"stunnel_tunnels": [*GOOD_TUNNELS, dict(GOOD_TUNNELS[0], name="sip2-copy")]},
        ["duplicate", "accept_port 6001", "sip2-copy"],
    ),
    "missing-cert": (
        {"stunnel_cert_src": "/nonexistent/institution.crt"},
        ["stunnel_cert_src", "/nonexistent/institution.crt"],
    ),
    "mismatched-key": ({"stunnel_key_src": f"{PKI}/cloud.key"}, ["stunnel_key does not match stunnel_cert"]),
    "expired-cert": (
        {"stunnel_cert_src": f"{PKI}/institution-expired.crt", "stunnel_key_src": f"{PKI}/institution-expired.key"},
        ["expired on", "used by tunnels sip2, sip2-foreign-ca, sip2-wrong-name, asrs-in"],
    ),
    "foreign-chain": (
        {"stunnel_cert_src": f"{PKI}/institution-foreign.crt", "stunnel_key_src": f"{PKI}/institution-foreign.key"},
        ["does not", "verify against stunnel_ca"],
    ),
}


bad_input, test_bad_input_fails_before_any_change, test_bad_input_changes_nothing = bad_input_tests(
    CONVERGE, HOST, BAD_INPUT, FINGERPRINT
)


def kiosk_login_ok() -> bool:
    kiosk = podman_host(hosts_in("kiosk")[0])
    out = kiosk.check_output("python3 /usr/local/lib/libsys-peer/sip2_kiosk.py 198.51.100.74 6001 exchange")
    return any(json.loads(line).get("step") == "93/94" for line in out.splitlines())


def test_config_refused_by_the_dry_run_never_replaces_the_tunnel() -> None:
    before = fingerprint(HOST)
    result = run_role({"stunnel_ciphers": "NOT-A-CIPHER"})
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "stunnel refused the configuration" in output, output[-3000:]
    assert fingerprint(HOST) == before
    assert kiosk_login_ok()


def test_config_that_does_not_start_is_rolled_back() -> None:
    host = podman_host(HOST)
    conf_before = host.check_output("sha256sum /etc/stunnel/libsys/sip2.conf")
    # Passes the dry run (which listens on 127.0.0.1:0) but cannot bind on the host.
    result = run_role({"stunnel_tunnels": tunnels(accept_address="198.51.100.99")})
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "the previous configuration was restored" in output, output[-3000:]
    assert host.check_output("sha256sum /etc/stunnel/libsys/sip2.conf") == conf_before
    assert host.service("stunnel-libsys@sip2.service").is_running
    assert host.run("ls /etc/stunnel/libsys/ | grep -c '~$'").stdout.strip() in ("", "0")
    assert kiosk_login_ok()
