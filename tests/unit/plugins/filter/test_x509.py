# -*- coding: utf-8 -*-
# Copyright (c) libsys.onprem maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest
import trustme
from ansible.errors import AnsibleFilterError

from ansible_collections.libsys.onprem.plugins.filter.x509 import FilterModule, x509_chain_problem


@pytest.fixture(scope="module")
def vendor() -> trustme.CA:
    return trustme.CA(organization_name="Vendor CA")


def pem(*blobs: trustme.Blob) -> str:
    return "".join(blob.bytes().decode() for blob in blobs)


def test_filter_registered() -> None:
    assert set(FilterModule().filters()) == {"x509_chain_problem"}


def test_leaf_issued_by_a_ca_of_the_bundle(vendor: trustme.CA) -> None:
    leaf = vendor.issue_cert("library.example.edu", common_name="library.example.edu")
    assert x509_chain_problem(pem(leaf.cert_chain_pems[0]), pem(vendor.cert_pem)) == ""


def test_leaf_through_an_intermediate_of_the_chain(vendor: trustme.CA) -> None:
    intermediate = vendor.create_child_ca()
    leaf = intermediate.issue_cert("library.example.edu", common_name="library.example.edu")
    chain = pem(*leaf.cert_chain_pems)
    assert x509_chain_problem(chain, pem(vendor.cert_pem)) == ""
    # Without the intermediate, the leaf's issuer is nowhere.
    problem = x509_chain_problem(pem(leaf.cert_chain_pems[0]), pem(vendor.cert_pem))
    assert problem.startswith("no certificate of the bundle or of the chain issued CN=library.example.edu,")


def test_another_bundle(vendor: trustme.CA) -> None:
    foreign = trustme.CA(organization_name="Foreign CA")
    leaf = foreign.issue_cert("library.example.edu", common_name="library.example.edu")
    problem = x509_chain_problem(pem(leaf.cert_chain_pems[0]), pem(vendor.cert_pem))
    assert problem.startswith("no certificate of the bundle or of the chain issued CN=library.example.edu,")
    assert "Foreign CA" in problem


def test_same_name_but_not_the_signer(vendor: trustme.CA) -> None:
    """A CA with the vendor CA's name but another key did not sign: the signature decides."""
    impostor = trustme.CA(organization_name="Vendor CA")
    leaf = impostor.issue_cert("library.example.edu", common_name="library.example.edu")
    assert x509_chain_problem(pem(leaf.cert_chain_pems[0]), pem(vendor.cert_pem)) != ""


@pytest.mark.parametrize("bad", ["", "not a certificate", 42])
def test_input_without_a_certificate(vendor: trustme.CA, bad: object) -> None:
    with pytest.raises(AnsibleFilterError, match="the certificate holds no PEM certificate"):
        x509_chain_problem(bad, pem(vendor.cert_pem))


def test_bundle_without_a_certificate(vendor: trustme.CA) -> None:
    leaf = vendor.issue_cert("library.example.edu", common_name="library.example.edu")
    with pytest.raises(AnsibleFilterError, match="the CA bundle holds no PEM certificate"):
        x509_chain_problem(pem(leaf.cert_chain_pems[0]), "")
