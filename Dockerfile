# One image with every binary: continuity-ingest, continuity-matcher, continuity-reporter,
# continuity-worklist (with the front-end assets under /usr/share/continuity/assets),
# continuity-dev-issuer (local use only) and the continuity command line. Each deployment runs
# one of them.
FROM node:20-bookworm-slim AS assets
WORKDIR /frontend
COPY scripts/frontend/package.json scripts/frontend/package-lock.json scripts/frontend/init.mjs ./
# The same files scripts/install-frontend.sh assembles for the local stack.
RUN npm ci --no-audit --no-fund \
    && mkdir -p /assets \
    && cp -R node_modules/govuk-frontend/dist/govuk/assets/. /assets/ \
    && cp node_modules/govuk-frontend/dist/govuk/govuk-frontend.min.css node_modules/govuk-frontend/dist/govuk/govuk-frontend.min.js /assets/ \
    && cp node_modules/@ministryofjustice/frontend/moj/moj-frontend.min.css node_modules/@ministryofjustice/frontend/moj/moj-frontend.min.js /assets/ \
    && cp -R node_modules/@ministryofjustice/frontend/moj/assets/. /assets/ \
    && cp init.mjs /assets/

FROM rust:1-bookworm AS build
WORKDIR /src
# librdkafka is built from source by rdkafka-sys.
RUN apt-get update && apt-get install -y --no-install-recommends cmake && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cargo build --release --locked \
      --bin continuity-ingest --bin continuity-matcher --bin continuity-reporter --bin continuity \
      --bin continuity-worklist --bin continuity-dev-issuer

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* && useradd --system --uid 10001 continuity
COPY --from=build /src/target/release/continuity-ingest /src/target/release/continuity-matcher \
     /src/target/release/continuity-reporter /src/target/release/continuity \
     /src/target/release/continuity-worklist /src/target/release/continuity-dev-issuer /usr/local/bin/
COPY --from=assets /assets /usr/share/continuity/assets
ENV CONTINUITY_ASSETS_DIR=/usr/share/continuity/assets
USER 10001
