# The tests need root (they create network namespaces) and the Debian
# packages that .ci/run installs.
GO ?= go
FUZZTIME ?= 5s
# 0: no minimising of interesting inputs, so every target spends FUZZTIME on
# new ones (see scripts/fuzz.sh).
FUZZMINIMIZETIME ?= 0

.PHONY: build test vet fuzz sample bench

build:
	$(GO) build -o vrsniff ./cmd/vrsniff

vet:
	gofmt -l . | (! grep .) || (echo "gofmt wants changes" && exit 1)
	$(GO) vet ./...

test: vet
	$(GO) test -count=1 ./...
	$(MAKE) fuzz

# Every fuzz target, briefly: a regression run on the seed corpus and
# FUZZTIME of new inputs each, then the inputs each target ran.
fuzz:
	FUZZMINIMIZETIME=$(FUZZMINIMIZETIME) ./scripts/fuzz.sh $(FUZZTIME)

sample: build
	./vrsniff decap testdata/lab.pcap lab.pcapng
