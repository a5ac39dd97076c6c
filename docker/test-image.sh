#!/usr/bin/env bash
# Builds docker/Dockerfile unchanged with podman, runs the image the way an operator would and checks
# what they would notice; then removes its containers and images (the locally made base stays cached).
#
# Needs root on Debian/Ubuntu (installs podman, buildah, runc, debootstrap with apt when missing).
# Exit codes: 0 all checks passed, 1 a check failed, 3 this machine cannot run containers.
# Writes .container-results.json ({passed, failed, cannot_run, timings}) for .ci/run.
#
# Env: CONTAINER_SIZE_BUDGET_MB (default 400), KEEP_IMAGE=1 keeps the built image (tag printed).
set -uo pipefail
cd "$(dirname "$0")/.."
LOGS=${TMPDIR:-/tmp}/modelplane-container-logs
mkdir -p "$LOGS"

SIZE_BUDGET_MB=${CONTAINER_SIZE_BUDGET_MB:-400}
# The app's default server.shutdown_drain_s; podman stop must finish within it (plus start-up slack
# for the signal to arrive and Nest to close), never by the SIGKILL that follows -t.
DRAIN_BOUND_S=10
RESULTS=.container-results.json
RUN_ID="mp-test-$$"
IMAGE="localhost/modelplane:${RUN_ID}"
CONTAINER="${RUN_ID}"
VOLUME="${RUN_ID}-data"
# crun fails on hybrid-cgroup hosts ("cgroups in hybrid mode not supported"); runc works on both.
PODMAN=(podman --runtime runc)
# podman's inherited defaults can be below what Node and llama.cpp's thread pool need.
ULIMITS=(--ulimit nofile=20000:20000 --ulimit nproc=32768:32768)

passed=0
failed=0
declare -a timings=()
t0=$(date +%s)

log() { echo "[container] $*"; }
pass() {
  passed=$((passed + 1))
  log "ok   $*"
}
fail() {
  failed=$((failed + 1))
  log "FAIL $*"
}
check() { # check "<what>" <command...>
  local what=$1
  shift
  if "$@"; then pass "$what"; else fail "$what"; fi
}
now_ms() { date +%s%3N; }

write_results() { # write_results <cannot_run reason or empty>
  local reason=${1:-}
  node -e '
    const [passed, failed, reason, timings] = process.argv.slice(1);
    const t = Object.fromEntries(timings.split(" ").filter(Boolean).map((kv) => kv.split("=")).map(([k, v]) => [k, Number(v)]));
    require("fs").writeFileSync(process.argv[5], JSON.stringify({ passed: +passed, failed: +failed, cannot_run: reason || null, timings_s: t }, null, 2) + "\n");
  ' "$passed" "$failed" "$reason" "${timings[*]:-}" "$RESULTS"
}

cannot_run() {
  log "CANNOT RUN CONTAINERS HERE: $*"
  write_results "$*"
  exit 3
}

cleanup() {
  "${PODMAN[@]}" rm -f -t 0 "$CONTAINER" >/dev/null 2>&1 || true
  "${PODMAN[@]}" volume rm -f "$VOLUME" >/dev/null 2>&1 || true
  if [ "${KEEP_IMAGE:-}" != 1 ]; then "${PODMAN[@]}" rmi -f "$IMAGE" >/dev/null 2>&1 || true; fi
  # Build-stage layers are dangling once the final image exists; they hold ~2 GB of dev dependencies.
  "${PODMAN[@]}" image prune -f >/dev/null 2>&1 || true
}

# ---------------------------------------------------------------------------------------------
# 1. Can this machine run containers? Install what is missing.
[ "$(uname -s)" = Linux ] || cannot_run "not Linux ($(uname -s))"
[ "$(id -u)" = 0 ] || cannot_run "needs root (rootful podman; makes a debootstrap base)"
missing=()
for tool in podman buildah runc debootstrap; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
  command -v apt-get >/dev/null || cannot_run "missing ${missing[*]} and no apt-get to install them"
  log "installing with apt: ${missing[*]}"
  start=$(date +%s)
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q "${missing[@]}" ca-certificates >"$LOGS/apt.log" 2>&1 ||
    { apt-get update -q >>"$LOGS/apt.log" 2>&1 && apt-get install -y -q "${missing[@]}" ca-certificates >>"$LOGS/apt.log" 2>&1; } ||
    cannot_run "apt-get install ${missing[*]} failed (see $LOGS/apt.log)"
  timings+=("apt_install=$(($(date +%s) - start))")
