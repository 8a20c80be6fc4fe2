#!/usr/bin/env bash
# Fails at once, with the numbers, when the disk under the build directory is too full for
# `make test`: a clean build plus the tests' servers, test hosts and Terraform work dirs need
# about PLATFORM_TEST_DISK_GIB GiB (default 12). A full disk otherwise shows up an hour later
# as dozens of unrelated failures (etcd, SeaweedFS and sshd stop writing).
set -euo pipefail
need_gib=${PLATFORM_TEST_DISK_GIB:-12}
dir=${CARGO_TARGET_DIR:-target}
mkdir -p "$dir"
have_kib=$(df -Pk "$dir" | awk 'NR == 2 { print $4 }')
have_gib=$((have_kib / 1024 / 1024))
if [ "$have_gib" -lt "$need_gib" ]; then
  echo "check-disk: $(df -P "$dir" | awk 'NR == 2 { print $6 }') has ${have_gib} GiB free; make test needs ${need_gib} GiB" >&2
  echo "check-disk: free space (cargo clean in old checkouts, old clones under /tmp) or set PLATFORM_TEST_DISK_GIB" >&2
  exit 1
fi
echo "check-disk: ${have_gib} GiB free (need ${need_gib})"
