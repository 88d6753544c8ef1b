# The tests need root (they create network namespaces) and the Debian
# packages that .ci/run installs.
GO ?= go
FUZZTIME ?= 5s

.PHONY: build test vet fuzz sample bench

build:
	$(GO) build -o vrsniff ./cmd/vrsniff

vet:
	gofmt -l . | (! grep .) || (echo "gofmt wants changes" && exit 1)
	$(GO) vet ./...

test: vet
	$(GO) test -count=1 ./...
	$(MAKE) fuzz

# Every parser's fuzz target, briefly: a regression run on the seed corpus
# and FUZZTIME of new inputs each.
fuzz:
	./scripts/fuzz.sh $(FUZZTIME)

sample: build
	./vrsniff decap testdata/sample.pcap sample.pcapng
