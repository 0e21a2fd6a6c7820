#!/bin/bash
# Build localhost/libsys-onprem/sanity:13 (images/Containerfile.sanity) on top of the Debian 13
# image of tools/build-images.sh. Kept apart from that script so that changing this image
# does not rebuild the others. An image whose recipe label matches is kept.
set -euo pipefail

readonly HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly RECIPE="${HERE}/../images/Containerfile.sanity"
readonly IMAGE=localhost/libsys-onprem/sanity:13
readonly BASE=localhost/libsys-onprem/debian:13
readonly LABEL=org.libsys.onprem.recipe

base_id=$(podman image inspect --format '{{.Id}}' "$BASE" 2>/dev/null) || {
  echo "[images] ${BASE} is missing: run tools/build-images.sh first" >&2
  exit 2
}
want=$(cat "${BASH_SOURCE[0]}" "$RECIPE" <(printf '%s' "$base_id") | sha256sum | cut -c1-16)
have=$(podman image inspect --format "{{ index .Labels \"${LABEL}\" }}" "$IMAGE" 2>/dev/null || true)
if [[ "$have" == "$want" ]]; then
  echo "[images] ${IMAGE} is up to date" >&2
  exit 0
fi
echo "[images] building ${IMAGE}" >&2
podman build --quiet --pull=never --build-arg "BASE=${BASE}" --label "${LABEL}=${want}" \
  -t "$IMAGE" -f "$RECIPE" "$(dirname "$RECIPE")" >/dev/null
echo "[images] built ${IMAGE}" >&2
