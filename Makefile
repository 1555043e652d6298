# memfd-luo: the two commands are `make run` and `make test`.
GO ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
LUOTEST := bin/luotest
ARGS ?=

.PHONY: run test unit vet bootstrap build list luotest clean matrix series-check bench bench-cost qualify soak

# Build the patched kernel (cached), boot it, run the default catalogue
# (memfds of every shape preserved, kexec, verified).
run: bootstrap luotest
	$(LUOTEST) run $(ARGS)

# Unit tests, then the whole default catalogue on the debug flavour of the
# patched kernel (KASAN, lockdep, ..., panic_on_warn=1, plus its KUnit
# suites and the corruption scenarios), then the interop cells of the
# matrix on the normal flavour, each checked against `luotest compat`'s
# prediction: stock->patched (the series reads stock memfd-v2),
# patched->stock (rollback with default settings: stock reads the series'
# sparse memfd-v2) and patched(abi=v3)->stock (predicted and shown: every
# session lost, EIO). The catalogue on the normal patched kernel alone is
# `make run`; make test leaves it out because the debug run covers the
# same scenarios with more checks, and the matrix cells boot the normal
# patched kernel on both sides of a kexec. Kernel builds included
# (cached): patched debug, patched normal, and stock normal, which starts
# from the patched kernel's object directory.
#
# The debug kernel is built (or found in the cache) before the unit tests,
# so that the tests which read a kernel tree (the uAPI binding against
# liveupdate.h, kconfig, the selftests' build) find the Debian tree and the
# patched tree in the cache and run instead of skipping on a cold machine.
test: bootstrap vet luotest
	$(LUOTEST) build -flavour debug
	$(MAKE) --no-print-directory unit
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

# Slow: the series against stock at 1 GiB (issue #10), counted in guest
# instructions (-icount) and paired on the same file, plus the sparse win.
bench-cost: bootstrap luotest
	$(LUOTEST) bench -min-size 1G -max-size 1G -backings 4k,thp,sparse -kernels stock,patched -reps 3 -paired 4 -paired-reps 2 -cpus 1 -icount shift=0 -no-harness -no-catalogue -out docs/bench-1g-icount $(ARGS)

# Slow: can kernel A live-update into kernel B? The catalogue both ways
# and a 6-hop soak. Default pair: Debian's newest 7.2.y and the patched
# base; another with ARGS='-from debian:7.2 -to stock'.
qualify: bootstrap luotest
	$(LUOTEST) qualify $(or $(ARGS),-from debian:7.2 -to patched)

# Slow: 100 kexecs on the patched kernel, every byte verified and every
# page accounted for at every hop (about 15 min under TCG).
soak: bootstrap luotest
	$(LUOTEST) qualify -from patched -to patched -hops 100 -soak-only $(ARGS)

list: luotest
	@$(LUOTEST) list

clean:
	rm -rf bin out
