# syntax=docker/dockerfile:1
# Two images from one file:
#   docker build --target agent  -t localhost/cloudmon/monitor:0.1.0 .
#   docker build --target server -t localhost/cloudmon/monitor-api:0.1.0 .
# ./deploy runs these with whichever engine it finds.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# The package and its dependencies as wheels; nothing from this stage but /wheels is kept.
# Where the package registry is reached through a proxy with a certificate of its own, its
# CA bundle is passed in for the build as the secret pip-ca (never kept in an image).
FROM ${PYTHON_IMAGE} AS wheels
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN --mount=type=secret,id=pip-ca \
    if [ -s /run/secrets/pip-ca ]; then export PIP_CERT=/run/secrets/pip-ca; fi \
    && pip wheel --no-cache-dir --wheel-dir /wheels .

# crictl for the agent's crictl metadata source, into /opt/crictl; the checksums are those
# of the cri-tools release archives (kubernetes-sigs/kubespray, checksums.yml). It comes
# from GitHub: build with CRICTL_VERSION empty where GitHub cannot be reached, for an agent
# without it (README: "Images").
FROM ${PYTHON_IMAGE} AS crictl
ARG TARGETARCH
ARG CRICTL_VERSION=1.35.0
ARG CRICTL_SHA256_AMD64=2e141e5b22cb189c40365a11807d69b76b9b3caced89fac2f4ec879408ce2177
ARG CRICTL_SHA256_ARM64=519071de89b64c43e2a1661bb5489c6c3fd5e9e5fcef75e50e542b0c891f1118
RUN mkdir -p /opt/crictl && [ -z "$CRICTL_VERSION" ] || python -c 'import hashlib, io, os, platform, tarfile, urllib.request; \
arch = os.environ.get("TARGETARCH") or {"x86_64": "amd64", "aarch64": "arm64"}[platform.machine()]; \
version = os.environ["CRICTL_VERSION"]; \
url = f"https://github.com/kubernetes-sigs/cri-tools/releases/download/v{version}/crictl-v{version}-linux-{arch}.tar.gz"; \
data = urllib.request.urlopen(url, timeout=120).read(); \
digest = hashlib.sha256(data).hexdigest(); \
expected = os.environ[f"CRICTL_SHA256_{arch.upper()}"]; \
assert digest == expected, f"{url}: sha256 {digest}, expected {expected}"; \
tarfile.open(fileobj=io.BytesIO(data)).extract("crictl", "/opt/crictl", filter="data")'

# The runtime: the wheels installed into a venv by the base image's pip, without
# pip in the venv and without the wheels left behind; no compiler is ever installed.
FROM ${PYTHON_IMAGE} AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/cloudmon/bin:$PATH
RUN --mount=type=bind,from=wheels,source=/wheels,target=/wheels \
    python -m venv --without-pip /opt/cloudmon \
    && pip --python /opt/cloudmon/bin/python install --no-cache-dir --no-index \
        --find-links /wheels cloudmon \
    && cloudmon --help >/dev/null
ENTRYPOINT ["cloudmon"]
ARG VERSION=0.1.0
LABEL org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.vendor="cloudmon"

# The node agent. It runs as the user the DaemonSet gives it (manifests/monitor.yaml). It
# has no port: it touches a health file after every cycle, and is healthy while that is recent.
FROM runtime AS agent
COPY --from=crictl /opt/crictl/ /usr/local/bin/
LABEL org.opencontainers.image.title="cloudmon agent" \
      org.opencontainers.image.description="Measures a node and its pods from /proc and cgroups"
ENV CLOUDMON_HEALTH_FILE=/tmp/cloudmon-agent-healthy
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["cloudmon", "health", "--max-age", "60"]
CMD ["agent"]

# The API server: non-root, its SQLite file on the volume at /data.
FROM runtime AS server
RUN groupadd --system --gid 10001 cloudmon \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /data cloudmon \
    && install -d -o 10001 -g 10001 -m 0750 /data
USER 10001:10001
VOLUME ["/data"]
EXPOSE 8080
LABEL org.opencontainers.image.title="cloudmon server" \
      org.opencontainers.image.description="Stores cloudmon samples and serves them over REST"
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]
CMD ["server", "--host", "0.0.0.0", "--port", "8080", "--storage", "sqlite:////data/cloudmon.db"]
