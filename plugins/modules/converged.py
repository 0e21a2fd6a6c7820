#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) libsys.onprem maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: converged
short_description: Tell in one call whether a host is still exactly as a role's last full run left it
version_added: 0.2.0
description:
  - The roles of this collection call this module first. When the host is still as the role's last full run left
    it, the role skips its other tasks; otherwise it runs them all and then records the new state with
    O(state=record).
  - O(state=record) writes a snapshot of everything the role manages to O(state_dir)/O(name).json (root only,
    mode 0600). The snapshot holds, for every path in O(watch.paths) and everything under it, its type, mode,
    owner, group, POSIX ACLs and the SHA-256 of its content (or the target of a symbolic link, or that it is
    absent); for O(watch.entries) the same for the path itself but not its contents; the dpkg status of
    O(watch.packages); the C(ActiveState) and C(UnitFileState) of O(watch.services), and whether systemd has
    yet to reload a changed unit file; and the exit code and the SHA-256 of the output of each read-only
    command in O(watch.commands).
  - O(state=check) reads the recorded state, takes the same snapshot again and compares. The host is
    converged
    only when the recorded O(digest) equals the given one (the role's inputs and code did not change), the
    snapshot is unchanged and so is the snapshot of every state named in O(requires).
  - The action plugin of the same name computes O(digest) on the controller from the role's variables, so
    variable values (secrets included) never reach the host or the output.
author:
  - libsys.onprem maintainers (@libsys)
extends_documentation_fragment:
  - libsys.onprem.attributes
  - libsys.onprem.attributes.platform
attributes:
  check_mode:
    support: full
    details:
      - O(state=check) only reads. O(state=record) and O(state=absent) write or remove nothing in check mode.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
    details:
      - O(watch.packages) needs C(dpkg-query) and O(watch.services) needs C(systemctl).
options:
  name:
    description:
      - Name of the state, usually the role's name. Letters, digits and underscores.
      - Required unless O(states) is given.
    type: str
  state:
    description:
      - V(check) compares the host with the recorded state; V(record) records it.
      - V(digest) only computes O(digest) on the controller (nothing reaches the host) and returns it with
        O(requires), for a later O(state=check) of several roles at once with O(states).
      - V(absent) forgets the recorded state of O(name). A role does that when its full run starts, so that a run
        that fails half-way (a failed reload, say) is never taken for converged afterwards.
    type: str
    choices: [check, record, absent, digest]
    default: check
  prefixes:
    description:
      - Handled on the controller by the action plugin. The values of every variable whose name starts with one
        of these prefixes (role defaults, inventory and extra variables) go into O(digest).
    type: list
    elements: str
    default: []
  facts:
    description:
      - Handled on the controller by the action plugin. Facts (keys of C(ansible_facts)) that go into O(digest)
        besides C(inventory_hostname), C(group_names) and the C(ansible_managed) header (setting or variable).
    type: list
    elements: str
    default:
      - architecture
      - default_ipv4
      - distribution
      - distribution_major_version
      - distribution_release
      - domain
      - fqdn
      - hostname
      - os_family
  digest:
    description:
      - Digest of the role's inputs. With O(state=check) the action plugin computes it from O(prefixes), O(facts)
        and the collection's code, and returns it. O(state=record) records the digest the check returned before the
        run (the defaults of roles the run imports are only visible during the run).
    type: str
  watch:
    description:
      - What the role manages. Required with O(state=record); O(state=check) uses the recorded list, since a
        different list means different inputs and therefore a different O(digest).
    type: dict
    suboptions:
      paths:
        description:
          - Files and directories; directories are walked and everything under them is recorded.
        type: list
        elements: path
        default: []
      entries:
        description:
          - Paths recorded by themselves, without their contents (for example a drop directory whose files are
            data).
        type: list
        elements: path
        default: []
      exclude:
        description:
          - Shell-style patterns of paths under O(watch.paths) that are not recorded (files services rewrite).
        type: list
        elements: str
        default: []
      packages:
        description:
          - Debian packages whose dpkg status is recorded.
        type: list
        elements: str
        default: []
      services:
        description:
          - systemd units whose C(ActiveState) and C(UnitFileState) are recorded.
        type: list
        elements: str
        default: []
      commands:
        description:
          - Read-only commands (argument lists, run without a shell) whose exit code and output are recorded,
            for state that lives in no file, such as a loaded nftables table.
        type: list
        elements: list
        default: []
  shared:
    description:
      - Only with O(state=record). States of shared base roles this role applied (for example the Postfix base
        that several roles assemble), recorded with an empty digest at the same time. The last role of a run to
        record a shared state records its final form.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Name of the shared state.
        type: str
        required: true
      watch:
        description: What the shared role manages, with the keys of O(watch).
        type: dict
        required: true
  requires:
    description:
      - With O(state=check), names of shared states whose snapshots must be unchanged too. O(state=digest)
        returns them, for O(states).
    type: list
    elements: str
    default: []
  states:
    description:
      - Only with O(state=check), instead of O(name). Check several roles' states in one call (the site playbook
        does this before any role runs); a shared state that several of them require is read once.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Name of the role's state.
        type: str
        required: true
      digest:
        description: The digest of the role's inputs, as returned by O(state=digest) in the role's context.
        type: str
        required: true
      requires:
        description: Names of shared states whose snapshots must be unchanged too.
        type: list
        elements: str
        default: []
  state_dir:
    description:
      - Directory of the state files.
    type: path
    default: /var/lib/libsys-onprem/converged
  gathered:
    description:
      - Handled on the controller by the action plugin, with O(states) only. The host's local fact C(converged)
        (C(ansible_facts.ansible_local.converged)), gathered in the same run by M(ansible.builtin.setup) with
        C(fact_path=<state_dir>/facts.d).
      - That fact holds, for every recorded state, its digest and how the host differs from its snapshot, taken
        while the facts were gathered. When it is given and comes from this O(state_dir), the digests are compared
        on the controller and the module is not called at all. Anything else (not gathered in this run, from an
        older version) means the module checks the host as usual.
      - Pass it only from facts gathered in the same run, never from a fact cache.
    type: raw
  fact_source:
    description:
      - Set by the action plugin with O(state=record). The source of the local fact C(converged), which the module
        installs as C(<state_dir>/facts.d/converged.fact) (root only, mode 0700) with the host's Python
        interpreter.
    type: str
