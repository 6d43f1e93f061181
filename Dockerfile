# One image, two programs: `petcd` (the default, for EtcdCluster member pods) and `petcd-operator`
# (the operator Deployment runs it with `command: ["petcd-operator"]`).
ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY node ./node
COPY operator ./operator
# Wheels for the project and every dependency; the runtime stage installs them without a compiler.
RUN pip wheel --no-cache-dir --wheel-dir /wheels ".[operator]"

FROM python:${PYTHON_VERSION}-slim-bookworm
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="petcd" \
      org.opencontainers.image.description="An etcd-compatible key-value store in Python (petcd) and its Kubernetes operator (petcd-operator)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.vendor="petcd"
RUN groupadd --system --gid 10001 petcd \
    && useradd --system --uid 10001 --gid petcd --home-dir /var/lib/etcd --shell /usr/sbin/nologin petcd \
    && mkdir -p /var/lib/etcd \
    && chown petcd:petcd /var/lib/etcd
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links=/wheels "petcd[operator]==${VERSION}" \
    && rm -rf /wheels
USER 10001:10001
WORKDIR /var/lib/etcd
# 2379 clients, 2380 peers; 8080 operator metrics, 8081 operator liveness
EXPOSE 2379 2380 8080 8081
ENTRYPOINT ["petcd"]
CMD []
