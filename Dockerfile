# meso in a container: build with the Rust toolchain, run on Debian slim.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY presets ./presets
COPY scripts ./scripts
RUN cargo build --release --locked --bin meso

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/meso /usr/local/bin/meso
VOLUME /var/lib/meso
EXPOSE 5050 5051
ENTRYPOINT ["meso"]
CMD ["up", "--http", "0.0.0.0:5050", "--data-dir", "/var/lib/meso"]
