# -*- coding: utf-8 -*-
# Copyright (c) libsys.onprem maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Recorded states of libsys.onprem.converged: snapshots of what a role manages, and their comparison.

The module libsys.onprem.converged records and checks these states. The same file, standard library
only, is also the host's local fact ``converged``: the module installs it as an executable
``<state_dir>/facts.d/converged.fact`` when it records a state, and the site playbook's fact
gathering runs it (``fact_path``), so that the host's snapshots come back with its facts and the
controller compares the digests without another call. Run as a script, it prints every recorded
state of the directory above it with the reasons its snapshot no longer holds.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
import stat
import subprocess
import sys

MAX_REASONS = 20
DEFAULT_STATE_DIR = "/var/lib/libsys-onprem/converged"
ACL_ATTRIBUTES = ("system.posix_acl_access", "system.posix_acl_default")
WATCH_KEYS = ("paths", "entries", "exclude", "packages", "services", "commands")
FACT_NAME = "converged"
FACT_VERSION = 1
STALE_INPUTS = "the role's variables or the collection's code changed since the last full run"


def run_command(command):
    """Run a read-only command without a shell: (rc, stdout, stderr) as bytes; a missing binary is a state too."""
    try:
        # The read-only commands of the recorded watch list, run without a shell.
        completed = subprocess.run(command, capture_output=True, check=False)  # noqa: S603
    except OSError as error:
        return -1, b"", str(error).encode("utf-8", "replace")
    return completed.returncode, completed.stdout, completed.stderr


def _text(data):
    return data.decode("utf-8", "replace")


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


def snapshot_packages(packages):
    if not packages:
        return {}
    found = dict((name, "not installed") for name in packages)
    out = _text(run_command(["dpkg-query", "--show", "--showformat", "${Package}\t${Status}\n", *packages])[1])
    for line in out.splitlines():
        name, _tab, status = line.partition("\t")
        if name in found:
            found[name] = status
    return found


def snapshot_services(services):
    if not services:
        return {}
    found = dict((unit, "not found") for unit in services)
    command = ["systemctl", "show", "--property=Id,ActiveState,UnitFileState,NeedDaemonReload", *services]
    out = _text(run_command(command)[1])
    for unit, block in zip(services, re.split(r"\n\s*\n", out.strip())):
        properties = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        state = "%s %s" % (properties.get("ActiveState", "?"), properties.get("UnitFileState", "") or "-")
        if properties.get("NeedDaemonReload") == "yes":
            state += " (unit file changed on disk, daemon-reload pending)"
        found[unit] = state
    return found


def snapshot_commands(commands):
    found = {}
    for given in commands:
        command = [str(part) for part in given]
        rc, out, err = run_command(command)
        found[" ".join(command)] = "rc %s %s" % (rc, hashlib.sha256(out + b"\0" + err).hexdigest())
    return found


