#!/bin/sh
# The package version, a Debian one (it starts with a digit), from git:
#   tag v1.2.0                      -> 1.2.0
#   3 commits after v1.2.0          -> 1.2.0+3.g104a9d3
#   no v* tag yet                   -> 0.0~git20261207.104a9d3   (the commit's date, UTC)
# and +dirty when the work tree has changes. make package VERSION=... overrides it.
set -eu
cd "$(dirname "$0")/.."
if d=$(git describe --tags --match 'v[0-9]*' 2>/dev/null); then
    v=$(printf '%s\n' "$d" | sed -e 's/^v//' -e 's/-\([0-9][0-9]*\)-g\([0-9a-f]*\)$/+\1.g\2/')
else
    v="0.0~git$(TZ=UTC git log -1 --date=format-local:%Y%m%d --format=%cd).$(git rev-parse --short=7 HEAD)"
fi
git diff --quiet HEAD -- 2>/dev/null || v="$v+dirty"
printf '%s\n' "$v"
