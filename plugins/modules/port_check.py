#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) libsys.onprem maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: port_check
short_description: Prove that network paths work, protocol by protocol, from the managed host
version_added: 0.1.0
description:
  - Probes a list of endpoints in parallel from the managed host and reports, for each one, a status
    such as V(ok), V(refused), V(timeout), V(dns_error), V(tls_error), V(cert_expiring), V(protocol_error),
    V(not_listening), V(mismatch) or V(error), with the latency and protocol details.
  - Probes go beyond a TCP connect where it matters. V(tls) and V(ldaps) complete a verified TLS handshake and
    report the certificate's expiry. V(ssh) reads the SSH banner. V(smtp) checks the greeting and EHLO and can
    upgrade with STARTTLS. V(sip2) exchanges SIP2 login and SC/ACS status messages with checksums. V(listen)
    checks that a local socket listens, without connecting. V(spf) compares the networks of an SPF record with
    an allowlist.
  - All entries are validated before any probe runs; the module fails with a message naming every bad entry.
  - The module fails when at least one endpoint with O(endpoints[].required=true) does not have status V(ok).
    The failure message lists all failed endpoints and the results are returned all the same.
  - Network errors never raise; each one becomes a status.
author:
  - libsys.onprem maintainers (@libsys)
extends_documentation_fragment:
  - libsys.onprem.attributes
  - libsys.onprem.attributes.platform
attributes:
  check_mode:
    support: full
    details:
      - The module only reads; probes also run in check mode.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
    details:
      - The V(listen) probe reads C(/proc/net/tcp) and C(/proc/net/tcp6) and therefore needs Linux.
options:
  endpoints:
    description:
      - The endpoints to probe.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description:
          - Unique name of the endpoint, used in results and failure messages.
        type: str
        required: true
      host:
        description:
          - Host name or IP address to connect to.
          - Required for every probe but V(listen) and V(spf).
          - For V(spf), the DNS server to ask; the managed host's own resolver (the first
            C(nameserver) of C(/etc/resolv.conf)) when not set.
          - For V(listen), used as the address to look for when O(endpoints[].listen_address) is not set.
        type: str
      port:
        description:
          - TCP port, 1 to 65535. For V(spf), the DNS port (usually 53; UDP, and TCP for long answers).
        type: int
        required: true
      probe:
        description:
          - What to check.
          - V(tcp) connects.
          - V(tls) connects and completes a TLS handshake, verifying the certificate chain.
          - V(ssh) reads the C(SSH-2.0-...) identification string.
          - V(smtp) expects a 220 greeting and a 250 answer to EHLO, and optionally upgrades with STARTTLS.
          - V(ldaps) is a TLS handshake on the LDAPS port; it does not bind.
          - V(sip2) sends an optional 93 login and a 99 SC status and expects a 98 ACS status with a valid
            checksum; it uses TLS when O(endpoints[].tls_server_name), O(endpoints[].ca_path) or
            O(endpoints[].client_cert_path) is set.
          - V(listen) checks that a local TCP socket listens on O(endpoints[].port), without connecting.
          - V(spf) reads the SPF record of O(endpoints[].spf_domain) (TXT queries only; C(ip4), C(ip6), C(include)
            and C(redirect) followed, at most ten lookups) and compares its networks with O(endpoints[].spf_allowed)
            both ways. A difference gives status V(mismatch), naming the networks; nothing is changed.
        type: str
        choices: [tcp, tls, ssh, smtp, ldaps, sip2, listen, spf]
        default: tcp
      required:
        description:
          - Whether a failure of this endpoint makes the module fail.
        type: bool
        default: true
      timeout:
        description:
          - Seconds allowed for this endpoint's whole probe (connect, handshake and protocol exchange).
        type: float
        default: 5
      tls_server_name:
        description:
          - Name sent as SNI and matched against the certificate. Defaults to O(endpoints[].host).
        type: str
      ca_path:
        description:
          - CA bundle file or directory of hashed CA certificates to verify the server with.
          - Defaults to the system's trust store.
        type: path
      client_cert_path:
        description:
          - PEM client certificate (chain) to present, for servers that require one.
        type: path
      client_key_path:
        description:
          - PEM private key of O(endpoints[].client_cert_path), if not in the same file.
        type: path
      client_key_passphrase:
        description:
          - Passphrase of an encrypted client key (vault it; it is never logged).
          - An encrypted key without it fails the endpoint's check before any probe runs, with a
            message naming the key; the module never asks for a passphrase on a terminal.
        type: str
      check_hostname:
        description:
          - Whether the certificate must match O(endpoints[].tls_server_name) or O(endpoints[].host).
          - The certificate chain is always verified.
        type: bool
        default: true
      min_tls_version:
        description:
          - Lowest TLS version accepted.
        type: str
        choices: [TLSv1.2, TLSv1.3]
        default: TLSv1.2
      expiry_warn_days:
        description:
          - A valid server certificate that expires in fewer days than this gives status V(cert_expiring).
        type: int
        default: 14
      starttls:
        description:
          - For V(smtp), upgrade the session with STARTTLS and check TLS as V(tls) does.
        type: bool
        default: false
      ehlo_name:
        description:
          - Name sent with EHLO by V(smtp). Defaults to the managed host's host name.
        type: str
      sip2_login_user:
        description:
          - For V(sip2), send a 93 login with this user id before the status request.
        type: str
      sip2_login_password:
        description:
          - Password for O(endpoints[].sip2_login_user).
        type: str
      sip2_location:
        description:
          - Location code sent with the 93 login.
        type: str
      sip2_institution:
        description:
          - Institution id the 98 ACS status must report; any when not set.
        type: str
      listen_address:
        description:
          - For V(listen), the local address that must listen. A wildcard listener (C(0.0.0.0) or C(::)) counts.
          - Any address when neither this nor O(endpoints[].host) is set.
        type: str
      spf_domain:
        description:
          - For V(spf), the domain whose SPF record lists the senders, for example a vendor's SPF include.
        type: str
      spf_allowed:
        description:
          - For V(spf), the networks allowed in, in CIDR notation; a network the record lets send must lie
            inside one of them, and each of them must hold a network of the record.
        type: list
        elements: str
  workers:
    description:
      - Number of endpoints probed at the same time.
    type: int
    default: 32
  deadline:
    description:
      - Overall time limit in seconds. Endpoints not finished by then get status V(timeout).
    type: float
    default: 30
