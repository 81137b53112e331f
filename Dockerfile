# The sluice image that the Helm chart (helm/sluice) runs: the one binary on a
# distroless base, as a non-root user, with nothing else in the image.
#
#   docker build -t REGISTRY/sluice:0.1.0 .
#
# Build stage: the workspace's release build of the `sluice` binary.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin sluice \
    && install -D -m 0755 target/release/sluice /out/sluice \
    && mkdir -m 0700 /out/data

# Runtime stage: glibc and CA certificates, no shell, no package manager; user 65532
# ("nonroot"), the uid the chart's securityContext runs as.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/sluice /usr/local/bin/sluice
# A data directory the non-root user owns, for `docker run` without a volume; the chart
# mounts an emptyDir here.
COPY --from=build --chown=65532:65532 /out/data /var/lib/sluice
USER 65532:65532
# TLS only: there is no plaintext port.
ENV SLUICE_DATA_DIR=/var/lib/sluice \
    SLUICE_LISTEN=0.0.0.0:4567
EXPOSE 4567
ENTRYPOINT ["/usr/local/bin/sluice"]
CMD ["serve"]
