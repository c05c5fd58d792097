# flatstore — build, demo, tests, benchmarks and install (PREFIX=/usr/local, DESTDIR).
#   make demo   the main job: a realistic event stream through the plugin into demo/out/
#   make test   the whole test suite (vet, race tests, the core without cgo, a short fuzz run)
# Both install what a fresh Debian machine lacks (see deps).

GO       ?= go
CC       ?= cc
BUILD    := build
SO       := $(BUILD)/out_flatstore.so
HOST     := $(BUILD)/flbhost
CTL      := $(BUILD)/flatstore-ctl
GOFILES  := $(shell find flatstore plugin cmd internal -name '*.go' -not -name '*_test.go' 2>/dev/null) \
            $(wildcard plugin/*.c plugin/*.h) go.mod go.sum
HOSTSRC  := $(wildcard host/*.c)
FUZZTIME ?= 30s
SOAK     ?= 60s
PREFIX   ?= /usr/local
DESTDIR  ?=
# staticcheck, pinned, installed from the Go module proxy into build/tools (once; offline after)
STATICCHECK_VERSION := v0.8.2
STATICCHECK := $(BUILD)/tools/staticcheck

.PHONY: all build deps demo test test-race test-nocgo fuzz bench bench-against soak image clean install staticcheck engine-note

all: build

build: $(SO) $(HOST) $(CTL)

$(SO): $(GOFILES)
	@mkdir -p $(BUILD)
	CGO_ENABLED=1 $(GO) build -trimpath -buildmode=c-shared -o $@ ./plugin

$(HOST): $(HOSTSRC) $(wildcard host/*.h) plugin/flb_abi.h
	@mkdir -p $(BUILD)
	$(CC) -O2 -Wall -Wextra -o $@ $(HOSTSRC) -rdynamic -ldl -lpthread

$(CTL): $(GOFILES)
	@mkdir -p $(BUILD)
	CGO_ENABLED=0 $(GO) build -trimpath -o $@ ./cmd/flatstore-ctl

# What a fresh Debian machine may lack: a C compiler for cgo and the host,
# and logrotate for the rotation tests. Installs only when run as root.
deps:
	@missing=""; \
	command -v $(CC) >/dev/null 2>&1 || missing="$$missing gcc libc6-dev"; \
	command -v logrotate >/dev/null 2>&1 || [ -x /usr/sbin/logrotate ] || missing="$$missing logrotate"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing:$$missing"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "warning: missing$$missing (install them; some tests will skip)"; fi; \
	fi

demo: deps build
	$(GO) run ./cmd/flatstore-demo -so $(SO) -host $(HOST)

test: deps build $(STATICCHECK)
	$(GO) vet ./...
	@$(MAKE) --no-print-directory staticcheck
	CGO_ENABLED=0 $(GO) test -count=1 ./flatstore/...
	@$(MAKE) --no-print-directory engine-note
	FLATSTORE_SO=$(abspath $(SO)) FLATSTORE_HOST=$(abspath $(HOST)) $(GO) test -race -count=1 -timeout 20m ./...
	$(MAKE) --no-print-directory fuzz FUZZTIME=2000x

# Says whether the tests against a real Fluent Bit (e2e/fluentbit_test.go) run, and
# why not: they need FLUENT_BIT=/path/to/fluent-bit or a fluent-bit on PATH.
engine-note:
	@if [ -n "$$FLUENT_BIT" ]; then echo "real-engine tests: against FLUENT_BIT=$$FLUENT_BIT"; \
	elif command -v fluent-bit >/dev/null 2>&1; then echo "real-engine tests: against $$(command -v fluent-bit) (on PATH)"; \
	else echo "real-engine tests SKIPPED (e2e/fluentbit_test.go): FLUENT_BIT is not set and no fluent-bit is on PATH;" \
	  "set FLUENT_BIT=/path/to/fluent-bit (v5.1) to run them. Everything they check is also checked through build/flbhost."; fi

# Every fuzzer for FUZZTIME each (the seed corpora also run in plain go test).
# make test runs each for 2000 inputs (a count, not a time: a short -fuzztime on a loaded
# machine can end in the fuzzing engine's own "context deadline exceeded"); longer: make fuzz FUZZTIME=5m
FUZZPKGS := ./flatstore/ ./flatstore/event/ ./flatstore/filestore/ ./flatstore/control/ ./cmd/flatstore-ctl/
fuzz:
	@for pkg in $(FUZZPKGS); do \
	  for f in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$pkg*_test.go | sed 's/^func //'); do \
	    echo "fuzz $$f for $(FUZZTIME)"; \
	    log=$$(mktemp) || exit 1; \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg >$$log 2>&1 || { cat $$log; rm -f $$log; exit 1; }; \
	    tail -n 1 $$log; rm -f $$log; \
	  done; \
	done

# staticcheck at a pinned version, in build/tools rather than the user's GOPATH; once
# installed it needs no network. make staticcheck runs it alone.
$(STATICCHECK):
	@mkdir -p $(dir $@)
	GOBIN=$(abspath $(dir $@)) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

# Every finding fails the target.
staticcheck: $(STATICCHECK)
	$(STATICCHECK) ./...

# The plugin where Fluent Bit's packages keep their own (lib/fluent-bit), flatstore-ctl in bin.
install: $(SO) $(CTL)
	install -D -m 0755 $(SO) $(DESTDIR)$(PREFIX)/lib/fluent-bit/out_flatstore.so
	install -D -m 0755 $(CTL) $(DESTDIR)$(PREFIX)/bin/flatstore-ctl

bench: deps build
	FLATSTORE_SO=$(abspath $(SO)) FLATSTORE_HOST=$(abspath $(HOST)) $(GO) run ./cmd/flatstore-bench

# The core's benchmarks against an earlier commit, alternated: make bench-against REF=HEAD~1
REF ?= HEAD
bench-against:
	$(GO) run ./cmd/flatstore-bench -against $(REF)

soak: deps build
	FLATSTORE_SO=$(abspath $(SO)) FLATSTORE_HOST=$(abspath $(HOST)) FLATSTORE_SOAK=$(SOAK) \
	  $(GO) test -count=1 -run '^TestSoak$$' -timeout 0 -v ./e2e/

# The Fluent Bit image with the plugin, and the compose file's other two.
image:
	docker build -t flatstore:dev .
	docker build --target logrotate -t flatstore-logrotate:dev .
	docker build --target app -t flatstore-app:dev .

clean:
	rm -rf $(BUILD) demo/out demo/events.msgpack demo/events.jsonl

# --- packages (make package): a .deb and a tarball of the same files, per architecture --------
# Appended as one block; see packaging/ and the README (Packages).

# What earlier demos left beside their data: plugins.conf (the demo now passes -e) and the
# control socket of a run that was killed.
clean: clean-demo-leftovers
.PHONY: clean-demo-leftovers
clean-demo-leftovers:
	rm -f demo/plugins.conf demo/control.sock

# make package: build/pkg/flatstore_VERSION_ARCH.deb and .tar.gz for each of PKG_ARCHS (the
# tarball holds the same files, rooted at /). Also builds build/ARCH/{out_flatstore.so,
# flatstore-ctl,flbhost}. As root it installs the cross compiler; an architecture without one
# is skipped with a message. VERSION defaults to packaging/version.sh (git describe).
PKG_ARCHS ?= amd64 arm64
.PHONY: package package-deb package-tar
package: deps
	GO=$(GO) BUILD=$(BUILD) $(if $(VERSION),VERSION=$(VERSION)) packaging/build.sh $(PKG_ARCHS)
package-deb: deps
	GO=$(GO) BUILD=$(BUILD) $(if $(VERSION),VERSION=$(VERSION)) packaging/build.sh -deb $(PKG_ARCHS)
package-tar: deps
	GO=$(GO) BUILD=$(BUILD) $(if $(VERSION),VERSION=$(VERSION)) packaging/build.sh -tar $(PKG_ARCHS)
