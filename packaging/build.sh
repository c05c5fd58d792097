#!/bin/bash
# make package: for each architecture, build the plugin, flatstore-ctl and the test host into
# build/ARCH/, stage the package's files, and write build/pkg/flatstore_VERSION_ARCH.deb (with
# dpkg-deb) and build/pkg/flatstore_VERSION_ARCH.tar.gz (the same files, rooted at /).
#
#   packaging/build.sh [-deb] [-tar] [ARCH...]     (default: both formats, amd64 arm64)
#
# Environment: VERSION (default packaging/version.sh), DEBREV (1), GO (go), BUILD (build),
# MAINTAINER (the last commit's author). Run as root, it installs what a foreign
# architecture needs (gcc-aarch64-linux-gnu libc6-dev-arm64-cross) with apt-get; an
# architecture whose C cross compiler is missing is skipped with a message, not an error.
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
BUILD=${BUILD:-build}
PKGDIR=$BUILD/pkg
VERSION=${VERSION:-$(packaging/version.sh)}
# The Debian revision: flatstore is packaged from its upstream tree, not a native package.
DEBREV=${DEBREV:-1}
MAINTAINER=${MAINTAINER:-$(git log -1 --format='%an <%ae>')}
# The build is reproducible: every file, the .deb's members and the tarball carry the
# commit's time (dpkg-deb reads SOURCE_DATE_EPOCH).
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}
export SOURCE_DATE_EPOCH

formats=() arches=()
for a in "$@"; do
    case $a in
    -deb) formats+=(deb) ;;
    -tar) formats+=(tar) ;;
    -*) echo "packaging/build.sh: unknown option $a" >&2; exit 2 ;;
    *) arches+=("$a") ;;
    esac
done
[ ${#formats[@]} -gt 0 ] || formats=(deb tar)
[ ${#arches[@]} -gt 0 ] || arches=(amd64 arm64)

case $VERSION in
[0-9]*) ;;
*) echo "packaging/build.sh: VERSION=$VERSION: a Debian version starts with a digit" >&2; exit 2 ;;
esac

native=$(dpkg --print-architecture 2>/dev/null || $GO env GOARCH)

# The C compiler for an architecture ("" when there is none and it cannot be installed).
cc_for() {
    local arch=$1 triplet pkgs
    if [ "$arch" = "$native" ]; then
        echo "${CC:-cc}"
        return
    fi
    case $arch in
    arm64) triplet=aarch64-linux-gnu ;;
    amd64) triplet=x86_64-linux-gnu ;;
    *)
        echo "skipping $arch: make package knows amd64 and arm64" >&2
        return ;;
    esac
    pkgs="gcc-$triplet libc6-dev-$arch-cross"
    if ! command -v "$triplet-gcc" >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing: $pkgs" >&2
        { DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
          DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $pkgs; } >/dev/null 2>&1 ||
            echo "apt-get install $pkgs failed" >&2
    fi
    if command -v "$triplet-gcc" >/dev/null 2>&1; then
        echo "$triplet-gcc"
    else
        echo "skipping $arch: no C cross compiler $triplet-gcc (as root: apt-get install $pkgs)" >&2
    fi
}

# The newest GLIBC_x.y symbol version a binary needs.
glibc_needed() {
    readelf --dyn-syms --wide "$1" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -t. -k1,1n -k2,2n -k3,3n | tail -n 1
}