notes:
  - The state files are bookkeeping, like a fact cache. Writing or removing them is never reported as C(changed), so
    that a run reports C(changed) only when something the role manages changed; RV(written) and RV(removed) say
    what was written or removed.
  - O(state=record) also installs the local fact C(converged) next to the states (see O(gathered)), so that a later
    run can gather the host's states together with its facts. It reads the state files and runs only the read-only
    commands of O(watch.commands), the dpkg and systemd queries of the recorded states.
  - A full run of the role is always safe; this module only decides whether it can be skipped. Set the role's
    C(*_converged_check) variable to V(false) to run every task.
"""

EXAMPLES = r"""
- name: Compute a role's digest on the controller (in the role's context, for example from include_role)
  libsys.onprem.converged:
    name: stunnel
    state: digest
    prefixes: [stunnel_, onprem_]
    requires: [nftables]
  register: stunnel_digest

- name: Check several roles in one call
  libsys.onprem.converged:
    states:
      - name: stunnel
        digest: "{{ stunnel_digest.digest }}"
        requires: "{{ stunnel_digest.requires }}"
  register: site_converged

- name: Gather the facts and the recorded states of the host in one call
  ansible.builtin.setup:
    fact_path: /var/lib/libsys-onprem/converged/facts.d

- name: Check several roles with no call to the host, from the states gathered with the facts
  libsys.onprem.converged:
    states:
      - name: stunnel
        digest: "{{ stunnel_digest.digest }}"
        requires: "{{ stunnel_digest.requires }}"
    gathered: "{{ ansible_facts['ansible_local']['converged'] | default(omit) }}"
  register: site_converged

