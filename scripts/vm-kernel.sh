#!/usr/bin/env bash
# vm-kernel.sh fetches Debian's amd64 kernel package (the one
# linux-image-amd64 depends on) with apt-get download into a cache under
# the build tree, and extracts what the dev_disk VM test boots: vmlinuz and
# the modules for virtio PCI, virtio-scsi, sg and virtio-net. Nothing it
# writes is committed. It does nothing when the kernel is already there.
#
#   scripts/vm-kernel.sh [DIR]     default DIR: .state/vm/kernel
set -euo pipefail
cd "$(dirname "$0")/.."

out=${1:-.state/vm/kernel}
cache=.state/vm/cache
modules="virtio virtio_ring virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci
scsi_common scsi_mod virtio_scsi sg failover net_failover virtio_net"

if [ -s "$out/vmlinuz" ] && [ -s "$out/modules/sg.ko" ]; then
	exit 0
fi

pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
if [ -z "$pkg" ]; then
	apt-get update -q >/dev/null
	pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
fi
[ -n "$pkg" ] || { echo "vm-kernel: no linux-image package found for linux-image-amd64" >&2; exit 1; }

mkdir -p "$cache"
deb=$(ls "$cache/${pkg}"_*.deb 2>/dev/null | head -n1 || true)
if [ -z "$deb" ]; then
	echo "vm-kernel: downloading $pkg"
	# apt-get download writes to the working directory; its sandbox user
	# may not write there, which only costs a warning.
	(cd "$cache" && apt-get download -q "$pkg" 2>&1 | grep -v "unsandboxed" || true)
	deb=$(ls "$cache/${pkg}"_*.deb 2>/dev/null | head -n1 || true)
	[ -n "$deb" ] || { echo "vm-kernel: apt-get download $pkg failed" >&2; exit 1; }
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dpkg-deb -x "$deb" "$tmp"
rm -rf "$out"
mkdir -p "$out/modules"
cp "$tmp"/boot/vmlinuz-* "$out/vmlinuz"
for m in $modules; do
	f=$(find "$tmp/lib/modules" -name "$m.ko" -o -name "$m.ko.xz" -o -name "$m.ko.zst" | head -n1)
	[ -n "$f" ] || { echo "vm-kernel: module $m not in $pkg" >&2; exit 1; }
	case "$f" in
	*.ko) cp "$f" "$out/modules/$m.ko" ;;
	*) echo "vm-kernel: $f is compressed; busybox insmod needs plain modules" >&2; exit 1 ;;
	esac
done
# Load order: every module after the modules it depends on (the
# depends= line of its .modinfo).
order=()
pending=$(echo $modules)
while [ -n "$pending" ]; do
	next=""
	progress=0
	for m in $pending; do
		deps=$(tr '\0' '\n' <"$out/modules/$m.ko" | sed -n 's/^depends=//p' | head -n1 | tr ',' ' ')
		ready=1
		for dep in $deps; do
			case " ${order[*]} " in *" $dep "*) ;; *) ready=0 ;; esac
		done
		if [ "$ready" = 1 ]; then order+=("$m"); progress=1; else next="$next $m"; fi
	done
	[ "$progress" = 1 ] || { echo "vm-kernel: cannot order modules:$next (missing dependencies)" >&2; exit 1; }
	pending=$next
done
printf '%s\n' "${order[@]}" > "$out/modules/order"
echo "$pkg" > "$out/package"
echo "vm-kernel: $pkg in $out"
