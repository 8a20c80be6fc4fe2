# Two commands do everything on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
TESTENV_DIR ?= $(HOME)/.cache/terraform-provider-platform/testenv
export PLATFORM_TESTENV_DIR := $(TESTENV_DIR)

.PHONY: check-disk all build release mirror testenv test test-release lint demo demo-down docs bench bench-stack bench-stack-plan bench-dns bench-k3s bench-reference-platforms clean

all: build

build:
	cargo build --locked --release --bin terraform-provider-platform

# dist/: this platform's zip, SHA256SUMS, its signature and the registry manifest, named as
# .goreleaser.yml names them (GPG_FINGERPRINT picks the signing key; else a throwaway one).
release:
	bash scripts/release.sh

# dist/mirror/: the release as a provider mirror, for filesystem_mirror and network_mirror.
mirror:
	bash scripts/mirror.sh

# Installs (once, then cached) Terraform 1.0.3, etcd, kube-apiserver and kube-controller-manager.
testenv:
	bash scripts/testenv.sh

# The release the install tests use, built before the tests when dist/ has none of this
# version (a release build beside running tests would slow them down).
test-release:
	@zip=$$(bash scripts/release.sh --names | sed -n 's/^zip=//p'); \
	if [ -f "dist/$$zip" ] && [ -f dist/mirror/registry.terraform.io/platform/platform/index.json ]; then \
	  echo "dist/ holds $$zip"; \
	else bash scripts/release.sh && bash scripts/mirror.sh; fi

# Unit tests, docs freshness, and acceptance tests with every Terraform found.
# The last line totals every test binary's results.
test: check-disk testenv lint test-release
	mkdir -p target; set -o pipefail; source $(TESTENV_DIR)/env.sh && \
	cargo test --locked --no-fail-fast --lib --bins --tests -- --test-threads=4 2>&1 | tee target/test.log; \
	status=$$?; \
	awk '/^test result:/ { p += $$4; f += $$6; i += $$8 } END { printf "tests: %d passed, %d failed, %d ignored\n", p, f, i }' target/test.log; \
	exit $$status

lint:
	cargo clippy --locked --all-targets --quiet -- -D warnings

# Starts a local control plane and applies examples/quickstart against it.
demo: testenv build
	source $(TESTENV_DIR)/env.sh && bash scripts/demo.sh

demo-down:
	bash scripts/demo.sh down

docs:
	cargo run --locked --quiet --bin generate-docs

bench: testenv build
	source $(TESTENV_DIR)/env.sh && bash bench/run.sh && bash bench/stack.sh && bash bench/stack-plan.sh && bash bench/dns.sh && bash bench/k3s.sh && bash bench/reference-platforms.sh

# Only the 300-object platform_stack against kubectl (about 5 minutes).
bench-stack: testenv build
	source $(TESTENV_DIR)/env.sh && bash bench/stack.sh

# Only the plans of a 1000-object platform_stack (no change, one value changed); compare builds
# with BENCH_PROVIDERS="after=target/release before=<other target/release>".
bench-stack-plan: testenv build
	source $(TESTENV_DIR)/env.sh && bash bench/stack-plan.sh

# Only the 200 platform_dns_record on a BIND 9 it starts, against nsupdate (a minute after the build).
bench-dns: testenv build
	bash bench/dns.sh

# Only platform_k3s_cluster on the node rig with the k3s stand-in: bootstrap of 5 nodes,
# no-change plan, upgrade, destroy (needs root; a few minutes after the release build).
bench-k3s: testenv
	bash bench/k3s.sh

clean:
	cargo clean

check-disk:
	bash scripts/check-disk.sh

bench-reference-platforms: testenv build
	source $(TESTENV_DIR)/env.sh && bash bench/reference-platforms.sh
