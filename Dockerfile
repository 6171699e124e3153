# The bare-ccm container image: one static binary, the CA bundle, nothing else.
#
#   docker build -t ghcr.io/bare-ccm/bare-ccm:0.1.0 .
#
# Without Docker, scripts/build-image.sh builds the same image (an OCI archive in dist/,
# with umoci and skopeo). The final stage below is the one source of the image
# configuration for both: build-image.sh reads it through scripts/image-spec.py, and CI
# fails when the archive's configuration differs from it. image-spec.py understands only
# the instructions used below; a new one has to be taught to it first.
#
# The builder runs scripts/static-build.sh, the same recipe CI runs and proves in an
# empty root (scripts/chroot-smoke.sh): glibc linked statically, `--no-default-features`
# so the `sim` feature and the API emulator are left out, `--locked` dependencies.

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN sh scripts/static-build.sh && cp target/x86_64-unknown-linux-gnu/release/bare-ccm /bare-ccm

# scratch: no shell, no package manager, no libc files, nothing to patch but bare-ccm.
FROM scratch
# Trust roots for a kubeconfig that points at an API server with a publicly signed
# certificate; in-cluster, the service-account CA is used instead.
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /bare-ccm /bare-ccm
# An unprivileged user (the conventional "nonroot" ID); no /etc/passwd entry is needed.
USER 65532:65532
# (BuildKit starts every FROM scratch image with WorkingDir / and PATH set to the default
# Linux PATH, which nothing here uses; scripts/image-spec.py models both.)
# glibc serves every allocation of 128 KiB or more (LIST pages, large bodies) with its
# own mmap, returned to the system when freed. By default glibc raises that threshold
# after the first such free, and the heap then keeps the freed pages behind the cached
# nodes allocated after them: 1.5-3 MB more RSS with 5000 cached nodes
# (docs/performance.md). `bare-ccm sim` gives the controller the same setting.
ENV MALLOC_MMAP_THRESHOLD_=131072
# The probes in plain HTTP (--port, on 127.0.0.1 by default) and /metrics over HTTPS with
# the probes (--secure-port).
EXPOSE 10270 10271
ENTRYPOINT ["/bare-ccm"]
CMD ["run"]
# The version and licence must match Cargo.toml (CI checks, scripts/image-spec.py).
LABEL org.opencontainers.image.title="bare-ccm" \
      org.opencontainers.image.description="Cloud-controller-manager for bare-metal k3s and Kubernetes: initialises nodes (addresses, providerID, labels, the uninitialized taint)" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="Apache-2.0"