fi
avail_kb=$(df -Pk / | awk 'NR==2 {print $4}')
[ "$avail_kb" -ge $((4 * 1024 * 1024)) ] || cannot_run "only $((avail_kb / 1024)) MB free on /; a build needs ~3 GB"
"${PODMAN[@]}" info >"$LOGS/podman-info.log" 2>&1 || cannot_run "podman info failed (see $LOGS/podman-info.log)"
trap cleanup EXIT

# ---------------------------------------------------------------------------------------------
# 2. The local base image: debootstrap minbase + this machine's Node and npm, tagged as the
# Dockerfile's FROM so the Dockerfile builds unchanged with --pull=never. Cached by content: the
# tag carries a hash of everything that goes into it.
FROM_IMAGE=$(awk 'toupper($1) == "FROM" {print $2; exit}' docker/Dockerfile)
# The supported Node major (.nvmrc), from the npm registry when this machine has another one.
node_dir=$(bash scripts/ensure-node.sh) || cannot_run "no Node.js $(cat .nvmrc) to make the base from"
PATH="$node_dir:$PATH"
node_bin=$(command -v node)
npm_dir=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
node_version=$(node --version)
from_major=$(echo "$FROM_IMAGE" | sed -E 's/.*:([0-9]+).*/\1/')
host_major=$(echo "$node_version" | sed -E 's/^v([0-9]+).*/\1/')
[ "$from_major" = "$host_major" ] ||
  cannot_run "Dockerfile FROM $FROM_IMAGE is Node $from_major but this machine has Node $node_version to make the base from"
