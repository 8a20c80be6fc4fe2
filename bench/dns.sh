#!/usr/bin/env bash
# `make bench-dns` (also part of `make bench`): 200 platform_dns_record resources (A with one
# or two addresses, TXT, CNAME, MX) in one zone of a real BIND 9 that this script starts on
# 127.0.0.1 (a free port, a random hmac-sha256 TSIG key allowed to update zone bench.test).
# Timed: terraform apply (create 200), the no-change plan (200 refreshed), terraform destroy,
# apply and destroy again at -parallelism=30; against nsupdate of the same 200 RRsets from one
# file, once with one conditional update message per RRset and once with all of them in one
# message, and the matching deletes. After every step the zone is read back with one AXFR
# (dig) and compared with what the step should have left: all 200 RRsets, or none. Besides
# wall time, the CPU of each command (with its children), of the provider processes (through
# a dev_overrides wrapper) and of named.
# Prints a Markdown table and writes it into bench/README.md between the `dns-results`
# markers (BENCH_NO_README=1 to skip). Knobs: BENCH_ROUNDS (3), BENCH_KEEP=1 (keep the work
# directory), BENCH_NO_BUILD=1 (skip the cargo build; use target/release as it is).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/bench/lib.sh"
rounds=${BENCH_ROUNDS:-3}
zone=bench.test
key_name=bench-key.
log() { echo "bench-dns: [$(date +%H:%M:%S)] $*" >&2; }
die() { echo "bench-dns: ERROR: $*" >&2; exit 1; }

named=/usr/sbin/named
[ -x "$named" ] || die "missing $named: run 'make testenv' (installs bind9 and bind9-dnsutils)"
for tool in nsupdate dig python3; do
  command -v "$tool" >/dev/null || die "$tool not found (make testenv installs dig and nsupdate)"
done
tf=$(command -v terraform) || die "terraform not found on PATH"
provider=$root/target/release/terraform-provider-platform
if [ -z "${BENCH_NO_BUILD:-}" ]; then
  log "cargo build --release --bin terraform-provider-platform"
  (cd "$root" && cargo build --quiet --release --bin terraform-provider-platform >&2)
fi
[ -x "$provider" ] || die "missing $provider: run 'make build'"
if [ ! -x /usr/bin/time ]; then
  log "installing Debian package 'time' (for /usr/bin/time)"
  sudo=
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq >&2
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends time >&2
fi
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

