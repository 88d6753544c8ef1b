# The tests need root (they create network namespaces) and the Debian
# packages that .ci/run installs.
GO ?= go
FUZZTIME ?= 5s
# 0: no minimising of interesting inputs, so every target spends FUZZTIME on
# new ones (see scripts/fuzz.sh).
FUZZMINIMIZETIME ?= 0

# The release: static binaries (CGO_ENABLED=0, so the pure-Go packet
# filter compiler and no libc or libpcap) for every ARCHES, named with
# VERSION, and their SHA256SUMS, in DIST.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
DIST ?= dist
ARCHES ?= amd64 arm64
RELEASE_LDFLAGS = -s -w -X main.version=$(VERSION)

.PHONY: build test vet fuzz sample bench release version

build:
	$(GO) build -o vrsniff ./cmd/vrsniff

vet:
	gofmt -l . | (! grep .) || (echo "gofmt wants changes" && exit 1)
	$(GO) vet ./...

# TestRelease builds the release for every architecture: with a cold build
# cache that takes minutes on a small machine, beyond go test's default 10.
test: vet
	$(GO) test -count=1 -timeout 30m ./...
	$(MAKE) fuzz

# Every fuzz target, briefly: a regression run on the seed corpus and
# FUZZTIME of new inputs each, then the inputs each target ran.
fuzz:
	FUZZMINIMIZETIME=$(FUZZMINIMIZETIME) ./scripts/fuzz.sh $(FUZZTIME)

sample: build
	./vrsniff decap testdata/lab.pcap lab.pcapng

release:
	rm -rf $(DIST) && mkdir -p $(DIST)
	for arch in $(ARCHES); do \
		CGO_ENABLED=0 GOOS=linux GOARCH=$$arch $(GO) build -trimpath \
			-ldflags '$(RELEASE_LDFLAGS)' -o $(DIST)/vrsniff-$(VERSION)-linux-$$arch ./cmd/vrsniff || exit 1; \
	done
	cd $(DIST) && sha256sum vrsniff-$(VERSION)-linux-* > SHA256SUMS

version:
	@echo $(VERSION)