SUITE=bookworm
MIRROR=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null)
MIRROR=${MIRROR:-http://deb.debian.org/debian}
# An intercepting proxy re-signs HTTPS: npm ci inside the build needs this machine's CA bundle. It
# goes only into this locally made test base, never into docker/Dockerfile or a published image.
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
BASE_RECIPE=3 # bump when the recipe below changes
base_key=$(
  {
    echo "$BASE_RECIPE $SUITE $MIRROR $node_version $(npm --version)"
    sha256sum "$node_bin" "$CA_BUNDLE" | cut -d' ' -f1
  } | sha256sum | cut -c1-16
)
BASE="localhost/modelplane-base:${base_key}"
if "${PODMAN[@]}" image exists "$BASE"; then
  log "base $BASE cached (Node $node_version, $SUITE minbase)"
  timings+=("base=0")
else
  log "making base $BASE: debootstrap --variant=minbase $SUITE from $MIRROR + Node $node_version"
  start=$(date +%s)
  rootfs=$(mktemp -d /var/tmp/modelplane-rootfs.XXXXXX)
  debootstrap --variant=minbase "$SUITE" "$rootfs" "$MIRROR" >"$LOGS/debootstrap.log" 2>&1 ||
    {
      rm -rf "$rootfs"
      cannot_run "debootstrap failed (see $LOGS/debootstrap.log)"
    }
  # The same layout and user as the official node image: node in /usr/local/bin, user node = 1000.
  install -m 0755 "$node_bin" "$rootfs/usr/local/bin/node"
  mkdir -p "$rootfs/usr/local/lib/node_modules"
  cp -a "$npm_dir" "$rootfs/usr/local/lib/node_modules/npm"
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
  chroot "$rootfs" groupadd --gid 1000 node
  chroot "$rootfs" useradd --uid 1000 --gid node --shell /bin/bash --create-home node
  install -m 0644 "$CA_BUNDLE" "$rootfs/usr/local/share/modelplane-test-ca.crt"
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/*
  tar -C "$rootfs" -c . | "${PODMAN[@]}" import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV NODE_EXTRA_CA_CERTS=/usr/local/share/modelplane-test-ca.crt' \
    --change "ENV NODE_VERSION=${node_version#v}" \
    --change 'CMD ["node"]' - "$BASE" >/dev/null ||
    {
      rm -rf "$rootfs"
      cannot_run "podman import of the base failed"
    }
  rm -rf "$rootfs"
  timings+=("base=$(($(date +%s) - start))")
  log "base made in $(($(date +%s) - start)) s"
fi
"${PODMAN[@]}" tag "$BASE" "$FROM_IMAGE"

# ---------------------------------------------------------------------------------------------
# 3. Build the project's Dockerfile as it is.
log "building docker/Dockerfile as $IMAGE"
start=$(date +%s)
# The build's npm ci reads this machine's npm cache through an overlay (writes are thrown away):
# after the suite's own npm ci it is warm, which saves minutes of downloads; npm checks integrity.
npm_cache=$(npm config get cache 2>/dev/null)
cache_mount=()
[ -d "$npm_cache/_cacache" ] && cache_mount=(-v "$npm_cache:/root/.npm:O")
version=$(node -p 'require("./package.json").version')
# The target platform as a build argument, as BuildKit and `buildah --platform` set it: the Dockerfile's
# prune keeps that architecture's runtimes (without it, it falls back to the build's own `node` arch).
case "$(node -p process.arch)" in
  x64) target_arch=amd64 ;; arm) target_arch=arm ;; *) target_arch=$(node -p process.arch) ;;
esac
if "${PODMAN[@]}" build --pull=never --format docker "${ULIMITS[@]}" "${cache_mount[@]}" \
  --build-arg "TARGETARCH=$target_arch" --build-arg "VERSION=$version" -f docker/Dockerfile -t "$IMAGE" . >"$LOGS/build.log" 2>&1; then
  timings+=("build=$(($(date +%s) - start))")
  pass "image builds ($(($(date +%s) - start)) s)"
else
  fail "image build (last lines of $LOGS/build.log below)"
  tail -n 30 "$LOGS/build.log"
  write_results ""
  exit 1
fi

# ---------------------------------------------------------------------------------------------
# 4. Image metadata an operator relies on.
inspect() { "${PODMAN[@]}" image inspect --format "$1" "$IMAGE"; }
size=$(inspect '{{.Size}}')
size_mb=$((size / 1000 / 1000))
timings+=("size_mb=$size_mb")
check "image size ${size_mb} MB <= budget ${SIZE_BUDGET_MB} MB" [ "$size_mb" -le "$SIZE_BUDGET_MB" ]
check "HEALTHCHECK on /health/live" grep -q '/health/live' <<<"$(inspect '{{json .Config.Healthcheck}}')"
check "STOPSIGNAL SIGTERM" [ "$(inspect '{{.Config.StopSignal}}')" = SIGTERM ]
check "runs as user node, not root" [ "$(inspect '{{.Config.User}}')" = node ]
check "build got TARGETARCH=$target_arch" bash -c '! grep -q "missing \"TARGETARCH\" build argument" "$1"' _ "$LOGS/build.log"
label() { inspect "{{index .Config.Labels \"org.opencontainers.image.$1\"}}"; }
license=$(node -p 'require("./package.json").license')
labels_ok() { [ -n "$(label source)" ] && [ "$(label version)" = "$version" ] && [ "$(label licenses)" = "$license" ]; }
check "OCI labels: source $(label source), version $(label version) = $version, licenses $(label licenses) = $license" labels_ok
check "declares the /app/data volume" grep -q '/app/data' <<<"$(inspect '{{json .Config.Volumes}}')"
# What the Dockerfile itself puts in the image must not carry the test base's proxy CA or a token:
# the image's environment, less what the locally made base brings (its CA for the proxy here).
image_env=$(inspect '{{range .Config.Env}}{{println .}}{{end}}')
base_env=$("${PODMAN[@]}" image inspect --format '{{range .Config.Env}}{{println .}}{{end}}' "$BASE")
added_env=$(grep -vxF -f <(grep -v '^$' <<<"$base_env") <<<"$image_env" | tr '\n' ' ')
check "image environment carries no token, key, secret or password (${image_env//$'\n'/ })" \
  bash -c '! grep -Eiq "(TOKEN|API_KEY|SECRET|PASSWORD)[A-Z_]*=" <<<"$1"' _ "$image_env"
check "the Dockerfile adds no CA override (adds: ${added_env})" bash -c '! grep -q NODE_EXTRA_CA_CERTS <<<"$1"' _ "$added_env"
check "no CA override or token in the Dockerfile text" bash -c '! grep -Eiq "NODE_EXTRA_CA_CERTS|TOKEN=|API_KEY=" docker/Dockerfile'
in_image() { # a throwaway container of the image running a shell command; "ran=<status>" shows it ran at all
  "${PODMAN[@]}" run --rm --no-healthcheck "${ULIMITS[@]}" --entrypoint sh "$IMAGE" -c "$1; echo ran=\$?" 2>"$LOGS/in-image.log"
}
leftovers=$(in_image 'cd /app && ls -d dist/test node_modules/typescript node_modules/node-llama-cpp/llama/gitRelease.bundle \
     node_modules/onnxruntime-node/bin/napi-v*/darwin node_modules/onnxruntime-node/bin/napi-v*/win32 \
     node_modules/@node-llama-cpp/*cuda* node_modules/@node-llama-cpp/*vulkan* \
     node_modules/protobufjs/cli node_modules/swagger-ui-dist 2>/dev/null; true')
check "no dist/test, TypeScript, llama.cpp source bundle, build-time CLIs, Swagger UI, other-platform or GPU runtimes (${leftovers//$'\n'/ })" \
  [ "$leftovers" = ran=0 ]
runtimes=$(in_image 'a=$(node -p process.arch); ls -d /app/node_modules/@node-llama-cpp/linux-$a /app/node_modules/onnxruntime-node/bin/napi-v*/linux/$a >/dev/null')
check "keeps the CPU runtimes for its own arch" [ "$runtimes" = ran=0 ]
nm_mb=$(in_image 'du -sm /app/node_modules | cut -f1' | head -1)
timings+=("node_modules_mb=$nm_mb")

# ---------------------------------------------------------------------------------------------
# 5. Run it: read-only root filesystem, a named data volume, published on loopback only, on a port
# other than the image's default so HEALTHCHECK shows it follows MODELPLANE_PORT.
APP_PORT=8081
port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
url="http://127.0.0.1:${port}"
"${PODMAN[@]}" volume create "$VOLUME" >/dev/null
start_ms=$(now_ms)
if ! "${PODMAN[@]}" run -d --name "$CONTAINER" --read-only -v "$VOLUME:/app/data" -p "127.0.0.1:${port}:${APP_PORT}" \
  "${ULIMITS[@]}" -e MODELPLANE_PORT="$APP_PORT" -e MODELPLANE_ADMIN_TOKEN=container-test-token "$IMAGE" >/dev/null 2>"$LOGS/run.log"; then
  # (run.log also collects podman's complaint that it cannot reach systemd for healthcheck timers.)
  fail "podman run: $(grep -v systemd "$LOGS/run.log")"
  write_results ""
  exit 1
fi

http() { # http <method> <path> [json body] → prints "<status> <content-type> <body>"
  node -e '
    const [method, url, body] = process.argv.slice(1);
    fetch(url, { method, headers: body ? { "content-type": "application/json" } : {}, body: body || undefined,
      signal: AbortSignal.timeout(60000) })
      .then(async (r) => console.log(r.status, (r.headers.get("content-type") ?? "-").replace(/ /g, ""), await r.text()))
      .catch((e) => console.log(0, String(e.cause ?? e)));
  ' "$1" "${url}$2" "${3:-}"
}
wait_for() { # wait_for <path> <status> <seconds>
  local deadline=$(($(date +%s) + $3))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    [ "$(http GET "$1" | cut -d' ' -f1)" = "$2" ] && return 0
    "${PODMAN[@]}" container exists "$CONTAINER" && [ "$("${PODMAN[@]}" inspect -f '{{.State.Running}}' "$CONTAINER")" = true ] || return 1
    sleep 0.5
  done
  return 1
}

check "/health/live answers 200" wait_for /health/live 200 60
timings+=("live_s=$((($(now_ms) - start_ms) / 1000))")
check "/health/ready answers 200 once the demo models are loaded" wait_for /health/ready 200 120
timings+=("ready_s=$((($(now_ms) - start_ms) / 1000))")
chat=$(http POST /v1/chat/completions '{"model":"demo-chat","messages":[{"role":"user","content":"hi"}],"max_tokens":4}')
check "demo chat answers 200 with a completion" grep -q '^200 .*"chat.completion"' <<<"$chat"
img=$(http POST /v1/images/generations '{"model":"demo-image","prompt":"a boat","size":"64x64","steps":1,"seed":1}')
check "demo image answers 200 with b64 data" grep -q '^200 .*"b64_json"' <<<"$img"
loaded=$(http GET /api/models/loaded)
check "/api/models/loaded lists demo-chat and demo-image" bash -c 'grep -q "^200 " <<<"$1" && grep -q "\"demo-chat\"" <<<"$1" && grep -q "\"demo-image\"" <<<"$1"' _ "$loaded"
# The dashboard's files are in the image (dist), not only in a checkout's src/.
page=$(http GET /)
check "/ answers 200 text/html (the dashboard)" grep -q '^200 text/html' <<<"$page"
check "/dashboard/app.js answers 200" grep -q '^200 text/javascript' <<<"$(http GET /dashboard/app.js)"
metrics=$(http GET /metrics)
check "/metrics answers 200 with modelplane and process metrics" bash -c 'grep -q "^200 text/plain" <<<"$1" && grep -q "modelplane_requests_total" <<<"$1" && grep -q "process_resident_memory_bytes" <<<"$1"' _ "$metrics"
bad=$(http POST /v1/chat/completions '{"messages":[]}')
check "bad input gets a 4xx error envelope" grep -Eq '^4[0-9][0-9] .*"error"' <<<"$bad"

exec_in() { "${PODMAN[@]}" exec "$CONTAINER" "$@"; }
check "process runs as a non-root uid ($(exec_in id -u 2>/dev/null))" [ "$(exec_in id -u 2>/dev/null)" != 0 ] 
check "root filesystem is read-only" bash -c '! "$@" sh -c "touch /app/probe" 2>/dev/null' _ "${PODMAN[@]}" exec "$CONTAINER"
check "data volume is writable and holds the generated demo models" exec_in sh -c 'touch /app/data/probe && rm /app/data/probe && ls /app/data/demo/demo-chat.gguf >/dev/null'
check "HEALTHCHECK runs healthy on the configured port (MODELPLANE_PORT=$APP_PORT)" "${PODMAN[@]}" healthcheck run "$CONTAINER"

# ---------------------------------------------------------------------------------------------
# 6. SIGTERM: podman stop sends STOPSIGNAL, then SIGKILL after -t; a clean drain exits 0 well before.
start_ms=$(now_ms)
"${PODMAN[@]}" stop -t $((DRAIN_BOUND_S + 5)) "$CONTAINER" >/dev/null 2>>"$LOGS/run.log"
stop_ms=$(($(now_ms) - start_ms))
timings+=("stop_ms=$stop_ms")
exit_code=$("${PODMAN[@]}" inspect -f '{{.State.ExitCode}}' "$CONTAINER")
check "podman stop: exit code 0 (got $exit_code)" [ "$exit_code" = 0 ]
check "podman stop: done in ${stop_ms} ms, within the ${DRAIN_BOUND_S} s drain bound" [ "$stop_ms" -le $((DRAIN_BOUND_S * 1000)) ]
check "logs say SIGTERM was drained" grep -q 'SIGTERM received' <<<"$("${PODMAN[@]}" logs "$CONTAINER" 2>&1)"

timings+=("total=$(($(date +%s) - t0))")
write_results ""
log "${passed} passed, ${failed} failed (timings: ${timings[*]})"
[ "$failed" -eq 0 ]
