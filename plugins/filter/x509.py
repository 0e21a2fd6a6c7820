# -*- coding: utf-8 -*-
# Copyright (c) libsys.onprem maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Controller-side certificate check: does a certificate chain to a CA of a bundle?

In the controller's Ansible process (the cryptography library), so that a role checks its
certificate material before anything changes without a module call, a scratch file or a copy
of the material anywhere.
"""

from __future__ import annotations

from typing import Any, Optional

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_bytes

try:
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
except ImportError as imp_exc:
    CRYPTOGRAPHY_IMPORT_ERROR: Optional[ImportError] = imp_exc
else:
    CRYPTOGRAPHY_IMPORT_ERROR = None


def _certificates(pem: Any, what: str) -> list:
    if not isinstance(pem, str) or "-----BEGIN CERTIFICATE-----" not in pem:
        raise AnsibleFilterError(f"x509_chain_problem: {what} holds no PEM certificate")
    try:
        return x509.load_pem_x509_certificates(to_bytes(pem))
    except ValueError as error:
        raise AnsibleFilterError(f"x509_chain_problem: {what} is not readable PEM: {error}") from error


def _issued_by(certificate: Any, issuer: Any) -> bool:
    try:
        certificate.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _name(certificate: Any) -> str:
    return certificate.subject.rfc4514_string() or "(empty subject)"


def x509_chain_problem(chain_pem: Any, bundle_pem: Any) -> str:
    """Why the first certificate of ``chain_pem`` does not chain to a CA of ``bundle_pem``;
    the empty string when it does. The certificates after the first one in ``chain_pem`` are
    intermediates; each link must be signed by the next (signature and issuer name)."""
    if CRYPTOGRAPHY_IMPORT_ERROR is not None:
        raise AnsibleFilterError(
            "x509_chain_problem needs the Python library cryptography on the controller"
        ) from CRYPTOGRAPHY_IMPORT_ERROR
    chain = _certificates(chain_pem, "the certificate")
    anchors = _certificates(bundle_pem, "the CA bundle")
    intermediates = chain[1:]
    current = chain[0]
    for _hop in range(len(intermediates) + 1):
        if any(_issued_by(current, anchor) for anchor in anchors):
            return ""
        issuer = next((cert for cert in intermediates if _issued_by(current, cert)), None)
        if issuer is None:
            return (
                f"no certificate of the bundle or of the chain issued {_name(current)}"
                f" (issuer {current.issuer.rfc4514_string()})"
            )
        intermediates = [cert for cert in intermediates if cert is not issuer]
        current = issuer
    return f"the chain from {_name(chain[0])} does not end at a CA of the bundle"


class FilterModule:
    def filters(self) -> dict:
        return {"x509_chain_problem": x509_chain_problem}
