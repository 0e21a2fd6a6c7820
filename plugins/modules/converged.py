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
notes:
  - The state files are bookkeeping, like a fact cache. Writing or removing them is never reported as C(changed), so
    that a run reports C(changed) only when something the role manages changed; RV(written) and RV(removed) say
    what was written or removed.
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
  description: With O(state=record), the states whose file was written (or would be, in check mode).
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

import fnmatch  # noqa: E402 (after the documentation, as Ansible modules are laid out)
import hashlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import stat  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

MAX_REASONS = 20
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
ACL_ATTRIBUTES = ("system.posix_acl_access", "system.posix_acl_default")
WATCH_KEYS = ("paths", "entries", "exclude", "packages", "services", "commands")


def _acl(path):
    """The POSIX ACL extended attributes of a path, hashed (empty when it has none)."""
    found = []
    for attribute in ACL_ATTRIBUTES:
        try:
            value = os.getxattr(path, attribute, follow_symlinks=False)
        except OSError:
            continue
        found.append(attribute.rsplit("_", 1)[-1] + ":" + hashlib.sha256(value).hexdigest()[:16])
    return ",".join(found)


def _file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def describe_path(path):
    """One line that changes whenever the path's type, owner, mode, ACLs or content change."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return "absent"
    ownership = "%o %d:%d" % (stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid)
    if stat.S_ISLNK(info.st_mode):
        return "link -> " + os.readlink(path)
    if stat.S_ISDIR(info.st_mode):
        return " ".join(("dir", ownership, _acl(path))).strip()
    if stat.S_ISREG(info.st_mode):
        return " ".join(("file", ownership, _file_sha256(path), _acl(path))).strip()
    return "other %o %s" % (stat.S_IFMT(info.st_mode), ownership)


def _excluded(path, patterns):
    return any(fnmatch.fnmatchcase(path, pattern) for pattern in patterns)


def snapshot_paths(paths, entries, exclude):
    found = {}
    for top in paths:
        found[top] = describe_path(top)
        if not os.path.isdir(top) or os.path.islink(top):
            continue
        for directory, subdirectories, files in os.walk(top):
            subdirectories[:] = sorted(
                name for name in subdirectories if not _excluded(os.path.join(directory, name), exclude)
            )
            for name in subdirectories + sorted(files):
                path = os.path.join(directory, name)
                if not _excluded(path, exclude):
                    found[path] = describe_path(path)
    for path in entries:
        found[path] = describe_path(path)
    return found


def snapshot_packages(module, packages):
    if not packages:
        return {}
    found = dict((name, "not installed") for name in packages)
    command = ["dpkg-query", "--show", "--showformat", "${Package}\t${Status}\n", *packages]
    out = module.run_command(command, check_rc=False)[1]
    for line in out.splitlines():
        name, _tab, status = line.partition("\t")
        if name in found:
            found[name] = status
    return found


def snapshot_services(module, services):
    if not services:
        return {}
    found = dict((unit, "not found") for unit in services)
    command = ["systemctl", "show", "--property=Id,ActiveState,UnitFileState,NeedDaemonReload", *services]
    out = module.run_command(command, check_rc=False)[1]
    for unit, block in zip(services, re.split(r"\n\s*\n", out.strip())):
        properties = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        state = "%s %s" % (properties.get("ActiveState", "?"), properties.get("UnitFileState", "") or "-")
        if properties.get("NeedDaemonReload") == "yes":
            state += " (unit file changed on disk, daemon-reload pending)"
        found[unit] = state
    return found


def snapshot_commands(module, commands):
    found = {}
    for given in commands:
        command = [str(part) for part in given]
        try:
            rc, out, err = module.run_command(command, check_rc=False)
        except Exception as error:  # a missing binary is a state too  # pylint: disable=broad-except
            rc, out, err = -1, "", str(error)
        found[" ".join(command)] = "rc %s %s" % (rc, hashlib.sha256((out + "\0" + err).encode()).hexdigest())
    return found


def take_snapshot(module, watch):
    return {
        "paths": snapshot_paths(watch["paths"], watch["entries"], watch["exclude"]),
        "packages": snapshot_packages(module, watch["packages"]),
        "services": snapshot_services(module, watch["services"]),
        "commands": snapshot_commands(module, watch["commands"]),
    }


def compare(recorded, current):
    """Human-readable differences between two snapshots, path by path."""
    reasons = []
    labels = {"paths": "", "packages": "package ", "services": "service ", "commands": "command "}
    for kind, label in labels.items():
        before, after = recorded.get(kind, {}), current.get(kind, {})
        for key in sorted(set(before) | set(after)):
            if before.get(key) == after.get(key):
                continue
            if kind == "paths" and key not in before:
                reasons.append("%s: new (%s)" % (key, after[key].split(" ", 1)[0]))
            elif kind == "paths" and key not in after:
                reasons.append("%s: gone" % key)
            elif kind == "paths" and after.get(key) == "absent":
                reasons.append("%s: absent" % key)
            elif kind in ("paths", "commands"):
                reasons.append("%s%s: changed" % (label, key))
            else:
                reasons.append("%s%s: %s (was %s)" % (label, key, after.get(key), before.get(key)))
    return reasons


def normalize_watch(watch):
    watch = dict(watch or {})
    normalized = {}
    for key in WATCH_KEYS:
        normalized[key] = [list(item) if key == "commands" else str(item) for item in (watch.get(key) or [])]
    unknown = sorted(set(watch) - set(WATCH_KEYS))
    return normalized, unknown


def state_path(params, name):
    """The state file of ``name``; names are letters, digits and underscores, never a path."""
    if not re.match(r"^[A-Za-z0-9_]+$", name):
        raise ValueError("state name %r: use letters, digits and underscores only" % name)
    return os.path.join(params["state_dir"], name + ".json")


def load_state(path):
    try:
        with open(path) as handle:
            return json.load(handle)
    except FileNotFoundError:
        return None
    except ValueError:
        return {}


def write_state(path, content):
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    temporary = path + ".tmp"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(content, handle, indent=1, sort_keys=True)
        handle.write("\n")
    os.replace(temporary, path)


def state_reasons(module, params, name, digest=None):
    """Why the recorded state ``name`` no longer holds; its digest is compared unless None."""
    path = state_path(params, name)
    state = load_state(path)
    if state is None:
        return ["%s: no recorded state (%s)" % (name, path)]
    if not state.get("snapshot") or not state.get("watch"):
        return ["%s: unreadable recorded state (%s)" % (name, path)]
    if digest is not None and state.get("digest") != digest:
        return ["%s: the role's variables or the collection's code changed since the last full run" % name]
    watch = normalize_watch(state["watch"])[0]
    return compare(state["snapshot"], take_snapshot(module, watch))


def shorten(reasons):
    if len(reasons) > MAX_REASONS:
        return [*reasons[:MAX_REASONS], "... and %d more" % (len(reasons) - MAX_REASONS)]
    return reasons


def check(module, params):
    if params["states"]:
        return check_states(module, params)
    reasons = state_reasons(module, params, params["name"], params["digest"])
    for shared in params["requires"]:
        reasons.extend(state_reasons(module, params, shared))
    reasons = shorten(reasons)
    return dict(
        changed=False,
        converged=not reasons,
        reasons=reasons,
        state_file=state_path(params, params["name"]),
        digest=params["digest"],
    )


def check_states(module, params):
    """Several roles' states in one call; a shared state that several require is read once."""
    shared_reasons = {}
    results, reasons = {}, []
    for given in params["states"]:
        own = state_reasons(module, params, given["name"], given["digest"])
        for shared in given["requires"]:
            if shared not in shared_reasons:
                shared_reasons[shared] = state_reasons(module, params, shared)
            own.extend(shared_reasons[shared])
        results[given["name"]] = dict(converged=not own, reasons=shorten(own))
        reasons.extend("%s: %s" % (given["name"], reason) for reason in own)
    return dict(changed=False, converged=not reasons, reasons=shorten(reasons), by_state=results)


def record(module, params):
    if params["watch"] is None:
        module.fail_json(msg="watch is required with state=record")
    records = [(params["name"], params["digest"], params["watch"])]
    records.extend((shared["name"], "", shared["watch"]) for shared in params["shared"])
    written = []
    for name, digest, given in records:
        path = state_path(params, name)
        watch, unknown = normalize_watch(given)
        if unknown:
            module.fail_json(
                msg="watch of %s: unknown keys %s (known: %s)" % (name, ", ".join(unknown), ", ".join(WATCH_KEYS))
            )
        content = {"digest": digest, "watch": watch, "snapshot": take_snapshot(module, watch)}
        if load_state(path) == content:
            continue
        written.append(name)
        if not module.check_mode:
            write_state(path, content)
    return dict(
        changed=False,
        converged=False,
        reasons=[],
        state_file=state_path(params, params["name"]),
        digest=params["digest"],
        written=written,
    )


def forget(module, params):
    path = state_path(params, params["name"])
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
            state_dir=dict(type="path", default="/var/lib/libsys-onprem/converged"),
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
