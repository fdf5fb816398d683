# One image with every binary: continuity-ingest, continuity-matcher, continuity-reporter and
# the continuity command line. Each deployment runs one of them.
FROM rust:1-bookworm AS build
WORKDIR /src
# librdkafka is built from source by rdkafka-sys.
RUN apt-get update && apt-get install -y --no-install-recommends cmake && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cargo build --release --locked \
      --bin continuity-ingest --bin continuity-matcher --bin continuity-reporter --bin continuity

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* && useradd --system --uid 10001 continuity
COPY --from=build /src/target/release/continuity-ingest /src/target/release/continuity-matcher \
     /src/target/release/continuity-reporter /src/target/release/continuity /usr/local/bin/
USER 10001
