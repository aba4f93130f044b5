#!/bin/sh
# The CI gate of this configuration: run it on every change before it
# merges (see README.md). It needs scstd on PATH and nothing else: a CI
# runner has the configuration but not the storage, so the backing files
# are not looked at (-no-storage); everything else is checked, as the
# daemon will check it. Exit 0: the change may merge.
set -eu
cd "$(dirname "$0")"
# Every *.hcl file of the directory, as the daemon reads the ConfigMap.
scstd fmt -check .
scstd validate -no-storage .
