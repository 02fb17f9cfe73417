#!/bin/sh
# Herald's container entrypoint: one image, the role chosen by the first argument.
# The commands are the README's ("Deploying"); `exec` makes the role the container's
# main process, so it receives SIGTERM from `docker stop` and Kubernetes directly.
# Arguments after the role are passed on (e.g. `email-worker --verbose`).
set -eu

usage() {
    cat >&2 <<'USAGE'
usage: entrypoint.sh ROLE [ARGS...]

roles:
  gateway              API gateway (python -m web.gateway), port GATEWAY_PORT [8000]
  users                user service (python -m web.users), port USERS_PORT [8001]
  templates            template service (python -m web.templates), port TEMPLATES_PORT [8002]
  email-worker         dramatiq actors --queues email.queue
  push-worker          dramatiq actors --queues push.queue
  maintenance-worker   dramatiq actors --queues maintenance.queue
  webhook-worker       dramatiq actors --queues webhooks.queue
  scheduler            periodiq actors (run exactly one)
  migrate              python -m scripts.migrate (idempotent)
  run CMD [ARGS...]    any other command in the image, e.g. `run python -m scripts.dlq replay --all`

workers: WORKER_PROCESSES [2] processes with WORKER_THREADS [8] threads each.
USAGE
}

if [ "$#" -lt 1 ]; then
    usage
    exit 64  # EX_USAGE
fi

role=$1
shift

# Dramatiq's own default is one process per CPU of the *node*, which in a container with a CPU
# limit is far too many; a small fixed default that the deployment tunes is safer.
processes=${WORKER_PROCESSES:-2}
threads=${WORKER_THREADS:-8}

# Workers serve their metrics on 9191 through dramatiq's Prometheus middleware, which collects every
# worker process's samples from one multiprocess directory; prometheus-client reads the variable at
# import, so it is set (and emptied of a previous run's files) before the worker starts.
case "$role" in *-worker)
    export dramatiq_prom_db="${dramatiq_prom_db:-/tmp/dramatiq-prometheus}"
    export PROMETHEUS_MULTIPROC_DIR="$dramatiq_prom_db"
    rm -rf "$dramatiq_prom_db" && mkdir -p "$dramatiq_prom_db" ;;
esac

case "$role" in
    gateway)            exec python -m web.gateway "$@" ;;
    users)              exec python -m web.users "$@" ;;
    templates)          exec python -m web.templates "$@" ;;
    email-worker)       exec dramatiq actors --queues email.queue --processes "$processes" --threads "$threads" "$@" ;;
    push-worker)        exec dramatiq actors --queues push.queue --processes "$processes" --threads "$threads" "$@" ;;
    maintenance-worker) exec dramatiq actors --queues maintenance.queue --processes "$processes" --threads "$threads" "$@" ;;
    webhook-worker)     exec dramatiq actors --queues webhooks.queue --processes "$processes" --threads "$threads" "$@" ;;
    scheduler)          exec periodiq actors "$@" ;;
    migrate)            exec python -m scripts.migrate "$@" ;;
    run)
        if [ "$#" -lt 1 ]; then usage; exit 64; fi
        exec "$@" ;;
    -h|--help|help)     usage; exit 0 ;;
    *)
        echo "entrypoint.sh: unknown role: $role" >&2
        usage
        exit 64 ;;
esac