- name: Check whether the host is as the last full run of the role left it
  libsys.onprem.converged:
    name: stunnel
    prefixes: [stunnel_, onprem_]
    requires: [nftables]
  register: stunnel_converged

- name: Record the state after a full run
  libsys.onprem.converged:
    name: stunnel
    state: record
    prefixes: [stunnel_, onprem_]
    watch:
      paths: [/etc/stunnel]
      packages: [stunnel4]
      services: [stunnel@sip2.service]
      commands:
        - [nft, -s, list, table, inet, libsys_stunnel]
"""

RETURN = r"""
converged:
  description:
    - Whether the host is exactly as the last full run left it (always V(false) unless O(state=check)).
    - With O(states), whether every one of them is.
  returned: always
  type: bool
reasons:
  description: Why the host is not converged, at most 20 entries (empty when converged).
  returned: always
  type: list
  elements: str
  sample:
    - "/etc/stunnel/libsys/sip2.conf: changed"
    - "service stunnel-libsys@sip2.service: inactive enabled (was active enabled)"
digest:
  description: The digest of the role's inputs (with O(state=check) or O(state=digest)), for the O(state=record)
    after a full run.
  returned: unless O(states) is given
  type: str
from_gathered:
  description: With O(states), whether the check was made on the controller from O(gathered), with no call to the
    host.
  returned: when O(states) is given
  type: bool
by_state:
  description: With O(states), for each state checked, whether it is converged and why not.
  returned: when O(states) is given
  type: dict
  sample:
    stunnel: {converged: true, reasons: []}
    mail_relay: {converged: false, reasons: ["service opendkim.service: inactive enabled (was active enabled)"]}
requires:
  description: With O(state=digest), the given O(requires), to pass on in O(states).
  returned: when O(state=digest)
  type: list
  elements: str
written:
  description:
    - With O(state=record), the states whose file was written (or would be, in check mode), and
      C(converged.fact) when the local fact was installed or replaced.
  returned: when O(state=record)
  type: list
  elements: str
removed:
  description: With O(state=absent), whether a state file was removed (or would be, in check mode).
  returned: when O(state=absent)
  type: bool
state_file:
  description: The state file read or written.
  returned: unless O(states) is given or O(state=digest)
  type: str
"""

import os  # noqa: E402 (after the documentation, as Ansible modules are laid out)
import sys  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.libsys.onprem.plugins.module_utils.converged_state import (  # noqa: E402
    DEFAULT_STATE_DIR,
    FACT_NAME,
    WATCH_KEYS,
    check_states,
    fact_path,
    fact_script,
    load_state,
    normalize_watch,
    recorded_state,
    shorten,
    state_path,
    state_reasons,
    take_snapshot,
    write_private,
    write_state,
)

# Facts that go into the digest unless the task names others (the action plugin reads this).
DEFAULT_FACTS = (
    "architecture",
    "default_ipv4",
    "distribution",
    "distribution_major_version",
    "distribution_release",
    "domain",
    "fqdn",
    "hostname",
    "os_family",
)


def reasons_on_host(params):
    """check_states' reasons_of, from the state files and a snapshot of the host now."""
    return lambda name, digest: state_reasons(name, recorded_state(params["state_dir"], name), digest)


def check(module, params):
    if params["states"]:
        return check_states(params["states"], reasons_on_host(params))
    reasons_of = reasons_on_host(params)
    reasons = reasons_of(params["name"], params["digest"])
    for shared in params["requires"]:
        reasons.extend(reasons_of(shared, None))
    reasons = shorten(reasons)
    return dict(
        changed=False,
        converged=not reasons,
        reasons=reasons,
        state_file=state_path(params["state_dir"], params["name"]),
        digest=params["digest"],
    )


