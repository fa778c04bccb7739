# One image for every Fashion Pixel service; the build arg APP (or env APP at run time) picks the app.
#   docker build -f docker/service.Dockerfile --build-arg APP=services.segmentation.app:app --build-arg PORT=8080 .
# Only the API code goes in: models are served by the Triton container.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- stage 1: dependencies into a venv (pydensecrf2 is an sdist with C++ code: needs gcc/g++ here only)
FROM ${PYTHON_IMAGE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc g++ \
 && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv && /opt/venv/bin/pip install --no-cache-dir pip==24.3.1
COPY docker/requirements-service.txt requirements.lock /tmp/
# The lock as constraints: indirect dependencies (grpcio, protobuf, scipy...) get the tested versions.
RUN /opt/venv/bin/pip install --no-cache-dir -r /tmp/requirements-service.txt -c /tmp/requirements.lock
# Fill numba's cache for pymatting now (the root filesystem is read-only at run time): a cold cache
# costs the first matting request ~1 min of compiling and the service ~300 MB it keeps. The cache is
# for this CPU's features; on a different CPU numba recompiles in memory.
RUN /opt/venv/bin/python -c "import pymatting"

# --- stage 2: runtime (no compiler, no pip cache, non-root)
FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --no-create-home --home-dir /tmp app
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY services/ services/
COPY fashionpixel/ fashionpixel/
# Byte-compile now: the container runs with a read-only root filesystem.
RUN python -m compileall -q services fashionpixel
USER 10001:10001

# Last, so the layers above are shared by every service's image.
ARG APP=services.segmentation.app:app
ARG PORT=8080
ENV APP=${APP} PORT=${PORT} HOST=0.0.0.0 \
    MALLOC_ARENA_MAX=1
EXPOSE ${PORT}
# Liveness only (slim has no curl); compose checks /readyz, which also needs Triton.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/healthz' % os.environ['PORT'], timeout=2)"]
# exec: uvicorn becomes PID 1 and gets SIGTERM itself, then drains in-flight requests.
CMD ["sh", "-c", "exec uvicorn \"$APP\" --host 0.0.0.0 --port \"$PORT\" --timeout-graceful-shutdown 8 --no-access-log"]
