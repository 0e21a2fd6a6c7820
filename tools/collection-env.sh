# Sourced by tools/run-tests.sh, tools/lab.sh and tools/run-benchmarks.sh (ROOT set by the
# caller): the working tree is the collection libsys.onprem. Link it where Ansible and
# Python look for it, and put the controller virtualenv first on PATH.
export PATH="${ROOT}/.venv/bin:${PATH}"
export ANSIBLE_COLLECTIONS_PATH="${ROOT}/.build/collections"
export PYTHONPATH="${ANSIBLE_COLLECTIONS_PATH}${PYTHONPATH:+:${PYTHONPATH}}"
mkdir -p "${ANSIBLE_COLLECTIONS_PATH}/ansible_collections/libsys"
ln -sfn "${ROOT}" "${ANSIBLE_COLLECTIONS_PATH}/ansible_collections/libsys/onprem"
