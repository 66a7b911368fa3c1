FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/ferry /usr/local/bin/ferry
COPY ferry.toml /etc/ferry/ferry.toml
ENV FERRY_CONFIG=/etc/ferry/ferry.toml
EXPOSE 8700
ENTRYPOINT ["ferry"]
CMD ["run"]
