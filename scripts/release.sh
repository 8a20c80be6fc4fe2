#!/usr/bin/env bash
# `make release`: the release for this machine's platform, in the layout goreleaser makes
# for Terraform providers (see .goreleaser.yml, which keeps every platform):
#
#   dist/terraform-provider-platform_VERSION_OS_ARCH.zip    holding terraform-provider-platform_vVERSION (0755)
#   dist/terraform-provider-platform_VERSION_manifest.json  terraform-registry-manifest.json (protocol 6.0)
#   dist/terraform-provider-platform_VERSION_SHA256SUMS     sha256 of the zip(s) and the manifest
#   dist/terraform-provider-platform_VERSION_SHA256SUMS.sig binary detached GPG signature of it
#   dist/signing-key.asc                                    the signing key's public half (not published)
#
# Signs with the secret key named by GPG_FINGERPRINT; without one, with a throwaway RSA key
# made in a temporary GNUPGHOME (Terraform 1.0 cannot verify Ed25519 signatures).
#
# VERSION is Cargo.toml's `version`. Building a commit tagged `vX.Y.Z`, the tag must say the
# same, or the script stops: the names and the binary's --version can never disagree.
#
# Reproducible: the same commit gives byte-identical zips (stripped binary, paths remapped,
# fixed timestamp and permissions inside the zip). The build uses a target directory of its
# own (RELEASE_TARGET_DIR, default target/release-dist) so its RUSTFLAGS never invalidate
# the everyday target/release.
#
#   scripts/release.sh           build, package, sign into dist/ (DIST_DIR to change)
#   scripts/release.sh --names   print the artifact names as KEY=VALUE lines, build nothing
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
project=terraform-provider-platform
dist=${DIST_DIR:-$root/dist}
target_dir=${RELEASE_TARGET_DIR:-$root/target/release-dist}

log() { echo "release: $*" >&2; }
die() { echo "release: ERROR: $*" >&2; exit 1; }

version=$(awk -F'"' '/^\[/ { section = $0 } section == "[package]" && /^version *=/ { print $2; exit }' Cargo.toml)
[ -n "$version" ] || die "no version in Cargo.toml's [package]"
if tag=$(git describe --exact-match --tags HEAD 2>/dev/null); then
  [ "$tag" = "v$version" ] || die "HEAD is tagged $tag but Cargo.toml says version $version"
fi

# This machine's platform in Go's names, as goreleaser's {{ .Os }}_{{ .Arch }}.
case "$(uname -s)" in Linux) os=linux ;; Darwin) os=darwin ;; *) die "unsupported OS $(uname -s)" ;; esac
case "$(uname -m)" in x86_64) arch=amd64 ;; aarch64 | arm64) arch=arm64 ;; *) die "unsupported CPU $(uname -m)" ;; esac

# The names .goreleaser.yml's templates give (tests/release.rs checks they agree).
binary=${project}_v${version}
zip=${project}_${version}_${os}_${arch}.zip
sums=${project}_${version}_SHA256SUMS
sig=$sums.sig
manifest=${project}_${version}_manifest.json
# gpg's arguments, as in .goreleaser.yml `signs` (placeholders in braces).
sign_args=(--batch --local-user "{fingerprint}" --output "{signature}" --detach-sign "{artifact}")

if [ "${1:-}" = --names ]; then
  printf '%s\n' "project=$project" "version=$version" "os=$os" "arch=$arch" "binary=$binary" "zip=$zip" \
    "checksums=$sums" "checksum_algorithm=sha256" "signature=$sig" "manifest=$manifest" \
    "manifest_source=terraform-registry-manifest.json" "public_key=signing-key.asc" "sign_args=${sign_args[*]}"
  exit 0
