#!/usr/bin/env bash
# version.sh prints the version of the source tree for release builds and
# the Debian package: the latest vX.Y.Z tag ("1.2.0"), with "+gitN.SHA"
# when commits follow it, or "0.0~gitYYYYMMDD.SHA" before the first tag.
# Each form is a valid Debian version and sorts after the one before.
# Without git it prints "0.0~unknown".
set -euo pipefail
cd "$(dirname "$0")/.."

if ! sha=$(git rev-parse --short=12 HEAD 2>/dev/null); then
	echo "0.0~unknown"
	exit 0
fi
if desc=$(git describe --tags --match 'v[0-9]*' --long 2>/dev/null); then
	# v1.2.0-4-gabcdef012345
	tag=${desc%-*-g*}
	n=${desc#"$tag"-}
	n=${n%%-*}
	if [ "$n" = 0 ]; then
		echo "${tag#v}"
	else
		echo "${tag#v}+git${n}.${sha}"
	fi
	exit 0
fi
echo "0.0~git$(git log -1 --format=%cd --date=format:%Y%m%d HEAD).${sha}"
