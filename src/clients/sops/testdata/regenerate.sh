#!/usr/bin/env bash
# Regenerates the committed fixtures with a real sops (3.x) and the committed
# THROWAWAY test keys. Usage: SOPS=/path/to/sops ./regenerate.sh
# The third Shamir key group's key is made up on the spot and thrown away.
set -euo pipefail
cd "$(dirname "$0")"
sops=${SOPS:-sops}
key_a=$(grep -o 'age1[a-z0-9]*' test-keys.txt | sed -n 1p)
key_b=$(grep -o 'age1[a-z0-9]*' test-keys.txt | sed -n 2p)
key_c=$(age-keygen 2>/dev/null | grep -o 'age1[a-z0-9]*')
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export SOPS_AGE_KEY_FILE=$PWD/test-keys.txt

enc() { # enc <input> <output> [sops encrypt options...]
  local input=$1 output=$2
  shift 2
  "$sops" --config /dev/null encrypt --age "$key_a" "$@" "$input" > "$output"
}

enc src/basic.yaml basic.enc.yaml
enc src/basic.json basic.enc.json
enc src/basic.env basic.enc.env
enc src/blob.bin blob.enc.bin
enc src/multidoc.yaml multidoc.enc.yaml --encrypted-suffix _secret
printf 'creation_rules:\n  - age: %s\n    encrypted_regex: "^(data|stringData)$"\n    mac_only_encrypted: true\n' \
  "$key_a" > "$work/secret.sops.yaml"
"$sops" --config "$work/secret.sops.yaml" encrypt src/secret.yaml > secret.enc.yaml
printf 'creation_rules:\n  - shamir_threshold: 2\n    key_groups:\n      - age: [%s]\n      - age: [%s]\n      - age: [%s]\n' \
  "$key_a" "$key_b" "$key_c" > "$work/shamir.sops.yaml"
"$sops" --config "$work/shamir.sops.yaml" encrypt src/basic.yaml > shamir.enc.yaml

# What `sops -d` prints, for comparison.
for f in basic.enc.yaml basic.enc.json basic.enc.env multidoc.enc.yaml secret.enc.yaml; do
  "$sops" --config /dev/null decrypt "$f" > "expected/${f/.enc/}"
done