fi
[ $# -eq 0 ] || die "usage: $0 [--names]"

for tool in cargo gpg python3 sha256sum git; do
  command -v "$tool" >/dev/null || die "$tool not found (scripts/testenv.sh installs gnupg and python3)"
done

# --- build ------------------------------------------------------------------------------
cargo_home=${CARGO_HOME:-$HOME/.cargo}
# Paths of this checkout, of the crate sources and of generated code (OUT_DIR, under the
# target directory) end up in panic messages: make them the same on every machine. The
# target directory may lie inside the checkout, so its rule comes last (rustc applies the
# last matching one).
export RUSTFLAGS="--remap-path-prefix=$root=/build/$project --remap-path-prefix=$cargo_home=/cargo --remap-path-prefix=$target_dir=/build/target"
export CARGO_TARGET_DIR=$target_dir
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct HEAD)}
log "building $project $version for ${os}_$arch (profile release, target dir $target_dir)"
start=$SECONDS
cargo build --locked --release --bin "$project" >&2
log "built in $((SECONDS - start)) s"
built=$target_dir/release/$project
[ -x "$built" ] || die "cargo left no $built"
reported=$("$built" --version)
[ "$reported" = "$project $version" ] || die "the binary says '$reported', expected '$project $version'"

# --- package ----------------------------------------------------------------------------
rm -rf "$dist"
mkdir -p "$dist"
# One entry, timestamp of the commit (zip's 2-second resolution, UTC), mode 0755, deflate 9.
python3 - "$built" "$dist/$zip" "$binary" "$SOURCE_DATE_EPOCH" <<'PY'
import sys, time, zipfile
src, out, name, epoch = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
stamp = time.gmtime(max(epoch, 315532800))[:6]  # zip dates start in 1980
info = zipfile.ZipInfo(name, date_time=stamp)
info.create_system = 3  # Unix, so external_attr holds the mode
info.external_attr = (0o100755 << 16)
info.compress_type = zipfile.ZIP_DEFLATED
with open(src, "rb") as f:
    data = f.read()
with zipfile.ZipFile(out, "w") as z:
    z.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
PY
cp terraform-registry-manifest.json "$dist/$manifest"
(cd "$dist" && sha256sum "$zip" "$manifest" | LC_ALL=C sort -k2 > "$sums")

# --- sign -------------------------------------------------------------------------------
gnupghome=
cleanup() {
  if [ -n "$gnupghome" ]; then
    GNUPGHOME=$gnupghome gpgconf --kill gpg-agent 2>/dev/null || true
    rm -rf "$gnupghome"
  fi
}
trap cleanup EXIT
fingerprint=${GPG_FINGERPRINT:-}
if [ -z "$fingerprint" ]; then
  gnupghome=$(mktemp -d "${TMPDIR:-/tmp}/release-gpg.XXXXXX")
  export GNUPGHOME=$gnupghome
  log "no GPG_FINGERPRINT: signing with a throwaway RSA key (public half in $dist/signing-key.asc)"
  gpg --batch --quiet --pinentry-mode loopback --passphrase '' \
    --quick-generate-key "$project release (throwaway) <release@localhost>" rsa3072 sign never 2>/dev/null \
    || die "gpg could not generate a key"
  fingerprint=$(gpg --batch --with-colons --list-secret-keys | awk -F: '$1 == "fpr" { print $10; exit }')
  [ -n "$fingerprint" ] || die "gpg made a key but lists no fingerprint"
fi
args=()
for a in "${sign_args[@]}"; do
  a=${a//\{fingerprint\}/$fingerprint}
  a=${a//\{signature\}/$dist/$sig}
  args+=("${a//\{artifact\}/$dist/$sums}")
done
gpg "${args[@]}" || die "gpg could not sign with $fingerprint"
gpg --batch --armor --export "$fingerprint" > "$dist/signing-key.asc"
[ -s "$dist/signing-key.asc" ] || die "gpg exported no public key for $fingerprint"

log "dist/: $(cd "$dist" && ls | tr '\n' ' ')"
log "$(cd "$dist" && sha256sum "$zip")"
