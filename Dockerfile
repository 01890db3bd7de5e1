# syntax=docker/dockerfile:1
# Multi-stage: build a venv with the whole stack, then copy it into a slim runtime image that runs as non-root.
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN apt-get update && apt-get install -y --no-install-recommends build-essential && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY core core
COPY agent agent
COPY tools tools
COPY trading trading
COPY models models
COPY knowledge knowledge
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --upgrade pip setuptools wheel \
 && /opt/venv/bin/pip install --extra-index-url https://download.pytorch.org/whl/cpu .

FROM python:3.11-slim AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    ANONYMIZED_TELEMETRY=False \
    DATA_DIR=/data \
    HOST=0.0.0.0 \
    PORT=8000
RUN useradd --create-home --uid 10001 desk && mkdir -p /data && chown desk:desk /data
COPY --from=build /opt/venv /opt/venv
USER desk
WORKDIR /home/desk
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4).status == 200 else 1)"
CMD ["crypto-agent", "serve", "--host", "0.0.0.0", "--port", "8000"]
