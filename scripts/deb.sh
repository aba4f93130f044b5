#!/usr/bin/env bash
# deb.sh builds the Debian package of scstd with dpkg-deb:
#
#   scripts/deb.sh [OUTDIR]      -> OUTDIR/scstd_VERSION_ARCH.deb (default bin/)
#
# It holds a static binary (CGO_ENABLED=0, so it needs no library and runs
# in an empty chroot) stamped with the version, the commit and whether the
# tree was modified; the systemd unit of examples/systemd; the default
# configuration /etc/scst.hcl (a conffile); the manual pages; and the
# directories the configuration refers to (/var/lib/scstd, /etc/scst/chap).
# VERSION and GOARCH may be set to override the version and architecture.
# It prints the path of the package.
set -euo pipefail
cd "$(dirname "$0")/.."

out=${1:-bin}
version=${VERSION:-$(scripts/version.sh)}
goarch=${GOARCH:-$(go env GOARCH)}
case $goarch in
	amd64 | arm64 | riscv64 | ppc64le | s390x) arch=$goarch ;;
	386) arch=i386 ;;
	arm) arch=armhf ;;
	*) echo "deb.sh: no Debian architecture for GOARCH=$goarch" >&2; exit 1 ;;
esac
commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
modified=false
if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
	modified=true
fi
# Reproducible: file times and the manual pages' date are the commit's.
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct HEAD 2>/dev/null || date +%s)}
export SOURCE_DATE_EPOCH

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root=$stage/root

install -d "$root/usr/bin" "$root/lib/systemd/system" "$root/usr/share/man/man8" \
	"$root/usr/share/doc/scstd/examples" "$root/DEBIAN"
install -d -m 0750 "$root/var/lib/scstd"
install -d -m 0700 "$root/etc/scst/chap"

CGO_ENABLED=0 GOARCH=$goarch go build -trimpath -buildvcs=false \
	-ldflags "-s -w -X main.version=$version -X main.commit=$commit -X main.modified=$modified" \
	-o "$root/usr/bin/scstd" ./cmd/scstd

# The manual pages come from the command table, through a binary for this
# machine (the packaged one may be for another architecture).
go run -buildvcs=false -ldflags "-X main.version=$version" ./cmd/scstd man "$stage/man" >/dev/null
for page in "$stage"/man/*.8; do
	gzip -9n <"$page" >"$root/usr/share/man/man8/$(basename "$page").gz"
done

sed 's#/usr/local/bin/scstd#/usr/bin/scstd#g' examples/systemd/scstd.service >"$root/lib/systemd/system/scstd.service"
install -m 0644 packaging/debian/scst.hcl "$root/etc/scst.hcl"
install -m 0644 README.md "$root/usr/share/doc/scstd/README.md"
install -m 0644 examples/*.hcl "$root/usr/share/doc/scstd/examples/"

install -m 0644 packaging/debian/conffiles "$root/DEBIAN/conffiles"
install -m 0755 packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm "$root/DEBIAN/"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" \
	packaging/debian/control.in >"$root/DEBIAN/control"

find "$root" -exec touch --no-dereference --date="@$SOURCE_DATE_EPOCH" {} +
mkdir -p "$out"
deb="$out/scstd_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
