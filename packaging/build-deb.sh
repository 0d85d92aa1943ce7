#!/bin/sh
# build-deb.sh builds the gaoler Debian package from this source tree and puts the .deb (with its
# .buildinfo and .changes) in dist/ at the top of the tree. It copies the tree (without .git and
# dist/) to a temporary directory, installs packaging/debian there as debian/ and runs
# dpkg-buildpackage -b, so the working tree is never written to except dist/.
#
# Usage: packaging/build-deb.sh [--lintian]
# Environment: GO (the go command, default "go"), GAOLER_BINDIR (package prebuilt gaolerd and gaoler
# from this directory instead of building them), DIST (output directory, default ./dist).
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
dist=${DIST:-$top/dist}
run_lintian=no
[ "${1:-}" = "--lintian" ] && run_lintian=yes

GO=${GO:-go}
if [ -z "${GAOLER_BINDIR:-}" ]; then
	# Resolve the Go caches now: debhelper may run the build with another HOME.
	GOMODCACHE=$("$GO" env GOMODCACHE)
	GOCACHE=$("$GO" env GOCACHE)
	GO=$(command -v "$GO")
	export GO GOMODCACHE GOCACHE
else
	GAOLER_BINDIR=$(cd "$GAOLER_BINDIR" && pwd)
	export GAOLER_BINDIR
fi

version=$(dpkg-parsechangelog -l "$top/packaging/debian/changelog" -S Version)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/gaoler-deb.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
src=$tmp/gaoler-$version

mkdir -p "$src"
(cd "$top" && tar --exclude=./.git --exclude=./dist --exclude=./debian -cf - .) | tar -xf - -C "$src"
cp -a "$top/packaging/debian" "$src/debian"

(cd "$src" && dpkg-buildpackage -b -us -uc --no-sign >"$tmp/build.log" 2>&1) || {
	tail -n 60 "$tmp/build.log" >&2
	echo "build-deb.sh: dpkg-buildpackage failed (log above)" >&2
	exit 1
}

mkdir -p "$dist"
for f in "$tmp"/*.deb "$tmp"/*.buildinfo "$tmp"/*.changes; do
	[ -e "$f" ] && cp "$f" "$dist/"
done
deb=$(cd "$tmp" && ls gaoler_*.deb)
echo "$dist/$deb"

if [ "$run_lintian" = yes ]; then
	lintian --info --display-info --pedantic "$dist/$deb" >&2 || exit 1
fi
