# kvserver: multi-stage build, small non-root runtime image.
#   docker build -t kvserver .
#   docker run -p 8080:8080 -v kvdata:/data kvserver
FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p kvserver

FROM debian:bookworm-slim
# curl only for the health check below.
RUN apt-get update && apt-get install -y --no-install-recommends curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin kv \
    && mkdir -p /data && chown kv:kv /data
COPY --from=build /src/target/release/kvserver /usr/local/bin/kvserver
USER kv
VOLUME ["/data"]
EXPOSE 8080
ENV KV_LISTEN=0.0.0.0:8080 \
    KV_DATA_DIR=/data \
    RUST_LOG=info
HEALTHCHECK --interval=10s --timeout=2s CMD ["curl", "-fsS", "http://127.0.0.1:8080/healthz"]
ENTRYPOINT ["/usr/local/bin/kvserver"]