# The licences of what the binaries link statically: Go's standard library and every module.
copyright() {
    local modcache m path ver dir lic
    modcache=$($GO env GOMODCACHE)
    cat <<EOF
flatstore: a Fluent Bit output plugin that writes OpenSIPS event_flatstore lines.
Source: the flatstore repository (module github.com/flatstore/flatstore), commit $(git rev-parse HEAD).
Copyright: the flatstore authors.

The repository states no licence for flatstore itself yet: until it does, no licence to
redistribute flatstore's own code is granted by this file.

out_flatstore.so and flatstore-ctl link statically the Go standard library and the Go
modules below; their licences follow, each as its authors wrote it.

==> Go standard library and runtime ($($GO env GOVERSION)): LICENSE
EOF
    awk -f packaging/apache-ref.awk "$($GO env GOROOT)/LICENSE"
    for m in $($GO list -deps -f '{{with .Module}}{{if not .Main}}{{.Path}}@{{.Version}}{{end}}{{end}}' ./plugin ./cmd/flatstore-ctl | sort -u); do
        path=${m%@*} ver=${m#*@}
        # the module cache escapes capitals as !lower
        dir=$modcache/$(printf '%s' "$path" | sed 's/[A-Z]/!\L&/g')@$ver
        lic=$(cd "$dir" && ls | grep -i -E '^(licen[cs]e|copying)' | head -n 1) || true
        [ -n "$lic" ] || { echo "packaging/build.sh: $m has no licence file in $dir" >&2; exit 1; }
        printf '\n==> %s %s: %s\n' "$path" "$ver" "$lic"
        # Debian ships the Apache 2.0 text: name it rather than repeat it
        awk -f packaging/apache-ref.awk "$dir/$lic"
        for n in "$dir"/NOTICE*; do
            if [ -f "$n" ]; then
                printf '\n==> %s %s: %s\n' "$path" "$ver" "${n##*/}"
                cat "$n"
            fi
        done
    done
}

# flatstore-ctl(1), from the program's own -h (the text is the same on every architecture),
# so that the two never differ.
manpage() {
    local help
    help=$($GO run ./cmd/flatstore-ctl -h 2>&1 || true)
    cat <<EOF
.TH FLATSTORE-CTL 1 "$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%d)" "flatstore $VERSION" "User Commands"
.SH NAME
flatstore-ctl \- rotate, list and read the files of the flatstore Fluent Bit plugin
.SH SYNOPSIS
.B flatstore-ctl
.I command
.RI [ flags ]
.RI [ PATH ...]
.SH DESCRIPTION
.nf
EOF
    # troff: a backslash is \e; a line starting with . or ' is protected by \&
    printf '%s\n' "$help" | sed -e 's/\\/\\e/g' -e "s/^\([.']\)/\\\\\&\1/"
    cat <<'EOF'
.fi
.SH FILES
.TP
.I /etc/logrotate.d/flatstore
runs flatstore-ctl rotate after logrotate renamed the event files.
.TP
.I /run/flatstore/control.sock
the plugin's control endpoint in the shipped configurations.
.SH SEE ALSO
.BR logrotate (8),
.I /usr/share/doc/flatstore/README.md.gz
EOF
}

build_arch() {
    local arch=$1 cc=$2 out=$BUILD/$arch
    mkdir -p "$out"
    echo "building $arch with $cc into $out/"
    CGO_ENABLED=1 GOOS=linux GOARCH=$arch CC=$cc $GO build -trimpath -buildmode=c-shared \
        -ldflags='-s -w -buildid=' -o "$out/out_flatstore.so" ./plugin
    rm -f "$out/out_flatstore.h"
    CGO_ENABLED=0 GOOS=linux GOARCH=$arch $GO build -trimpath -ldflags='-s -w -buildid=' \
        -o "$out/flatstore-ctl" ./cmd/flatstore-ctl
    # the test host, for a smoke test of the .so on this architecture (not packaged)
    $cc -O2 -Wall -Wextra -o "$out/flbhost" host/*.c -rdynamic -ldl -lpthread
}

stage_arch() {
    local arch=$1 out=$BUILD/$arch root=$PKGDIR/root-$arch doc glibc
    doc=$root/usr/share/doc/flatstore
    rm -rf "$root"
    install -d "$root/DEBIAN" "$doc/examples"
    install -D -m 0644 "$out/out_flatstore.so" "$root/usr/lib/fluent-bit/out_flatstore.so"
    install -D -m 0755 "$out/flatstore-ctl" "$root/usr/bin/flatstore-ctl"
    install -D -m 0644 packaging/flatstore-plugins.conf "$root/etc/fluent-bit/flatstore-plugins.conf"
    install -D -m 0644 conf/logrotate.conf "$root/etc/logrotate.d/flatstore"
    install -D -m 0644 packaging/tmpfiles.conf "$root/usr/lib/tmpfiles.d/flatstore.conf"
    gzip -9n <README.md >"$doc/README.md.gz"
    manpage | gzip -9n >"$PKGDIR/flatstore-ctl.1.gz"
    install -D -m 0644 "$PKGDIR/flatstore-ctl.1.gz" "$root/usr/share/man/man1/flatstore-ctl.1.gz"
    # flatstore-ctl is static on purpose (CGO_ENABLED=0): the same binary runs in the
    # distroless image, the logrotate image and on any glibc.
    install -d "$root/usr/share/lintian/overrides"
    # and the changelog is make package's, not an upload's to Debian.
    printf '%s\n' "flatstore: statically-linked-binary [usr/bin/flatstore-ctl]" \
        "flatstore: initial-upload-closes-no-bugs [usr/share/doc/flatstore/changelog.Debian.gz:1]" \
        >"$root/usr/share/lintian/overrides/flatstore"
    copyright >"$doc/copyright"
    cat >"$PKGDIR/changelog.Debian" <<EOF
flatstore ($VERSION-$DEBREV) unstable; urgency=medium

  * Built by make package from commit $(git rev-parse --short=12 HEAD):
    $(git log -1 --format=%s | cut -c1-66)

 -- $MAINTAINER  $(date -u -R -d "@$SOURCE_DATE_EPOCH")
EOF
    gzip -9n <"$PKGDIR/changelog.Debian" >"$doc/changelog.Debian.gz"
    install -m 0644 conf/fluent-bit.conf conf/fluent-bit.yaml conf/parsers.conf \
        conf/opensips-sidecar.conf conf/opensips-sidecar.yaml conf/opensips.cfg "$doc/examples/"

    glibc=$(glibc_needed "$out/out_flatstore.so")
    cat >"$root/DEBIAN/control" <<EOF
Package: flatstore
Version: $VERSION-$DEBREV
Architecture: $arch
Maintainer: $MAINTAINER
Installed-Size: $(du -sk --exclude=DEBIAN "$root" | cut -f1)
Depends: libc6 (>= $glibc)
Recommends: logrotate
Enhances: fluent-bit
Section: admin
Priority: optional
Homepage: https://github.com/flatstore/flatstore
Description: Fluent Bit output plugin writing OpenSIPS event_flatstore files
 flatstore is a Fluent Bit output plugin (a Go plugin, loaded by Fluent Bit's
 Go proxy) that writes every record as one OpenSIPS event_flatstore line
 (EVENT,param1,param2) to plain text files, and reopens them when asked, as
 OpenSIPS does on evi_flat_rotate, so that logrotate works as it does with
 OpenSIPS.
 .
 This package holds the plugin (/usr/lib/fluent-bit/out_flatstore.so), a
 plugins file for Fluent Bit's packages
 (/etc/fluent-bit/flatstore-plugins.conf), flatstore-ctl (rotate, status,
 read), a logrotate stanza for /var/log/flatstore and a tmpfiles.d entry for
 the control socket's directory /run/flatstore.
EOF
    printf '%s\n' /etc/fluent-bit/flatstore-plugins.conf /etc/logrotate.d/flatstore >"$root/DEBIAN/conffiles"
    install -m 0755 packaging/postinst packaging/postrm "$root/DEBIAN/"
    (cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z |
        xargs -0 md5sum) >"$root/DEBIAN/md5sums"
    chmod 0644 "$root/DEBIAN/md5sums" "$root/DEBIAN/control" "$root/DEBIAN/conffiles"
    find "$root" -type d -exec chmod 0755 {} +
    find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
}

mkdir -p "$PKGDIR"
built=()
for arch in "${arches[@]}"; do
    cc=$(cc_for "$arch")
    [ -n "$cc" ] || continue
    build_arch "$arch" "$cc"
    stage_arch "$arch"
    base=$PKGDIR/flatstore_${VERSION}-${DEBREV}_$arch
    for f in "${formats[@]}"; do
        ext=${f/tar/tar.gz}
        rm -f "$PKGDIR"/flatstore_*_"$arch.$ext" # an earlier version's
        case $f in
        deb)
            dpkg-deb --root-owner-group -Zxz --build "$PKGDIR/root-$arch" "$base.deb" >/dev/null
            built+=("$base.deb") ;;
        tar)
            tar --create --directory "$PKGDIR/root-$arch" --exclude=./DEBIAN --sort=name \
                --owner=0 --group=0 --numeric-owner --mtime="@$SOURCE_DATE_EPOCH" . |
                gzip -9n >"$base.tar.gz"
            built+=("$base.tar.gz") ;;
        esac
    done
done
[ ${#built[@]} -gt 0 ] || { echo "packaging/build.sh: nothing built" >&2; exit 1; }
ls -l "${built[@]}"
