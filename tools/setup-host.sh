#!/bin/bash
# Prepare a Debian 12 machine (as root) to run the lab and the tests:
#   1. Debian packages (podman, runc, debootstrap, the field's test tools)
#   2. podman settings this kind of host needs (runc, explicit ulimits); harmless elsewhere
#   3. the controller virtualenv (.venv) from pinned requirements
# Every step is idempotent: a second run changes nothing and takes seconds.
#
#   tools/setup-host.sh           packages + podman + .venv
#   tools/setup-host.sh --sanity  also ansible-test: a virtualenv for the oldest core, a
#                                 wheelhouse for the newest (run in a Debian 13 container)
set -euo pipefail

readonly ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly STAMP_DIR="${ROOT}/.build/stamps"
log() { printf '[setup] %s\n' "$*" >&2; }

readonly APT_PACKAGES=(
  podman runc debootstrap uidmap slirp4netns
  git rsync make python3-venv
  nftables openssl openssh-client ssh-audit swaks
)

install_packages() {
  local missing=()
  for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' \
      || missing+=("$pkg")
  done
  if [[ ${#missing[@]} -eq 0 ]]; then
    log "Debian packages present"
    return 0
  fi
  log "installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
}

configure_podman() {
  # crun fails on hosts with hybrid cgroups and containers may not raise rlimits; runc and
  # explicit, modest ulimits work everywhere podman runs.
  local conf=/etc/containers/containers.conf.d/50-libsys-onprem.conf
  local wanted
  wanted=$'# Written by libsys.onprem tools/setup-host.sh\n[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n\n[engine]\nruntime = "runc"\n'
  mkdir -p "$(dirname "$conf")"
  if [[ -f "$conf" && "$(cat "$conf")"$'\n' == "$wanted" ]]; then
    log "podman settings present"
  else
    printf '%s' "$wanted" >"$conf"
    log "wrote $conf"
  fi
  podman info --format '{{.Host.OCIRuntime.Name}}' >/dev/null
  raise_inotify_limit
}

raise_inotify_limit() {
  # Every container's systemd takes several inotify instances; with the kernel's default of
  # 128 per user, the ~20 containers of two scenarios side by side exhaust them and a
  # container's systemd hangs at boot ("Failed to create inotify object: Too many open files").
  local conf=/etc/sysctl.d/50-libsys-onprem.conf wanted=1024
  if [[ "$(sysctl -n fs.inotify.max_user_instances)" -lt "$wanted" ]]; then
    printf '# Written by libsys.onprem tools/setup-host.sh\nfs.inotify.max_user_instances = %d\n' \
      "$wanted" >"$conf"
    sysctl -q -p "$conf"
    log "raised fs.inotify.max_user_instances to ${wanted} ($conf)"
  fi
}

# find_python NAME: a working interpreter for NAME (python3.10, ...). pyenv shims answer
# "command not found" unless that version is selected, so look in pyenv's versions too.
find_python() {
  local name=$1 candidate version=${1#python}
  for candidate in "$(command -v "$name" 2>/dev/null)" \
      "${PYENV_ROOT:-${HOME}/.pyenv}"/versions/"${version}".*/bin/"$name" \
      /usr/bin/"$name" /usr/local/bin/"$name"; do
    [[ -n "$candidate" && -x "$candidate" ]] || continue
    # Never a virtualenv of this checkout (make puts .venv/bin first on PATH): it is about to be
    # recreated. Its interpreter's real path is the base Python it was made from.
    candidate=$(readlink -f "$candidate")
    [[ "$candidate" != "${ROOT}/"* ]] || continue
    if "$candidate" -c 'pass' 2>/dev/null; then
      printf '%s' "$candidate"
      return 0
    fi
  done
  return 1
}

# make_venv DIR PYTHON REQUIREMENTS...: (re)create DIR when the requirement files change.
make_venv() {
  local dir=$1 python=$2; shift 2
  local want stamp="${STAMP_DIR}/$(basename "$dir").sha"
  want=$(cat "$@" | sha256sum | cut -c1-16)
  if [[ -x "${dir}/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    log "virtualenv ${dir#"$ROOT"/} is up to date"
    return 0
  fi
  local interpreter
  if ! interpreter=$(find_python "$python"); then
    log "need ${python} for ${dir#"$ROOT"/}; install it (for example with pyenv) and re-run"
    return 2
  fi
  log "creating ${dir#"$ROOT"/} with ${python} from $*"
  rm -rf "$dir"
  "$interpreter" -m venv "$dir"
  "${dir}/bin/pip" install -q --disable-pip-version-check --upgrade pip
  local args=()
  for req in "$@"; do args+=(-r "$req"); done
  "${dir}/bin/pip" install -q --disable-pip-version-check "${args[@]}"
  mkdir -p "$STAMP_DIR"
  printf '%s' "$want" >"$stamp"
}

# ansible-test bootstraps pip into its virtualenvs with a script it downloads from a host that
# is not reachable here; give it ours (tools/ansible-test-get-pip.py) under the name it caches.
seed_ansible_test_pip_bootstrap() {
  local venv=$1 version cache="${HOME}/.ansible/test/cache"
  mkdir -p "$cache"
  for version in $(grep -ho "pip='[0-9.]*'" \
      "${venv}"/lib/python3*/site-packages/ansible_test/_internal/python_requirements.py \
      | tr -dc "0-9.\n" | sort -u); do
    install -m 0644 "${ROOT}/tools/ansible-test-get-pip.py" "${cache}/get_pip_${version//./_}.py"
  done
}

# make_wheelhouse DIR PYTHON_VERSION REQUIREMENTS: every wheel that ansible-test needs to run
# sanity and unit tests on the ansible-core of REQUIREMENTS under a Python this machine does
# not have (make test runs it in a container without network, from DIR). Downloaded by this
# machine's pip for that Python and this machine's architecture; redone when an input changes.
make_wheelhouse() {
  local dir=$1 version=$2 requirements=$3
  local unit_requirements="${ROOT}/tests/unit/requirements.txt" arch want
  arch=$(uname -m)
  local stamp="${STAMP_DIR}/$(basename "$dir").sha"
  want=$(cat "$requirements" "$unit_requirements" <(printf '%s %s' "$version" "$arch") | sha256sum | cut -c1-16)
  if [[ -d "$dir" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    log "wheelhouse ${dir#"$ROOT"/} is up to date"
    return 0
  fi
  log "downloading the wheels of ${requirements#"$ROOT"/} for Python ${version} into ${dir#"$ROOT"/}"
  rm -rf "$dir"
  mkdir -p "$dir/requirements"
  local pip=("${ROOT}/.venv/bin/pip" download -q --disable-pip-version-check --dest "$dir"
    --only-binary=:all: --implementation cp --python-version "$version"
    --abi "cp${version//./}" --abi abi3 --abi none --platform any)
  local tag
  for tag in manylinux2014 manylinux_2_17 manylinux_2_28 manylinux_2_34; do
    pip+=(--platform "${tag}_${arch}")
  done
  "${pip[@]}" -r "$requirements"
  # ansible-test installs its own pinned requirements (one file per sanity test, the unit
  # tests' and its pip): take the lists from the ansible-core wheel just downloaded.
  "${ROOT}/.venv/bin/python" - "$dir" <<'PYTHON'
import pathlib, re, sys, zipfile

wheelhouse = pathlib.Path(sys.argv[1])
(wheel,) = wheelhouse.glob("ansible_core-*.whl")
with zipfile.ZipFile(wheel) as archive:
    for name in archive.namelist():
        if re.fullmatch(r"ansible_test/_data/requirements/(sanity\..*|units|ansible-test)\.txt", name):
            (wheelhouse / "requirements" / pathlib.PurePath(name).name).write_bytes(archive.read(name))
    source = archive.read("ansible_test/_internal/python_requirements.py").decode()
(wheelhouse / "requirements" / "pip.txt").write_text("pip==%s\n" % re.search(r"pip='([0-9.]+)'", source)[1])
PYTHON
  local args=() file
  for file in "$dir"/requirements/*.txt "$unit_requirements"; do args+=(-r "$file"); done
  "${pip[@]}" "${args[@]}"
  mkdir -p "$STAMP_DIR"
  printf '%s' "$want" >"$stamp"
}

main() {
  [[ $EUID -eq 0 ]] || { log "run as root"; exit 2; }
  install_packages
  configure_podman
  make_venv "${ROOT}/.venv" python3.11 "${ROOT}/requirements/controller.txt"
  if [[ "${1:-}" == "--sanity" ]]; then
    # The oldest core on this machine's own Python; the newest needs a newer Python than
    # Debian 12 has, so it runs in the Debian 13 image (Python 3.13) from a wheelhouse.
    make_venv "${ROOT}/.build/venv-core-oldest" python3.11 "${ROOT}/requirements/sanity-oldest.txt"
    seed_ansible_test_pip_bootstrap "${ROOT}/.build/venv-core-oldest"
    make_wheelhouse "${ROOT}/.build/wheels-core-newest" 3.13 "${ROOT}/requirements/sanity-newest.txt"
  fi
}

main "$@"