def install_fact(module, params):
    """The local fact that reports every recorded state at fact gathering; True when (re)written."""
    if not params["fact_source"]:
        return False
    path = os.path.join(fact_path(params["state_dir"]), FACT_NAME + ".fact")
    content = fact_script(params["fact_source"], sys.executable)
    try:
        with open(path) as handle:
            if handle.read() == content and (os.stat(path).st_mode & 0o777) == 0o700:
                return False
    except (FileNotFoundError, UnicodeDecodeError):
        pass
    if not module.check_mode:
        write_private(path, content, mode=0o700)
    return True


def record(module, params):
    if params["watch"] is None:
        module.fail_json(msg="watch is required with state=record")
    records = [(params["name"], params["digest"], params["watch"])]
    records.extend((shared["name"], "", shared["watch"]) for shared in params["shared"])
    written = []
    for name, digest, given in records:
        path = state_path(params["state_dir"], name)
        watch, unknown = normalize_watch(given)
        if unknown:
            module.fail_json(
                msg="watch of %s: unknown keys %s (known: %s)" % (name, ", ".join(unknown), ", ".join(WATCH_KEYS))
            )
        content = {"digest": digest, "watch": watch, "snapshot": take_snapshot(watch)}
        if load_state(path) == content:
            continue
        written.append(name)
        if not module.check_mode:
            write_state(path, content)
    if install_fact(module, params):
        written.append(FACT_NAME + ".fact")
    return dict(
        changed=False,
        converged=False,
        reasons=[],
        state_file=state_path(params["state_dir"], params["name"]),
        digest=params["digest"],
        written=written,
    )


def forget(module, params):
    path = state_path(params["state_dir"], params["name"])
    removed = os.path.exists(path)
    if removed and not module.check_mode:
        os.unlink(path)
    return dict(changed=False, converged=False, reasons=[], state_file=path, digest=params["digest"], removed=removed)


def main():
    watch_spec = dict(
        type="dict",
        options=dict(
            paths=dict(type="list", elements="path", default=[]),
            entries=dict(type="list", elements="path", default=[]),
            exclude=dict(type="list", elements="str", default=[]),
            packages=dict(type="list", elements="str", default=[]),
            services=dict(type="list", elements="str", default=[]),
            commands=dict(type="list", elements="list", default=[]),
        ),
    )
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str"),
            state=dict(type="str", choices=["check", "record", "absent", "digest"], default="check"),
            prefixes=dict(type="list", elements="str", default=[]),
            facts=dict(type="list", elements="str", default=list(DEFAULT_FACTS)),
            digest=dict(type="str", no_log=False),
            watch=watch_spec,
            shared=dict(
                type="list",
                elements="dict",
                default=[],
                options=dict(
                    name=dict(type="str", required=True),
                    watch=dict(type="dict", required=True),
                ),
            ),
            requires=dict(type="list", elements="str", default=[]),
            states=dict(
                type="list",
                elements="dict",
                default=[],
                options=dict(
                    name=dict(type="str", required=True),
                    digest=dict(type="str", required=True, no_log=False),
                    requires=dict(type="list", elements="str", default=[]),
                ),
            ),
            state_dir=dict(type="path", default=DEFAULT_STATE_DIR),
            fact_source=dict(type="str"),
            gathered=dict(type="raw"),
        ),
        mutually_exclusive=[("name", "states")],
        supports_check_mode=True,
    )
    params = module.params
    if params["state"] == "digest":
        module.fail_json(msg="state=digest is computed on the controller: run this module through its action plugin")
    if params["states"] and params["state"] != "check":
        module.fail_json(msg="states is only for state=check")
    if not params["name"] and not (params["states"] and params["state"] == "check"):
        either = " (or states)" if params["state"] == "check" else ""
        module.fail_json(msg="state=%s needs name%s" % (params["state"], either))
    if not params["digest"] and params["state"] != "absent" and not params["states"]:
        module.fail_json(msg="digest is missing: run this module through its action plugin (libsys.onprem.converged)")
    actions = {"check": check, "record": record, "absent": forget}
    try:
        result = actions[params["state"]](module, params)
    except ValueError as error:
        module.fail_json(msg=str(error))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
