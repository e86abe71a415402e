# Build: a release binary with everything (migrations, web assets) embedded.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock clippy.toml ./
COPY src ./src
COPY migrations ./migrations
COPY web ./web
RUN cargo build --release --locked && strip target/release/tokenvault

# Run: a small image, an unprivileged user, no PostgreSQL inside
# (replicas share one server through DATABASE_URL).
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home /var/lib/tokenvault --create-home tokenvault
COPY --from=build /src/target/release/tokenvault /usr/local/bin/tokenvault
USER tokenvault
ENV TOKENVAULT_BIND=0.0.0.0:8080 \
    TOKENVAULT_DATA_DIR=/var/lib/tokenvault \
    TOKENVAULT_LOG_FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD curl -fsS http://127.0.0.1:8080/readyz || exit 1
ENTRYPOINT ["tokenvault"]
CMD ["serve"]
