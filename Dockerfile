# One image for every kshop function: FUNCTION picks the app at start.
#
#   podman build -t kshop .                       # official python:3.11-slim base
#   podman build --build-arg BASE_IMAGE=localhost/python:3.11-bookworm -t kshop .
#                                                 # machines without a registry (scripts/base-image)
#
# Both stages use the same base, so the virtualenv's interpreter link stays valid.
ARG BASE_IMAGE=docker.io/library/python:3.11-slim

FROM ${BASE_IMAGE} AS builder
ARG UV_VERSION=0.13.9
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    UV_NO_CACHE=1 \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON_PREFERENCE=only-system \
    UV_PROJECT_ENVIRONMENT=/opt/venv \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_SYSTEM_CERTS=1
# uv trusts the system CA store (UV_SYSTEM_CERTS), as pip does, so a build behind
# a TLS-intercepting proxy works once the proxy's CA is in the base image.
RUN python -m pip install --no-compile --root-user-action=ignore "uv==${UV_VERSION}"
WORKDIR /src
# Dependencies first, from the lock file alone: this layer is rebuilt only when
# uv.lock or pyproject.toml change, not on every code edit. Byte-compiling them
# here keeps the import cost off each cold start.
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project --python "$(command -v python3)"
# The code itself is copied, not installed: `python -m functions` runs it from
# /app, and compiling it here means a read-only root filesystem costs nothing.
COPY functions /app/functions
RUN /opt/venv/bin/python -m compileall -q --invalidation-mode checked-hash /app/functions

FROM ${BASE_IMAGE}
LABEL org.opencontainers.image.title="kshop" \
      org.opencontainers.image.description="kshop functions: FUNCTION selects the app" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    PORT=8080
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /app /app
WORKDIR /app
# A numeric user, so Kubernetes' runAsNonRoot can check it without /etc/passwd.
USER 10001:10001
EXPOSE 8080
# Exec form: python is PID 1 and receives SIGTERM itself, so uvicorn drains.
CMD ["python", "-m", "functions"]
