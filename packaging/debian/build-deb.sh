#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# build-deb.sh - build BUILD_DIR/tenantd_VERSION_ARCH.deb from BUILD_DIR/tenantd
# and the files of this repository, with dpkg-deb alone (no debhelper).
#
#   packaging/debian/build-deb.sh BUILD_DIR VERSION      (what `make deb` runs)
#
# Depends is computed by dpkg-shlibdeps when it is installed (dpkg-dev), else
# a fixed list of the libraries tenantd links.  The maintainer scripts honour
# DPKG_ROOT, so `dpkg --root=DIR --force-script-chrootless -i` installs into a
# scratch root, and never call systemctl unless systemd runs the machine.

set -e

usage() {
	echo "usage: $0 BUILD_DIR VERSION" >&2
	exit 2
}

[ $# -eq 2 ] || usage
BUILD_DIR=$1
VERSION=$2
SRC=$(cd "$(dirname "$0")/../.." && pwd)
ARCH=$(dpkg --print-architecture)
DEB="$BUILD_DIR/tenantd_${VERSION}_${ARCH}.deb"
STAGE="$BUILD_DIR/deb/tenantd_${VERSION}_${ARCH}"
FALLBACK_DEPENDS="libc6, libevent-2.1-7, libevent-openssl-2.1-7, libssl3, libpq5, libhiredis0.14, librdkafka1, libjansson4, libconfig9"
umask 022

for f in "$BUILD_DIR/tenantd" "$SRC/conf/tenantd.conf" "$SRC/LICENSE" \
    "$SRC/packaging/systemd/tenantd.service" "$SRC/packaging/man/tenantd.8" \
    "$SRC/packaging/man/tenantd.conf.5" "$SRC/packaging/grafana/tenantd.json"; do
	[ -f "$f" ] || { echo "$0: missing $f" >&2; exit 1; }
done

# stage_files - lay out the installed tree under $STAGE
stage_files() {
	rm -rf "$STAGE"
	install -d -m 0755 "$STAGE/DEBIAN" "$STAGE/usr/sbin" \
	    "$STAGE/etc/tenantd" "$STAGE/lib/systemd/system" \
	    "$STAGE/usr/share/doc/tenantd"
	install -m 0755 "$BUILD_DIR/tenantd" "$STAGE/usr/sbin/tenantd"
	# 0640: the config may hold secrets; postinst gives it group tenantd.
	# The package creates the tenantd user: its workers drop to it.
	sed 's|^  # user = "tenantd";|  user = "tenantd";|' \
	    "$SRC/conf/tenantd.conf" > "$STAGE/etc/tenantd/tenantd.conf"
	grep -q '^  user = "tenantd";' "$STAGE/etc/tenantd/tenantd.conf" || {
		echo "build-deb: conf/tenantd.conf lost its user line" >&2
		exit 1
	}
	chmod 0640 "$STAGE/etc/tenantd/tenantd.conf"
	install -m 0644 "$SRC/packaging/systemd/tenantd.service" \
	    "$STAGE/lib/systemd/system/tenantd.service"
	for doc in "$SRC/README.md" "$SRC"/docs/*.md; do
		[ -f "$doc" ] || continue
		install -m 0644 "$doc" "$STAGE/usr/share/doc/tenantd/"
	done
	write_copyright > "$STAGE/usr/share/doc/tenantd/copyright"
	chmod 0644 "$STAGE/usr/share/doc/tenantd/copyright"
	stage_kit
}

# stage_kit - the manual pages (compressed, as Debian wants them) and the
# operator's kit: Prometheus rules with their tests, the Grafana dashboard
stage_kit() {
	for page in "$SRC"/packaging/man/*.[0-9]; do
		sect=${page##*.}
		install -d -m 0755 "$STAGE/usr/share/man/man$sect"
		gzip -9n -c "$page" > "$STAGE/usr/share/man/man$sect/${page##*/}.gz"
		chmod 0644 "$STAGE/usr/share/man/man$sect/${page##*/}.gz"
	done
	install -d -m 0755 "$STAGE/usr/share/tenantd/prometheus" \
	    "$STAGE/usr/share/tenantd/grafana"
	install -m 0644 "$SRC"/packaging/prometheus/*.yml \
	    "$STAGE/usr/share/tenantd/prometheus/"
	install -m 0644 "$SRC/packaging/grafana/tenantd.json" \
	    "$STAGE/usr/share/tenantd/grafana/"
}

# write_copyright - machine-readable copyright carrying the project's LICENSE
write_copyright() {
	cat <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: tenantd

Files: *
Copyright: the tenantd contributors
License: Apache-2.0

License: Apache-2.0
EOF
	# Continuation lines start with a space; an empty line is " .".
	sed -e 's/^[[:space:]]*$/./' -e 's/^/ /' "$SRC/LICENSE"
}

# compute_depends - Depends of the staged binary, one line
compute_depends() {
	deps=
	if command -v dpkg-shlibdeps >/dev/null 2>&1; then
		# dpkg-shlibdeps wants a debian/control beside it; give it one.
		work=$(mktemp -d)
		mkdir "$work/debian"
		printf 'Source: tenantd\n\nPackage: tenantd\nArchitecture: any\n' \
		    > "$work/debian/control"
		bin=$(cd "$STAGE/usr/sbin" && pwd)/tenantd
		if out=$(cd "$work" && dpkg-shlibdeps -O -e"$bin"); then
			deps=$(printf '%s\n' "$out" | sed -n 's/^shlibs:Depends=//p')
		else
			echo "$0: dpkg-shlibdeps failed; using the fixed list" >&2
		fi
		rm -rf "$work"
	fi
	[ -n "$deps" ] || deps=$FALLBACK_DEPENDS
	printf '%s, passwd\n' "$deps"
}

# write_control - DEBIAN/control and DEBIAN/conffiles
write_control() {
	size=$(du -sk --exclude=DEBIAN "$STAGE" | cut -f1)
	cat > "$STAGE/DEBIAN/control" <<EOF
Package: tenantd
Version: $VERSION
Architecture: $ARCH
Maintainer: tenantd developers <tenantd@localhost.invalid>
Installed-Size: $size
Depends: $(compute_depends)
Section: net
Priority: optional
Description: contact-center Tenant Service daemon
 tenantd serves one contact-center tenant: configuration and provisioning
 (HTTP/JSON), real-time call-control events, real-time statistics, outbound
 campaigns and routing over TCP and HTTP, and Prometheus metrics.  State
 lives in PostgreSQL, Redis and Kafka.
 .
 A master process opens the listening sockets and supervises one worker
 process per service; workers run as the unprivileged user tenantd.
EOF
	echo /etc/tenantd/tenantd.conf > "$STAGE/DEBIAN/conffiles"
	chmod 0644 "$STAGE/DEBIAN/control" "$STAGE/DEBIAN/conffiles"
}

# write_scripts - the maintainer scripts
write_scripts() {
	for s in postinst prerm postrm; do
		install -m 0755 "$SRC/packaging/debian/$s" "$STAGE/DEBIAN/$s"
	done
}

stage_files
write_control
write_scripts
dpkg-deb --root-owner-group --build "$STAGE" "$DEB" >/dev/null
echo "$DEB"
