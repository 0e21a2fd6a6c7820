#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) libsys.onprem maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: report_files
short_description: Write a host's report files on the controller in one step
version_added: 0.2.0
description:
  - Writes the given files into a directory on the controller, creating the directory when it is missing. The
    roles use it for the reports they leave next to the playbook (preflight, mail_relay).
  - Runs in the controller's Ansible process, as an action plugin. No module is sent anywhere and nothing on the
    managed host is touched, so it takes milliseconds where one C(ansible.builtin.copy) to localhost per file
    takes about a second.
  - A file is replaced only when its content or mode differs, through a temporary file in the same directory, so
    a reader never sees half a report.
author:
  - libsys.onprem maintainers (@libsys)
extends_documentation_fragment:
  - libsys.onprem.attributes
  - libsys.onprem.attributes.platform
attributes:
  check_mode:
    support: full
    details:
      - In check mode nothing is written; RV(written) lists what would be. Set C(check_mode=false) on the task
        for reports that must be written in check mode too.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
    details:
      - Always the controller, whatever the task's host or C(delegate_to).
options:
  dest:
    description:
      - Directory on the controller. Created with mode 0755 when missing (with its parents).
    type: path
    required: true
  files:
    description:
      - The files to write.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: File name inside O(dest), without a directory part.
        type: str
        required: true
      content:
        description: The whole content of the file.
        type: str
        required: true
  mode:
    description:
      - Mode of the files, as an octal string.
    type: str
    default: "0644"
notes:
  - C(changed) is V(true) when at least one file was (or would be) written.
"""

EXAMPLES = r"""
- name: Write the report of the host on the controller
  libsys.onprem.report_files:
    dest: "{{ playbook_dir }}/reports"
    files:
      - name: "{{ inventory_hostname }}.json"
        content: "{{ report | ansible.builtin.to_nice_json }}\n"
      - name: "{{ inventory_hostname }}.md"
        content: "{{ lookup('ansible.builtin.template', 'report.md.j2') }}"
"""

RETURN = r"""
written:
  description: The files written (or, in check mode, that would be), as paths on the controller.
  returned: always
  type: list
  elements: str
  sample: [/srv/ansible/reports/onprem1.json]
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402 (after the documentation)


def main():
    # The same options as documented; the work is done by the action plugin on the controller.
    module = AnsibleModule(
        argument_spec=dict(
            dest=dict(type="path", required=True),
            files=dict(
                type="list",
                elements="dict",
                required=True,
                options=dict(name=dict(type="str", required=True), content=dict(type="str", required=True)),
            ),
            mode=dict(type="str", default="0644"),
        ),
        supports_check_mode=True,
    )
    module.fail_json(msg="report_files writes on the controller: run it through its action plugin")


if __name__ == "__main__":
    main()
