# syntax=docker/dockerfile:1
#
# flatstore: Fluent Bit with the flatstore output plugin.
#
#   docker build -t flatstore .                     # the runtime image (last stage)
#   docker build --target logrotate -t flatstore-logrotate .
#   docker compose up --build                       # app -> fluent-bit -> files, and logrotate
#
# Stages:
#   build      Go toolchain: out_flatstore.so (cgo, c-shared) and flatstore-ctl (static)
#   logrotate  Debian + logrotate + flatstore-ctl: rotates the event files, then asks the
#              plugin to reopen them (conf/logrotate.conf)
#   app        a Fluent Bit that emits SIP-style events to the runtime's forward input
#   runtime    the official Fluent Bit image + the plugin, flatstore-ctl and conf/
#
# Pinning: every base is pinned by an exact version tag and by the digest of its
# multi-architecture index. To update one, change tag and digest together
# (docker buildx imagetools inspect IMAGE:TAG prints the digest).
#
# glibc: the .so is built on Debian 12 (bookworm, glibc 2.36; it needs symbols up to
# GLIBC_2.34 and only libc.so.6). Fluent Bit 5.1.5's image is distroless on Debian 13
# (gcr.io/distroless/cc-debian13, glibc 2.41), which loads anything linked against an
# older glibc; a build on a newer glibc than the runtime's would fail to dlopen.

# --- build -----------------------------------------------------------------------------
FROM golang:1.26.8-bookworm@sha256:a688600ca24f8a4d3ca77f95b0dd40704a9fc787c826660eb7ba0b641b8b175d AS build
WORKDIR /src
ENV GOTOOLCHAIN=local
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=1 go build -trimpath -buildmode=c-shared -ldflags="-s -w" \
        -o /out/out_flatstore.so ./plugin \
 && CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" \
        -o /out/flatstore-ctl ./cmd/flatstore-ctl \
 && rm -f /out/out_flatstore.h \
 && mkdir -p /out/empty

# --- logrotate -------------------------------------------------------------------------
# Used by docker-compose.yml's "logrotate" service: logrotate on a schedule (every
# LOGROTATE_INTERVAL seconds, default 3600), with conf/logrotate.conf, whose postrotate
# runs flatstore-ctl against the plugin's control socket in the shared volume.
FROM debian:bookworm-20260918-slim@sha256:3783cc01769c7b2b1b83a5c5ad96c815348e28ed7da68e2e3687004faa906251 AS logrotate
RUN apt-get update \
 && apt-get install -y --no-install-recommends logrotate \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 65532 --user-group --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin nonroot
COPY --from=build /out/flatstore-ctl /usr/local/bin/flatstore-ctl
COPY conf/logrotate.conf /etc/logrotate.d/flatstore
# The same directories, owned alike, as in the runtime image: whichever container
# mounts the named volumes first, they start owned by the user that writes them.
COPY --from=build --chown=65532:65532 /out/empty/ /var/log/flatstore/
COPY --from=build --chown=65532:65532 /out/empty/ /run/flatstore/
COPY --from=build --chown=65532:65532 /out/empty/ /var/lib/flatstore-logrotate/
ENV FLATSTORE_ADDR=unix:/run/flatstore/control.sock \
    LOGROTATE_INTERVAL=3600
# Same user as Fluent Bit: it owns the files and the control socket (mode 0600).
USER 65532:65532
CMD ["/bin/sh", "-c", "while :; do logrotate --verbose --state /var/lib/flatstore-logrotate/status /etc/logrotate.d/flatstore; sleep \"$LOGROTATE_INTERVAL\"; done"]

# --- app -------------------------------------------------------------------------------
# docker-compose.yml's "app": a plain Fluent Bit whose dummy inputs emit SIP-style events
# and send them over the forward protocol to the "fluent-bit" service (conf/app.yaml).
FROM fluent/fluent-bit:5.1.5-20261117@sha256:25435e66b8da34975a615979e1297163f93690011d4d1900b6fa542e84ffb35f AS app
COPY conf/app.yaml /fluent-bit/etc/app.yaml
USER 65532:65532
ENTRYPOINT ["/fluent-bit/bin/fluent-bit"]
CMD ["-c", "/fluent-bit/etc/app.yaml"]

# --- runtime ---------------------------------------------------------------------------
# The official image (distroless, no shell): fluent-bit at /fluent-bit/bin/fluent-bit,
# configuration in /fluent-bit/etc. Last stage, so a plain `docker build` makes this one.
FROM fluent/fluent-bit:5.1.5-20261117@sha256:25435e66b8da34975a615979e1297163f93690011d4d1900b6fa542e84ffb35f AS runtime
COPY --from=build /out/out_flatstore.so /fluent-bit/plugins/out_flatstore.so
COPY --from=build /out/flatstore-ctl /fluent-bit/bin/flatstore-ctl
# Replaces the image's stock fluent-bit.conf and parsers.conf.
COPY conf/fluent-bit.conf conf/fluent-bit.yaml conf/parsers.conf \
     conf/opensips-sidecar.conf conf/opensips-sidecar.yaml /fluent-bit/etc/
COPY --from=build --chown=65532:65532 /out/empty/ /var/log/flatstore/
COPY --from=build --chown=65532:65532 /out/empty/ /run/flatstore/
COPY --from=build --chown=65532:65532 /out/empty/ /var/lib/flatstore/spool/
# What conf/fluent-bit.conf and conf/fluent-bit.yaml read; FLATSTORE_ADDR is flatstore-ctl's.
ENV FLATSTORE_OUT=/var/log/flatstore \
    FLATSTORE_CONTROL=unix:/run/flatstore/control.sock \
    FLATSTORE_DEMO_IN=/var/lib/flatstore/spool/*.jsonl \
    FLATSTORE_EXIT_ON_EOF=off \
    FLATSTORE_FORWARD_LISTEN=0.0.0.0 \
    FLATSTORE_ADDR=unix:/run/flatstore/control.sock
# distroless's "nonroot" user.
USER 65532:65532
EXPOSE 24224
# The entrypoint loads the plugin (-e), so conf/ names no plugin path and the same files run
# from a checkout; it stays loaded across hot reloads. A CMD of your own (-c /your.conf)
# keeps it.
ENTRYPOINT ["/fluent-bit/bin/fluent-bit", "-e", "/fluent-bit/plugins/out_flatstore.so"]
CMD ["-c", "/fluent-bit/etc/fluent-bit.yaml"]
