# memfd-luo: the two commands are `make run` and `make test`.
GO ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
LUOTEST := bin/luotest
ARGS ?=

.PHONY: run test unit vet bootstrap build list luotest clean matrix series-check bench

# Build the kernel (cached), boot it, preserve a 64 MiB memfd, kexec, verify.
run: bootstrap luotest
	$(LUOTEST) run $(ARGS)

# Unit tests, the end-to-end VM scenarios on the patched kernel (memfd-v2
# by default), the same scenarios on the debug flavour of the patched
# kernel (KASAN, lockdep, ..., panic_on_warn=1, plus its KUnit suites), then
# the interop cells of the matrix, each checked against `luotest compat`'s
# prediction: stock->patched (the series reads stock memfd-v2),
# patched->stock (rollback with default settings: stock reads the series'
# sparse memfd-v2) and patched(abi=v3)->stock (predicted and shown: every
# session lost, EIO). Kernel builds included (cached): one per kernel and
# flavour.
test: bootstrap vet unit luotest
	$(LUOTEST) run $(ARGS)
	$(LUOTEST) run -flavour debug $(ARGS)
	$(LUOTEST) matrix -cells 'stock->patched,patched->stock,patched(abi=v3)->stock' $(ARGS)

unit:
	$(GO) test -count=1 ./...

vet:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

bootstrap:
	@scripts/bootstrap.sh

luotest:
	@mkdir -p bin
	$(GO) build -o $(LUOTEST) ./harness/cmd/luotest

build: bootstrap luotest
	$(LUOTEST) build $(ARGS)

# The catalogue across kernel pairs (stock<->patched); two kernel builds.
matrix: bootstrap luotest
	$(LUOTEST) matrix $(ARGS)

# Slow: checkpatch --strict and a build after every patch of kernel/series.
series-check: bootstrap luotest
	$(LUOTEST) series check $(ARGS)

# Slow, not a test: kernel cost (stock vs patched, 64 MiB..2 GiB, three
# backings, 3 runs each) and harness cost; regenerates docs/benchmarks.md,
# docs/benchmarks.json and the plots. Bound it with e.g.
# ARGS='-reps 1 -max-size 256M'.
bench: bootstrap luotest
	$(LUOTEST) bench -out docs $(ARGS)

list: luotest
	@$(LUOTEST) list

clean:
	rm -rf bin out
