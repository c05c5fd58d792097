# flatstore — build, demo, tests and benchmarks.
#   make demo   the main job: a realistic event stream through the plugin into demo/out/
#   make test   the whole test suite (vet, race tests, the core without cgo, a short fuzz run)
# Both install what a fresh Debian machine lacks (see deps).

GO       ?= go
CC       ?= cc
BUILD    := build
SO       := $(BUILD)/out_flatstore.so
HOST     := $(BUILD)/flbhost
CTL      := $(BUILD)/flatstore-ctl
GOFILES  := $(shell find flatstore plugin cmd internal -name '*.go' -not -name '*_test.go' 2>/dev/null) go.mod go.sum
FUZZTIME ?= 30s
SOAK     ?= 60s

.PHONY: all build deps demo test test-race test-nocgo fuzz bench soak image clean

all: build

build: $(SO) $(HOST) $(CTL)

$(SO): $(GOFILES)
	@mkdir -p $(BUILD)
	CGO_ENABLED=1 $(GO) build -trimpath -buildmode=c-shared -o $@ ./plugin

$(HOST): host/flbhost.c
	@mkdir -p $(BUILD)
	$(CC) -O2 -Wall -Wextra -o $@ $< -ldl -lpthread

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

test: deps build
	$(GO) vet ./...
	CGO_ENABLED=0 $(GO) test -count=1 ./flatstore/...
	FLATSTORE_SO=$(abspath $(SO)) FLATSTORE_HOST=$(abspath $(HOST)) $(GO) test -race -count=1 -timeout 20m ./...
	$(MAKE) --no-print-directory fuzz FUZZTIME=3s

# Every fuzzer for FUZZTIME each (the seed corpora also run in plain go test).
# make test runs them briefly; longer: make fuzz FUZZTIME=5m
FUZZPKGS := ./flatstore/ ./flatstore/control/
fuzz:
	@for pkg in $(FUZZPKGS); do \
	  for f in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$pkg*_test.go | sed 's/^func //'); do \
	    echo "fuzz $$f for $(FUZZTIME)"; \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg >/tmp/flatstore-fuzz.log 2>&1 || { cat /tmp/flatstore-fuzz.log; exit 1; }; \
	    tail -n 1 /tmp/flatstore-fuzz.log; \
	  done; \
	done

bench: deps build
	FLATSTORE_SO=$(abspath $(SO)) FLATSTORE_HOST=$(abspath $(HOST)) $(GO) run ./cmd/flatstore-bench

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
