# syntax=docker/dockerfile:1
# Herald: one image for every role. The role is the container's argument, read by
# scripts/entrypoint.sh (gateway, users, templates, email-worker, push-worker,
# maintenance-worker, scheduler, migrate), the same way in docker-compose.yml and in the Helm chart.
#
#   docker build -t herald .
#   docker run --rm -e JWT_SECRET=... herald gateway

ARG PYTHON_IMAGE=python:3.11-slim

# ---- builder: a virtual environment with Herald's dependencies, nothing else ----------------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
# Only pyproject.toml first, so the dependency layer is rebuilt only when the dependencies change.
# The runtime dependencies (not the [dev] extra) are read from it with tomllib and installed as
# plain wheels; Herald's own code is not pip-installed but copied to /app and run from there (see
# below), which keeps web/common/static/* and every other data file where the code expects
# it, exactly as in the editable install developers use.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > requirements.txt \
    && pip install --upgrade pip \
    && pip install -r requirements.txt

# ---- runtime ---------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="herald" \
      org.opencontainers.image.description="Herald notification system: gateway, services, workers, scheduler and migrations in one image"

# A fixed, non-root uid/gid (10001) that the Helm chart's securityContext names too.
RUN groupadd --system --gid 10001 herald \
    && useradd --system --uid 10001 --gid herald --home-dir /app --shell /usr/sbin/nologin herald

COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
COPY --chown=root:root . /app
# Compile the bytecode now: the root filesystem is read-only under Kubernetes, so the processes
# could not write __pycache__ at run time (and would pay the compile cost on every start).
RUN python -m compileall -q /app \
    && chmod 0755 /app/scripts/entrypoint.sh

# PYTHONPATH=/app: `dramatiq actors` and `periodiq actors` import the `actors` package from the
# source tree, as `python -m web.gateway` does from the working directory.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOST=0.0.0.0 \
    TZ=UTC

# The code is owned by root and only readable by the runtime user; processes write nowhere but
# /tmp (dramatiq's Prometheus middleware keeps its multiprocess files there).
USER 10001:10001

# gateway, users, templates, and the workers' metrics.
EXPOSE 8000 8001 8002 9191

# No HEALTHCHECK here: the check depends on the role (an HTTP /health on 8000-8002 for the web
# services, none for the workers and the scheduler); docker-compose.yml and the Helm chart
# declare it per role.
ENTRYPOINT ["/app/scripts/entrypoint.sh"]
CMD ["gateway"]