work=$(mktemp -d "${TMPDIR:-/tmp}/tfpp-bench-dns.XXXXXX")
named_pid=
cleanup() {
  local rc=$?
  set +e
  if [ -n "$named_pid" ]; then
    kill "$named_pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$named_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$named_pid" 2>/dev/null
  fi
  [ -n "${BENCH_KEEP:-}" ] && log "kept $work" || rm -rf "$work"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- BIND 9 -------------------------------------------------------------------------------
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
secret=$(head -c 32 /dev/urandom | base64)
mkdir -p "$work/bind"
cat > "$work/bind/$zone.zone" <<ZONE
\$ORIGIN $zone.
\$TTL 300
@ IN SOA ns.$zone. hostmaster.$zone. 1 3600 600 86400 60
@ IN NS ns.$zone.
ns IN A 127.0.0.1
ZONE
cat > "$work/bind/named.conf" <<CONF
options {
    directory "$work/bind";
    listen-on port $port { 127.0.0.1; };
    listen-on-v6 { none; };
    recursion no;
    allow-query { any; };
    notify no;
    dnssec-validation no;
    pid-file "$work/bind/named.pid";
    session-keyfile "$work/bind/session.key";
    managed-keys-directory "$work/bind";
};
controls { };
key "$key_name" { algorithm hmac-sha256; secret "$secret"; };
zone "$zone" {
    type primary;
    file "$work/bind/$zone.zone";
    allow-update { key "$key_name"; };
    allow-transfer { key "$key_name"; };
};
CONF
# -g: foreground, log to stderr; -n 1: one worker thread.
"$named" -g -n 1 -c "$work/bind/named.conf" > "$work/named.log" 2>&1 &
named_pid=$!
for _ in $(seq 300); do
  dig +tcp +norecurse +short +time=1 +tries=1 @127.0.0.1 -p "$port" "$zone" SOA 2>/dev/null | grep -q hostmaster && break
  kill -0 "$named_pid" 2>/dev/null || { tail -20 "$work/named.log" >&2; die "named exited"; }
  sleep 0.1
done
dig +tcp +norecurse +short @127.0.0.1 -p "$port" "$zone" SOA | grep -q hostmaster || { tail -20 "$work/named.log" >&2; die "named does not answer"; }
log "$("$named" -v | cut -d' ' -f1-2) serves $zone on 127.0.0.1:$port (pid $named_pid)"

# --- the 200 RRsets -----------------------------------------------------------------------
# 140 A (every third with two addresses), 30 TXT (on names that also have an A), 20 CNAME,
# 10 MX (every other with two exchangers): 200 RRsets, 267 records. hosts.json and mail.json
# feed the terraform configuration (for_each); the nsupdate files (A records first) and
# expected.tsv (what AXFR must show) are written from the same list.
python3 - "$work" "$zone" "$port" <<'PY'
import json, sys
work, zone, port = sys.argv[1], sys.argv[2], sys.argv[3]
sets = []  # (name, type, ttl, [records as terraform takes them], [rdata as dig prints it])
for i in range(140):
    addrs = [f"10.20.{i // 100}.{i % 100 + 1}"] + ([f"10.20.{i // 100}.{i % 100 + 101}"] if i % 3 == 0 else [])
    sets.append((f"host-{i:03}", "A", 60 if i % 10 == 0 else 300, addrs, addrs))
for i in range(30):
    texts = [f"owner=team-{i % 5}"] + ([f"service=api-{i} env=prod"] if i % 2 == 0 else [])
    sets.append((f"host-{i:03}", "TXT", 300, texts, [f'"{t}"' for t in texts]))
for i in range(20):
    target = f"host-{i + 40:03}.{zone}."
    sets.append((f"www-{i:02}", "CNAME", 3600, [target], [target]))
for i in range(10):
    mx = [f"10 host-{100 + i:03}.{zone}."] + ([f"20 host-{120 + i:03}.{zone}."] if i % 2 == 0 else [])
    sets.append((f"mail-{i:02}", "MX", 3600, mx, mx))
assert len(sets) == 200

# Terraform: the MX sets in a second resource whose records name their exchangers through the
# A records' fqdn (BIND refuses an MX whose exchanger in the zone has no address yet).
json.dump({f"{n}/{t}": {"name": n, "type": t, "ttl": ttl, "records": recs} for n, t, ttl, recs, _ in sets if t != "MX"},
          open(f"{work}/hosts.json", "w"), indent=1)
json.dump({f"{n}/{t}": {"name": n, "ttl": ttl, "mx": [{"preference": int(r.split()[0]), "host": r.split()[1].split(".")[0] + "/A"} for r in recs]}
           for n, t, ttl, recs, _ in sets if t == "MX"}, open(f"{work}/mail.json", "w"), indent=1)
with open(f"{work}/expected.tsv", "w") as f:
    for n, t, ttl, _, rdata in sets:
        for r in rdata:
            f.write(f"{n}.{zone}.\t{ttl}\t{t}\t{r}\n")

head = f"server 127.0.0.1 {port}\nzone {zone}.\n"
def adds(n, t, ttl, rdata):
    return "".join(f"update add {n}.{zone}. {ttl} {t} {r}\n" for r in rdata)
# One UPDATE message per RRset, conditional like the provider's: create only if the RRset
# does not exist; delete only if it holds exactly these records.
with open(f"{work}/add-each.txt", "w") as f:
    f.write(head + "".join(f"prereq nxrrset {n}.{zone}. {t}\n" + adds(n, t, ttl, rd) + "send\n" for n, t, ttl, _, rd in sets))
with open(f"{work}/delete-each.txt", "w") as f:
    f.write(head + "".join("".join(f"prereq yxrrset {n}.{zone}. {t} {r}\n" for r in rd)
                           + f"update delete {n}.{zone}. {t}\nsend\n" for n, t, ttl, _, rd in sets))
# All 200 RRsets in one UPDATE message, no prerequisites.
with open(f"{work}/add-batch.txt", "w") as f:
    f.write(head + "".join(adds(n, t, ttl, rd) for n, t, ttl, _, rd in sets) + "send\n")
with open(f"{work}/delete-batch.txt", "w") as f:
    f.write(head + "".join(f"update delete {n}.{zone}. {t}\n" for n, t, *_ in sets) + "send\n")
PY

mkdir -p "$work/tf" "$work/wrap"
export TF_IN_AUTOMATION=1 CHECKPOINT_DISABLE=1 TF_CLI_CONFIG_FILE=$work/terraformrc TF_VAR_tsig_secret=$secret
# Terraform starts the provider through this wrapper, which appends the CPU seconds (user +
# system) of each provider process to provider-cpu.txt.
printf '#!/bin/sh\nexec /usr/bin/time -a -o "%s" -f "%%U %%S" "%s" "$@"\n' "$work/provider-cpu.txt" "$provider" \
  > "$work/wrap/terraform-provider-platform"
chmod +x "$work/wrap/terraform-provider-platform"
cat > "$work/terraformrc" <<RC
provider_installation {
  dev_overrides { "registry.terraform.io/platform/platform" = "$work/wrap" }
  direct {}
}
RC
cat > "$work/tf/main.tf" <<TF
terraform {
  required_providers {
    platform = { source = "platform/platform" }
  }
}
variable "tsig_secret" {
  type      = string
  sensitive = true
}
provider "platform" {
  dns {
    rfc2136 {
      server        = "127.0.0.1:$port"
      key_name      = "$key_name"
      key_algorithm = "hmac-sha256"
      key_secret    = var.tsig_secret
    }
  }
}
resource "platform_dns_record" "hosts" {
  for_each = jsondecode(file("$work/hosts.json"))
  zone     = "$zone"
  name     = each.value.name
  type     = each.value.type
  ttl      = each.value.ttl
  records  = each.value.records
}
resource "platform_dns_record" "mail" {
  for_each = jsondecode(file("$work/mail.json"))
  zone     = "$zone"
  name     = each.value.name
  type     = "MX"
  ttl      = each.value.ttl
  records  = [for mx in each.value.mx : "\${mx.preference} \${platform_dns_record.hosts[mx.host].fqdn}"]
}
TF

# --- the measurements ---------------------------------------------------------------------
results=$work/results.tsv
: > "$results"
# Records: step, wall seconds, CPU seconds of the command with all its children (terraform's
# include the provider processes it started), CPU seconds of the provider processes, CPU
# seconds named spent meanwhile.
ticks=$(getconf CLK_TCK)
named_cpu() { awk -v hz="$ticks" '{ sub(/^.*\) /, ""); printf "%.2f\n", ($12 + $13) / hz }' "/proc/$named_pid/stat"; }
timed() { # name command...
  local name=$1 before
  shift
  : > "$work/provider-cpu.txt"
  before=$(named_cpu)
  /usr/bin/time -o "$work/time.txt" -f "%e %U %S" "$@" > "$work/last.log" 2>&1 \
    || { tail -20 "$work/last.log" >&2; die "$name failed"; }
  awk -v name="$name" -v named="$(named_cpu)" -v before="$before" '
    FILENAME == ARGV[1] { p += $1 + $2; next }
    /^[0-9.]+ [0-9.]+ [0-9.]+$/ { w = $1; c = $2 + $3 }
    END { printf "%s\t%s\t%.2f\t%.2f\t%.2f\n", name, w, c, p, named - before }' "$work/provider-cpu.txt" "$work/time.txt" >> "$results"
}
tfw=("$tf" -chdir="$work/tf")
fresh_state() { rm -f "$work/tf/terraform.tfstate" "$work/tf/terraform.tfstate.backup"; }
nsup=(nsupdate -v -y "hmac-sha256:$key_name:$secret")
# What the server holds, by one AXFR (signed with the key), against what it should: `all`
# (the 200 RRsets, records and TTLs) or `none` (only the SOA, NS and ns A of the zone file).
verify() { # all|none step
  dig +tcp +noall +answer +onesoa -y "hmac-sha256:$key_name:$secret" @127.0.0.1 -p "$port" "$zone" AXFR > "$work/axfr.txt" \
    || die "AXFR after $2 failed"
  python3 - "$work/axfr.txt" "$work/expected.tsv" "$zone" "$1" "$2" <<'PY' || die "after $2, the zone does not hold what it should"
import sys
axfr, expected, zone, want, step = sys.argv[1:]
base = {(f"{zone}.", "SOA"), (f"{zone}.", "NS"), (f"ns.{zone}.", "A")}
got = set()
for line in open(axfr):
    if not line.strip() or line.startswith(";"):
        continue
    name, ttl, _cls, rtype, rdata = line.rstrip("\n").split(None, 4)
    if (name.lower(), rtype) not in base:
        got.add((name.lower(), ttl, rtype, rdata))
exp = set(tuple(l.rstrip("\n").split("\t")) for l in open(expected)) if want == "all" else set()
rrsets = len({(n, t) for n, _, t, _ in got})
if got != exp:
    print(f"bench-dns: after {step}: {rrsets} RRsets, {len(got)} records; missing {sorted(exp - got)[:5]}, unexpected {sorted(got - exp)[:5]}", file=sys.stderr)
    sys.exit(1)
print(f"bench-dns: after {step}: dig (AXFR) sees {rrsets} RRsets, {len(got)} records, as expected", file=sys.stderr)
PY
}

verify none "start"
for round in $(seq "$rounds"); do
  log "round $round/$rounds: terraform ($("$tf" version | head -1))"
  fresh_state
  timed "terraform apply (create 200)" "${tfw[@]}" apply -auto-approve -no-color
  verify all "terraform apply"
  # -detailed-exitcode: exit 2 (changes planned) fails the step.
  timed "terraform plan (no changes, 200 refreshed)" "${tfw[@]}" plan -detailed-exitcode -no-color
  timed "terraform plan -refresh=false (no changes, no DNS traffic)" "${tfw[@]}" plan -refresh=false -detailed-exitcode -no-color
  timed "terraform destroy" "${tfw[@]}" destroy -auto-approve -no-color
  verify none "terraform destroy"
  fresh_state
  timed "terraform apply -parallelism=30 (create 200)" "${tfw[@]}" apply -auto-approve -parallelism=30 -no-color
  verify all "terraform apply -parallelism=30"
  timed "terraform destroy -parallelism=30" "${tfw[@]}" destroy -auto-approve -parallelism=30 -no-color
  verify none "terraform destroy -parallelism=30"
  log "round $round/$rounds: nsupdate"
  timed "nsupdate add, one message per RRset (200 sends)" "${nsup[@]}" "$work/add-each.txt"
  verify all "nsupdate add, one message per RRset"
  timed "nsupdate delete, one message per RRset (200 sends)" "${nsup[@]}" "$work/delete-each.txt"
  verify none "nsupdate delete, one message per RRset"
  timed "nsupdate add, all in one message (1 send)" "${nsup[@]}" "$work/add-batch.txt"
  verify all "nsupdate add, all in one message"
  timed "nsupdate delete, all in one message (1 send)" "${nsup[@]}" "$work/delete-batch.txt"
  verify none "nsupdate delete, all in one message"
done

table=$(awk -F'\t' '
  function sorted(col, name, c,   a, b, t) {
    for (a = 1; a <= c; a++) s[a] = v[name, a, col]
    for (a = 1; a <= c; a++) for (b = a + 1; b <= c; b++) if (s[b] < s[a]) { t = s[a]; s[a] = s[b]; s[b] = t }
    return (c % 2) ? s[(c + 1) / 2] : (s[c / 2] + s[c / 2 + 1]) / 2
  }
  { n[$1]++; for (f = 2; f <= 5; f++) v[$1, n[$1], f] = $f; if (!($1 in seen)) { seen[$1] = 1; names[++k] = $1 } }
  END {
    print "| step | median (s) | min–max (s) | runs | CPU (s) | of which provider (s) | named CPU (s) |"
    print "|---|---:|---:|---:|---:|---:|---:|"
    for (i = 1; i <= k; i++) {
      name = names[i]; c = n[name]
      # s[] holds the last sort; wall time last, for its min and max
      cpu = sorted(3, name, c); prov = sorted(4, name, c); srv = sorted(5, name, c); med = sorted(2, name, c)
      printf "| %s | %.2f | %.2f–%.2f | %d | %.2f | %s | %.2f |\n", name, med, s[1], s[c], c, cpu, (name ~ /^terraform/) ? sprintf("%.2f", prov) : "—", srv
    }
  }' "$results")
header="200 \`platform_dns_record\` in one zone on $("$named" -v | cut -d' ' -f1-2) ($("$tf" version | head -1), $(nproc) cores,
$(date -u +%Y-%m-%d), commit \`$(git -C "$root" rev-parse --short HEAD)\`; load average $load_start at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end):"
printf '%s\n\n%s\n' "$header" "$table"
if [ -z "${BENCH_NO_README:-}" ]; then
  write_readme_block "$root/bench/README.md" dns-results "Results: 200 DNS records" "$header" "$table"
  log "wrote the table into bench/README.md"
fi
