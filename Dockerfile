# syntax=docker/dockerfile:1
#
# The `crm` binary in a small runtime image. Build with BuildKit (the default of Docker 23+ and of
# `docker compose`):
#
#     docker build -t abetworks-crm .
#     docker run -p 8080:8080 -e CRM_JWT_SECRET=… abetworks-crm     # SQLite in the volume
#
# The image runs `crm serve`, which applies pending migrations before it listens. Any other
# `crm` command runs the same way: `docker run --rm -it abetworks-crm org create --name Acme`.
# Configuration is by environment: every variable is listed in `.env.example`.
#
# Not exercised by a container engine where this project is developed: `.ci/deploy-check`
# lints it statically (hadolint and the project's own rules).

# ---- builder: the release binary ------------------------------------------------------------
# The toolchain is pinned to a release at least the workspace's `rust-version`.
FROM rust:1.95.0-slim-bookworm AS builder
WORKDIR /build
COPY . .
# The crates.io index, downloaded crates and the target directory stay in BuildKit caches
# between builds, so a change to the sources rebuilds the workspace crates only.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/build/target \
    cargo build --release --locked -p crm-cli \
    && install -D -m 0755 target/release/crm /out/crm

# ---- runtime: the binary, CA certificates and an unprivileged user --------------------------
FROM debian:bookworm-slim AS runtime
# The CA bundle from the builder, for TLS that reads the system store (e.g. a database URL with
# `sslrootcert=/etc/ssl/certs/ca-certificates.crt`); no package manager runs in this stage.
COPY --from=builder /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=builder /out/crm /usr/local/bin/crm
# A fixed, unprivileged uid that owns only the data directory (SQLite's default place).
RUN groupadd --system --gid 10001 crm \
    && useradd --system --uid 10001 --gid crm --home-dir /var/lib/crm --no-create-home \
        --shell /usr/sbin/nologin crm \
    && install -d -o crm -g crm -m 0750 /var/lib/crm
USER 10001:10001
WORKDIR /var/lib/crm
VOLUME ["/var/lib/crm"]
ENV CRM_LISTEN=0.0.0.0 \
    PORT=8080 \
    DATABASE_URL=sqlite:///var/lib/crm/crm.db
EXPOSE 8080
# `/healthz` answers 200 while the process serves. The image has no curl: bash speaks HTTP/1.0
# over /dev/tcp and checks the status line.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/\"${PORT:-8080}\" && printf 'GET /healthz HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]
# `crm serve` by default (SIGTERM drains in-flight requests); `docker run IMAGE <command>` runs
# any other `crm` command.
ENTRYPOINT ["/usr/local/bin/crm"]
CMD ["serve"]