def take_snapshot(watch):
    return {
        "paths": snapshot_paths(watch["paths"], watch["entries"], watch["exclude"]),
        "packages": snapshot_packages(watch["packages"]),
        "services": snapshot_services(watch["services"]),
        "commands": snapshot_commands(watch["commands"]),
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


def state_path(state_dir, name):
    """The state file of ``name``; names are letters, digits and underscores, never a path."""
    if not re.match(r"^[A-Za-z0-9_]+$", name):
        raise ValueError("state name %r: use letters, digits and underscores only" % name)
    return os.path.join(state_dir, name + ".json")


def fact_path(state_dir):
    """The directory of the local fact that reports the states of ``state_dir``."""
    return os.path.join(state_dir, "facts.d")


def load_state(path):
    try:
        with open(path) as handle:
            return json.load(handle)
    except FileNotFoundError:
        return None
    except ValueError:
        return {}


def write_private(path, content, mode=0o600):
    """Write a root-only file atomically (its directory 0700)."""
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    temporary = path + ".tmp"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(content)
    os.chmod(temporary, mode)
    os.replace(temporary, path)


def write_state(path, content):
    write_private(path, json.dumps(content, indent=1, sort_keys=True) + "\n")


def unusable_state(name, path, why):
    """A state with nothing to compare (``why``: "no" when never recorded, or "unreadable")."""
    return {"readable": False, "digest": None, "reasons": ["%s: %s recorded state (%s)" % (name, why, path)]}


def recorded_state(state_dir, name):
    """The state ``name`` as its file records it, compared with the host now.

    A dict: ``readable`` (a state file with a snapshot), the recorded ``digest`` and the ``reasons``
    the snapshot no longer holds (or why there is nothing to compare).
    """
    path = state_path(state_dir, name)
    state = load_state(path)
    if state is None:
        return unusable_state(name, path, "no")
    if not state.get("snapshot") or not state.get("watch"):
        return unusable_state(name, path, "unreadable")
    watch = normalize_watch(state["watch"])[0]
    reasons = compare(state["snapshot"], take_snapshot(watch))
    return {"readable": True, "digest": state.get("digest"), "reasons": reasons}


def state_reasons(name, recorded, digest=None):
    """Why a recorded state (from recorded_state) no longer holds; its digest is compared unless None."""
    if recorded["readable"] and digest is not None and recorded["digest"] != digest:
        return ["%s: %s" % (name, STALE_INPUTS)]
    return list(recorded["reasons"])


def shorten(reasons):
    if len(reasons) > MAX_REASONS:
        return [*reasons[:MAX_REASONS], "... and %d more" % (len(reasons) - MAX_REASONS)]
    return reasons


def check_states(states, reasons_of):
    """Several roles' states at once; a shared state that several require is looked at once.

    ``reasons_of(name, digest)`` says why one state does not hold (digest None: not compared).
    """
    shared_reasons = {}
    results, reasons = {}, []
    for given in states:
        own = reasons_of(given["name"], given["digest"])
        for shared in given.get("requires") or []:
            if shared not in shared_reasons:
                shared_reasons[shared] = reasons_of(shared, None)
            own.extend(shared_reasons[shared])
        results[given["name"]] = dict(converged=not own, reasons=shorten(own))
        reasons.extend("%s: %s" % (given["name"], reason) for reason in own)
    return dict(changed=False, converged=not reasons, reasons=shorten(reasons), by_state=results)


def local_fact(state_dir):
    """Every recorded state of ``state_dir``: its digest and why its snapshot no longer holds."""
    states = {}
    for entry in sorted(os.listdir(state_dir)):
        name, extension = os.path.splitext(entry)
        if extension != ".json" or not re.match(r"^[A-Za-z0-9_]+$", name):
            continue
        states[name] = recorded_state(state_dir, name)
    return {"version": FACT_VERSION, "state_dir": state_dir, "states": states}


def reasons_from_fact(fact, state_dir):
    """A ``reasons_of`` for check_states from the gathered local fact, or None if it cannot serve."""
    if not isinstance(fact, dict) or fact.get("version") != FACT_VERSION or fact.get("state_dir") != state_dir:
        return None
    states = fact.get("states")
    if not isinstance(states, dict):
        return None

    def reasons_of(name, digest):
        entry = states.get(name)
        if entry is None:
            entry = unusable_state(name, state_path(state_dir, name), "no")
        elif not isinstance(entry, dict) or not isinstance(entry.get("reasons"), list) or "readable" not in entry:
            entry = unusable_state(name, state_path(state_dir, name), "unreadable")
        return state_reasons(name, entry, digest)

    return reasons_of


def fact_script(source, interpreter):
    """The executable local fact: this file's ``source`` run by the host's ``interpreter``."""
    return "#!%s\n%s" % (interpreter, source)


if __name__ == "__main__":
    # The local fact: the states are in the directory above facts.d.
    sys.stdout.write(json.dumps(local_fact(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))) + "\n")