notes:
  - Probes run from the managed host. To check paths from the controller, use C(delegate_to=localhost).
  - With TLS 1.3 a server rejects a client certificate only after the handshake, so TLS probes wait up to
    0.2 seconds after a TLS 1.3 handshake for such a rejection.
seealso:
  - module: ansible.builtin.wait_for
    description: Waits for one port or file at a time.
"""

EXAMPLES = r"""
- name: Prove the paths to the vendor's services and the local relays
  libsys.onprem.port_check:
    endpoints:
      - name: sip2-over-stunnel
        host: sip2.example.org
        port: 6443
        probe: sip2
        tls_server_name: sip2.example.org
        ca_path: /etc/ssl/certs/ca-certificates.crt
        sip2_login_user: selfcheck
        sip2_login_password: "{{ vault_sip2_password }}"
        sip2_institution: EXAMPLE
      - name: mail-relay
        host: 192.0.2.25
        port: 25
        probe: smtp
        starttls: true
        tls_server_name: relay.example.org
        expiry_warn_days: 21
      - name: campus-ldap
        host: ldap.example.edu
        port: 636
        probe: ldaps
      - name: sftp-drop
        host: 198.51.100.10
        port: 22
        probe: ssh
      - name: print-proxy-optional
        host: 203.0.113.7
        port: 631
        required: false
        timeout: 2
      - name: stunnel-local-listener
        port: 6001
        probe: listen
        listen_address: 127.0.0.1
      - name: vendor-spf-include
        port: 53
        probe: spf
        spf_domain: spf.vendor.example.org
        spf_allowed: [192.0.2.0/28, 198.51.100.7/32]
        required: false
    workers: 16
    deadline: 20
  register: paths

- name: Show the endpoints that failed but were not required
  ansible.builtin.debug:
    msg: "{{ paths.results | rejectattr('ok') | map(attribute='name') | list }}"
"""

RETURN = r"""
results:
  description: One entry per endpoint, in the order given.
  returned: always
  type: list
  elements: dict
  sample:
    - name: mail-relay
      host: 192.0.2.25
      port: 25
      probe: smtp
      required: true
      status: ok
      ok: true
      latency_ms: 41.7
      details:
        banner: relay.example.org ESMTP Postfix
        starttls_offered: true
        tls_version: TLSv1.3
        days_until_expiry: 62
      message: SMTP STARTTLS ok (TLSv1.3), certificate valid for 62 more days
  contains:
    name:
      description: Name of the endpoint.
      type: str
      returned: always
      sample: mail-relay
    host:
      description: Host probed.
      type: str
      returned: always
      sample: 192.0.2.25
    port:
      description: Port probed.
      type: int
      returned: always
      sample: 25
    probe:
      description: Probe used.
      type: str
      returned: always
      sample: smtp
    required:
      description: Whether the endpoint was required.
      type: bool
      returned: always
      sample: true
    status:
      description:
        - Outcome, one of V(ok), V(refused), V(timeout), V(dns_error), V(tls_error), V(cert_expiring),
          V(protocol_error), V(not_listening), V(mismatch) (V(spf)) or V(error).
      type: str
      returned: always
      sample: ok
    ok:
      description: Whether RV(results[].status) is V(ok).
      type: bool
      returned: always
      sample: true
    latency_ms:
      description: Time the probe took, in milliseconds.
      type: float
      returned: always
      sample: 41.7
    details:
      description:
        - Probe-specific facts, for example C(tls_version), C(cipher), C(peer_subject), C(san), C(not_after),
          C(days_until_expiry), C(banner), C(starttls_offered), C(online), C(supported_messages), C(listeners),
          C(verify_message) when certificate verification failed, or for V(spf) C(published), C(missing),
          C(extra), C(notes) and C(dns_server).
      type: dict
      returned: always
      sample:
        tls_version: TLSv1.3
        days_until_expiry: 62
    message:
      description: Human-readable outcome.
      type: str
      returned: always
      sample: TCP connection accepted
