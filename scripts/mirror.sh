#!/usr/bin/env bash
# `make mirror`: the release in dist/ as a provider mirror for air-gapped machines, in
# dist/mirror/ (MIRROR_DIR to change), laid out as `terraform providers mirror` lays it out:
#
#   registry.terraform.io/platform/platform/terraform-provider-platform_VERSION_OS_ARCH.zip
#   registry.terraform.io/platform/platform/index.json     {"versions": {"VERSION": {}}}
#   registry.terraform.io/platform/platform/VERSION.json   {"archives": {"OS_ARCH": {url, hashes: [h1:...]}}}
#
# Copy the directory anywhere and name it in a `filesystem_mirror { path = ... }` block, or
# serve it over HTTPS and name its URL in a `network_mirror { url = ... }` block. The zips
# are the release's own, so their `zh:` hashes match its SHA256SUMS. Runs scripts/release.sh
# first when dist/ holds no release of the current version.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dist=${DIST_DIR:-$root/dist}
mirror=${MIRROR_DIR:-$dist/mirror}
die() { echo "mirror: ERROR: $*" >&2; exit 1; }

eval "$(DIST_DIR=$dist bash "$root/scripts/release.sh" --names | sed 's/^\([a-z_]*\)=\(.*\)$/\1='"'"'\2'"'"'/')"
[ -f "$dist/$checksums" ] || DIST_DIR=$dist bash "$root/scripts/release.sh"
[ -f "$dist/$checksums" ] || die "scripts/release.sh left no $dist/$checksums"
command -v python3 >/dev/null || die "python3 not found (scripts/testenv.sh installs it)"

# Every zip the SHA256SUMS names (one per platform of the release), checked against it.
zips=$(awk '$2 ~ /\.zip$/ { print $2 }' "$dist/$checksums")
(cd "$dist" && sha256sum --quiet -c <(grep '\.zip$' "$checksums")) || die "the zips in $dist do not match $checksums"
dir=$mirror/registry.terraform.io/platform/platform
rm -rf "$mirror"
mkdir -p "$dir"
for z in $zips; do cp "$dist/$z" "$dir/"; done

# h1: is Terraform's hash of a package's contents: sha256 over the sorted lines
# "<sha256 of file>  <name>\n" of every file in the zip, base64-encoded.
python3 - "$dir" "$version" "$project" $zips <<'PY'
import base64, hashlib, json, os, sys, zipfile
out, version, project, zips = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
archives = {}
for z in zips:
    with zipfile.ZipFile(os.path.join(out, z)) as f:
        lines = sorted(
            "%s  %s\n" % (hashlib.sha256(f.read(i)).hexdigest(), i.filename)
            for i in f.infolist() if not i.is_dir()
        )
    h1 = "h1:" + base64.b64encode(hashlib.sha256("".join(lines).encode()).digest()).decode()
    target = z[len(f"{project}_{version}_"):-len(".zip")]
    archives[target] = {"url": z, "hashes": [h1]}
with open(os.path.join(out, "index.json"), "w") as f:
    json.dump({"versions": {version: {}}}, f, indent=2)
with open(os.path.join(out, f"{version}.json"), "w") as f:
    json.dump({"archives": archives}, f, indent=2, sort_keys=True)
PY
echo "mirror: $mirror ($(cd "$dir" && ls | tr '\n' ' '))" >&2
