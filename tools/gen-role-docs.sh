#!/bin/bash
# Regenerate the variable tables of the role READMEs from meta/argument_specs.yml (aar-doc),
# between the lines <!-- BEGIN ARGUMENT SPECS --> and <!-- END ARGUMENT SPECS -->.
#   tools/gen-role-docs.sh           rewrite the READMEs
#   tools/gen-role-docs.sh --check   fail when a README is out of date (run by make test)
set -euo pipefail
readonly ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
check=0
[[ "${1:-}" == "--check" ]] && check=1
rc=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for role in "${ROOT}"/roles/*/; do
  name=$(basename "$role")
  readme="${role}README.md"
  [[ -f "${role}meta/argument_specs.yml" ]] || { echo "roles/${name}: no meta/argument_specs.yml"; rc=1; continue; }
  [[ -f "$readme" ]] || { echo "roles/${name}/README.md: missing"; rc=1; continue; }
  grep -q '^<!-- BEGIN ARGUMENT SPECS -->$' "$readme" && grep -q '^<!-- END ARGUMENT SPECS -->$' "$readme" \
    || { echo "roles/${name}/README.md: needs the BEGIN/END ARGUMENT SPECS marker lines"; rc=1; continue; }
  # aar-doc writes "No arguments are defined" for a file it cannot parse: stop instead.
  "${ROOT}/.venv/bin/python" - "${role}meta/argument_specs.yml" <<'PY' || { rc=1; continue; }
import sys
import yaml
try:
    specs = yaml.safe_load(open(sys.argv[1], encoding="utf-8"))["argument_specs"]
    assert specs, "no entry points"
except Exception as error:  # noqa: BLE001 - any reason, one message
    sys.exit("%s: cannot be read (%s)" % (sys.argv[1], str(error).replace("\n", " ")))
PY
  "${ROOT}/.venv/bin/aar-doc" --output-file "${tmp}/${name}.md" --output-template '{{ content }}' \
    --output-mode replace "$role" markdown >/dev/null
  # Keep aar-doc's "Role Arguments" section only (the README has its own prose), one level
  # down so it sits under the README's "## Variables".
  awk '/^## Role Arguments/ { keep = 1; next } /^## / { keep = 0 } keep' "${tmp}/${name}.md" \
    | sed 's/^### Entrypoint: /### Entry point: /' \
    | awk '
        # The validate entry point takes the options of main (a YAML anchor): its prose stays,
        # its tables would repeat main'"'"'s, so they become one line. aar-doc links the shared
        # options to the last entry point'"'"'s tables: point the links at main'"'"'s.
        { gsub(/\(#options-for-validate--/, "(#options-for-main--") }
        /^### Entry point: / { validate = ($0 == "### Entry point: validate"); said = 0 }
        validate && /^(\||#### )/ {
          if (!said) { print "Options: the same as the `main` entry point'"'"'s above."; print ""; said = 1 }
          next
        }
        validate && said && /^$/ { next }
        { print }' >"${tmp}/${name}.table"
  mv "${tmp}/${name}.table" "${tmp}/${name}.md"
  awk -v table="${tmp}/${name}.md" '
    /^<!-- BEGIN ARGUMENT SPECS -->$/ { print; while ((getline line < table) > 0) print line; skip = 1; next }
    /^<!-- END ARGUMENT SPECS -->$/ { skip = 0 }
    !skip { print }
  ' "$readme" >"${tmp}/${name}.new"
  if [[ $check -eq 1 ]]; then
    cmp -s "$readme" "${tmp}/${name}.new" \
      || { echo "roles/${name}/README.md: variable table is out of date; run make docs"; rc=1; }
  else
    cmp -s "$readme" "${tmp}/${name}.new" || { cp "${tmp}/${name}.new" "$readme"; echo "updated roles/${name}/README.md"; }
  fi
done
exit $rc
