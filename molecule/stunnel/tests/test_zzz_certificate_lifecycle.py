"""The institution's certificate over its life, with the real role on the real hosts (runs after
the bad-input tests; each step re-runs the role with ansible-playbook, as an operator would):

- a key generated on the host and a CSR for the vendor (Debian 13 host, starting from a host
  without key): the CSR verifies, carries the configured subject and SANs, the key is private,
  a re-run changes nothing, and the certificate the CA returns for it makes working tunnels;
- a certificate close to expiry warns (the run succeeds, naming the certificate and the
  tunnels), and the threshold is the configured one (Debian 12 host); an expired one fails
  before any change (test_zz_bad_input.py, expired-cert, with the host's fingerprint);
- a renewed certificate (new key, same CA) is picked up by the running tunnels with no manual
  step: the 5001 server tunnel presents the new serial, and no tunnel was restarted.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

import pytest
from conftest import hosts_in, podman_host
from role_runs import PKI, recap, run_role

DEB12, DEB13 = "onprem-stunnel-deb12", "onprem-stunnel-deb13"
ADDRESSES = {DEB12: "198.51.100.74", DEB13: "198.51.100.75"}
TLS_DIR = "/etc/stunnel/libsys/tls"
TUNNELS = ["sip2", "sip2-foreign-ca", "sip2-wrong-name", "asrs-in"]
KIOSK = "/usr/local/lib/libsys-peer/sip2_kiosk.py"
PEER_TLS = "/etc/libsys-peer/tls"
# Run on the cloud peer (inside the vendor range the 5001 tunnel accepts): complete a handshake
# with the cloud's client certificate and print the serial of the certificate the tunnel presents.
PRESENTED_SERIAL = (
    "import socket, ssl, sys\n"
    "ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)\n"
    f"ctx.load_verify_locations('{PEER_TLS}/vendor-ca.crt')\n"
    f"ctx.load_cert_chain('{PEER_TLS}/cloud-client.crt', '{PEER_TLS}/cloud-client.key')\n"
    "ctx.check_hostname = False\n"
    "with socket.create_connection((sys.argv[1], 5001), timeout=5) as raw:\n"
    "    with ctx.wrap_socket(raw) as tls:\n"
    "        print(tls.getpeercert()['serialNumber'])\n"
)


def output_of(result: subprocess.CompletedProcess) -> str:
    return result.stdout + result.stderr


def serial_of(path: str) -> int:
    out = subprocess.run(
        ["openssl", "x509", "-noout", "-serial", "-in", path], capture_output=True, text=True, check=True
    )
    return int(out.stdout.strip().split("=", 1)[1], 16)


def presented_serial(host: str) -> int:
    cloud = podman_host(hosts_in("cloud")[0])
    return int(cloud.check_output(f'python3 -c "{PRESENTED_SERIAL}" {ADDRESSES[host]}'), 16)


def tunnel_processes(host: str) -> dict[str, tuple[str, str]]:
    """MainPID and ActiveEnterTimestamp of each tunnel: both stay the same over a reload and
    change on a restart."""
    out = {}
    for tunnel in TUNNELS:
        props = podman_host(host).service(f"stunnel-libsys@{tunnel}.service").systemd_properties
        out[tunnel] = (props["MainPID"], props["ActiveEnterTimestamp"])
    return out


def kiosk_sip2_ok(host: str) -> bool:
    out = podman_host(hosts_in("kiosk")[0]).check_output(f"python3 {KIOSK} {ADDRESSES[host]} 6001 exchange")
    steps = {s["step"]: s for s in map(json.loads, out.splitlines())}
    return steps.get("93/94", {}).get("parsed", {}).get("ok") is True


# --- Key and CSR generated on the host -------------------------------------------------------


@pytest.fixture(scope="module")
def csr_dir():
    with tempfile.TemporaryDirectory(prefix="stunnel-csr-") as directory:
        yield Path(directory)


def generate_vars(csr_dir: Path, **more) -> dict:
    """No certificate and no key given: generate the key on the host and write the CSR."""
    return {
        "stunnel_generate_key": True,
        "stunnel_key_src": "",
        "stunnel_cert_src": "",
        "stunnel_tunnels": [],
        "stunnel_csr_subject_alt_names": ["DNS:sip.library.example.edu"],
        "stunnel_csr_fetch_dir": str(csr_dir),
        **more,
    }


def key_state(host) -> str:
    return host.check_output(f"stat -c '%a %U %G %Y' {TLS_DIR}/institution.key; sha256sum {TLS_DIR}/institution.key")


@pytest.fixture(scope="module")
def generated(csr_dir: Path) -> dict:
    host = podman_host(DEB13)
    # A host that never had a key: the tunnels of the earlier tests go (stunnel_tunnels: [] below
    # stops and removes them) and so do their TLS files.
    host.check_output(f"rm -f {TLS_DIR}/institution.key {TLS_DIR}/institution.csr {TLS_DIR}/institution.crt")
    result = run_role(DEB13, generate_vars(csr_dir))
    assert result.returncode == 0, output_of(result)[-4000:]
    return {"result": result, "csr": csr_dir / f"{DEB13}-stunnel.csr", "key_state": key_state(host)}


def openssl(*args: str) -> str:
    return subprocess.run(["openssl", *args], capture_output=True, text=True, check=True).stdout


def test_generated_csr_verifies_with_the_configured_subject_and_sans(generated: dict) -> None:
    csr = str(generated["csr"])
    assert generated["csr"].is_file(), "the CSR was not fetched to stunnel_csr_fetch_dir"
    # The copy on the host is the one fetched.
    on_host = podman_host(DEB13).check_output(f"sha256sum {TLS_DIR}/institution.csr").split()[0]
    assert openssl("dgst", "-sha256", "-r", csr).split()[0] == on_host
    verify = subprocess.run(
        ["openssl", "req", "-in", csr, "-noout", "-verify"], capture_output=True, text=True, check=False
    )
    assert verify.returncode == 0 and "verify OK" in verify.stdout + verify.stderr, verify.stdout + verify.stderr
    assert openssl("req", "-in", csr, "-noout", "-subject", "-nameopt", "RFC2253").strip() == (
        "subject=CN=library.example.edu"
    )
    text = openssl("req", "-in", csr, "-noout", "-text")
    assert "DNS:library.example.edu, DNS:sip.library.example.edu" in text, text
    assert "TLS Web Client Authentication" in text and "TLS Web Server Authentication" in text, text
    # The default key type (stunnel_generate_key_type: ecdsa-p256).
    assert "id-ecPublicKey" in text and "prime256v1" in text, text


def test_generated_key_is_private_and_belongs_to_the_csr(generated: dict) -> None:
    host = podman_host(DEB13)
    key = host.file(f"{TLS_DIR}/institution.key")
    # Readable by the tunnels' group (stunnel4), by nobody else; the directory is closed too.
    assert (key.user, key.group, key.mode) == ("root", "stunnel4", 0o640)
    tls_dir = host.file(TLS_DIR)
    assert (tls_dir.user, tls_dir.group, tls_dir.mode) == ("root", "stunnel4", 0o750)
    # The public key in the CSR is the one of the key on the host.
    pub_on_host = host.check_output(
        f'python3 -c "from cryptography.hazmat.primitives import serialization as s; '
        f"k = s.load_pem_private_key(open('{TLS_DIR}/institution.key', 'rb').read(), None); "
        f'print(k.public_key().public_bytes(s.Encoding.PEM, s.PublicFormat.SubjectPublicKeyInfo).decode())"'
    )
    assert openssl("req", "-in", str(generated["csr"]), "-noout", "-pubkey").strip() == pub_on_host.strip()
    # The private key is never printed by the run.
    assert "PRIVATE KEY" not in output_of(generated["result"])


def test_rerun_does_not_regenerate_the_key_or_the_csr(generated: dict, csr_dir: Path) -> None:
    host = podman_host(DEB13)
    csr_before = host.check_output(f"sha256sum {TLS_DIR}/institution.csr")
    result = run_role(DEB13, generate_vars(csr_dir))
    assert result.returncode == 0, output_of(result)[-4000:]
    assert recap(result, DEB13)["changed"] == 0, output_of(result)[-4000:]
    assert key_state(host) == generated["key_state"]
    assert host.check_output(f"sha256sum {TLS_DIR}/institution.csr") == csr_before


def test_certificate_issued_for_the_csr_makes_working_tunnels(generated: dict, csr_dir: Path) -> None:
    # The vendor's side: the test CA signs the CSR as it came (subject, SANs, key usages).
    cert = csr_dir / "issued.crt"
    openssl(
        "x509", "-req", "-in", str(generated["csr"]), "-CA", f"{PKI}/vendor-ca.crt", "-CAkey", f"{PKI}/vendor-ca.key",
        "-set_serial", "0x5eed0c5e", "-days", "365", "-copy_extensions", "copyall", "-out", str(cert),
    )  # fmt: skip
    result = run_role(DEB13, {"stunnel_generate_key": True, "stunnel_key_src": "", "stunnel_cert_src": str(cert)})
    assert result.returncode == 0, output_of(result)[-4000:]
    host = podman_host(DEB13)
    assert key_state(host) == generated["key_state"], "the key generated on the host must stay"
    for tunnel in TUNNELS:
        assert host.service(f"stunnel-libsys@{tunnel}.service").is_running, tunnel
    assert kiosk_sip2_ok(DEB13)
    assert presented_serial(DEB13) == 0x5EED0C5E


# --- Expiry warning and renewal --------------------------------------------------------------


def with_cert(name: str, **more) -> dict:
    return {"stunnel_cert_src": f"{PKI}/{name}.crt", "stunnel_key_src": f"{PKI}/{name}.key", **more}


def test_certificate_close_to_expiry_warns_and_deploys() -> None:
    result = run_role(DEB12, with_cert("institution-soon"))
    output = output_of(result)
    assert result.returncode == 0, output[-4000:]
    assert recap(result, DEB12)["failed"] == 0
    serial = serial_of(f"{PKI}/institution-soon.crt")
    expected = (
        f"WARNING: stunnel_cert: the certificate library.example.edu (serial {serial}, used by tunnels "
        "sip2, sip2-foreign-ca, sip2-wrong-name, asrs-in) expires on "
    )
    assert expected in output, output[-4000:]
    assert "within stunnel_cert_warn_days=30 days" in output
    # A warning only: the certificate was deployed and the tunnels serve it.
    assert presented_serial(DEB12) == serial


def test_expiry_warning_threshold_is_configurable() -> None:
    # The same certificate (10 days left) with a 5-day threshold: no warning, nothing to change.
    result = run_role(DEB12, with_cert("institution-soon", stunnel_cert_warn_days=5))
    output = output_of(result)
    assert result.returncode == 0, output[-4000:]
    assert "WARNING: stunnel_cert" not in output
    assert recap(result, DEB12)["changed"] == 0, output[-4000:]


def test_renewed_certificate_is_served_without_a_restart() -> None:
    processes = tunnel_processes(DEB12)
    old = presented_serial(DEB12)
    renewed = serial_of(f"{PKI}/institution-renewed.crt")
    assert old != renewed
    result = run_role(DEB12, with_cert("institution-renewed"))
    output = output_of(result)
    assert result.returncode == 0, output[-4000:]
    assert "Reload every tunnel to pick up the new TLS files" in output
    # The running 5001 tunnel presents the renewed certificate: no manual step.
    assert presented_serial(DEB12) == renewed
    # Reloaded in place (SIGHUP), not restarted: same processes, same activation time.
    assert tunnel_processes(DEB12) == processes
    # The client tunnel still gets through to the cloud with the renewed key.
    assert kiosk_sip2_ok(DEB12)
