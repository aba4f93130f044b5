#!/usr/bin/env bash
# fuzz.sh runs every native Go fuzz target in the module for $FUZZTIME each
# (default 5s): enough to prove a target works and to replay its seed corpus,
# not a fuzzing campaign.
set -euo pipefail
cd "$(dirname "$0")/.."

fuzztime=${FUZZTIME:-5s}
status=0
ran=0
for pkg in $(go list ./...); do
	if ! listing=$(go test -list '^Fuzz' "$pkg" 2>&1); then
		echo "$listing"
		status=1
		continue
	fi
	targets=$(grep '^Fuzz' <<<"$listing" || true)
	for name in $targets; do
		echo "== $pkg $name ($fuzztime)"
		ran=$((ran + 1))
		if ! go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$pkg"; then
			status=1
		fi
	done
done
echo "fuzz: $ran target(s) run"
exit "$status"