summary:
  description: Number of results per status, plus the total and the number of failed required endpoints.
  returned: always
  type: dict
  sample:
    ok: 5
    refused: 0
    timeout: 1
    dns_error: 0
    tls_error: 0
    cert_expiring: 0
    protocol_error: 0
    not_listening: 0
    mismatch: 0
    error: 0
    total: 6
    failed_required: 0
  contains:
    total:
      description: Number of endpoints probed.
      type: int
      returned: always
      sample: 6
    failed_required:
      description: Number of required endpoints whose status is not V(ok).
      type: int
      returned: always
      sample: 0
failed_endpoints:
  description: Names of all endpoints whose status is not V(ok), required or not.
  returned: always
  type: list
  elements: str
  sample: [print-proxy-optional]
"""

# Ansible wants the imports below the documentation (validate-modules: import-before-documentation).
from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.libsys.onprem.plugins.module_utils.probes import (  # noqa: E402
    PROBES,
    run_checks,
    summarize,
    validate_endpoints,
)

ENDPOINT_SPEC = dict(
    name=dict(type="str", required=True),
    host=dict(type="str"),
    port=dict(type="int", required=True),
    probe=dict(type="str", choices=list(PROBES), default="tcp"),
    required=dict(type="bool", default=True),
    timeout=dict(type="float", default=5.0),
    tls_server_name=dict(type="str"),
    ca_path=dict(type="path"),
    client_cert_path=dict(type="path"),
    client_key_path=dict(type="path", no_log=False),
    client_key_passphrase=dict(type="str", no_log=True),
    check_hostname=dict(type="bool", default=True),
    min_tls_version=dict(type="str", choices=["TLSv1.2", "TLSv1.3"], default="TLSv1.2"),
    expiry_warn_days=dict(type="int", default=14),
    starttls=dict(type="bool", default=False),
    ehlo_name=dict(type="str"),
    sip2_login_user=dict(type="str"),
    sip2_login_password=dict(type="str", no_log=True),
    sip2_location=dict(type="str"),
    sip2_institution=dict(type="str"),
    listen_address=dict(type="str"),
    spf_domain=dict(type="str"),
    spf_allowed=dict(type="list", elements="str"),
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            endpoints=dict(type="list", elements="dict", required=True, options=ENDPOINT_SPEC),
            workers=dict(type="int", default=32),
            deadline=dict(type="float", default=30.0),
        ),
        supports_check_mode=True,
    )
    endpoints = module.params["endpoints"]
    workers = module.params["workers"]
    deadline = module.params["deadline"]

    errors = validate_endpoints(endpoints)
    if workers < 1:
        errors.append("workers must be at least 1, got %d" % workers)
    if deadline <= 0:
        errors.append("deadline must be positive, got %g" % deadline)
    if errors:
        module.fail_json(msg="Invalid endpoints, nothing was probed: " + "; ".join(errors), errors=errors)

    results = run_checks(endpoints, workers=workers, deadline=deadline)
    summary = summarize(results)
    failed = [r["name"] for r in results if not r["ok"]]
    outcome = dict(changed=False, results=results, summary=summary, failed_endpoints=failed)
    failed_required = [r for r in results if r["required"] and not r["ok"]]
    if failed_required:
        lines = [
            "%s (%s:%s, %s): %s - %s" % (r["name"], r["host"], r["port"], r["probe"], r["status"], r["message"])
            for r in failed_required
        ]
        module.fail_json(
            msg="%d of %d required endpoints failed: %s" % (len(failed_required), len(results), "; ".join(lines)),
            **outcome,
        )
    module.exit_json(**outcome)


if __name__ == "__main__":
    main()
