# estela-go: `make run` starts the platform on this machine, `make test` runs every test.

GO ?= go
# Every first-party plugin is a module of its own under plugins/<kind>/<name>.
PLUGINS := $(patsubst plugins/%/go.mod,%,$(wildcard plugins/*/*/go.mod))

.PHONY: build build-local run test bench proto vet clean docs

# build-local builds what make run needs: the server and the local plugins.
build-local:
	$(GO) build -o bin/estela-server ./cmd/estela-server
	@for p in engine/local credentials/local; do \
		kind=$${p%%/*}; name=$${p##*/}; \
		(cd plugins/$$p && $(GO) build -o $(CURDIR)/bin/plugins/estela-$$kind-$$name .) || exit 1; \
	done

build:
	$(GO) build -o bin/estela-server ./cmd/estela-server
	@for p in $(PLUGINS); do \
		kind=$${p%%/*}; name=$${p##*/}; \
		echo "build plugin estela-$$kind-$$name"; \
		(cd plugins/$$p && $(GO) build -o $(CURDIR)/bin/plugins/estela-$$kind-$$name .) || exit 1; \
	done
	@if [ -d sdk/examples/engine-noop ]; then \
		echo "build plugin estela-engine-noop"; \
		cd sdk && $(GO) build -o $(CURDIR)/bin/plugins/estela-engine-noop ./examples/engine-noop; \
	fi

run: build-local
	deploy/local/run.sh

test: build
	deploy/local/test.sh

# Measures the platform on this machine (docs/benchmarks.md). BENCH_FLAGS passes flags to
# estela-bench, such as -quick; BENCH_OUT names a file for the figures as JSON.
bench: build
	$(GO) build -o bin/estela-bench ./cmd/estela-bench
	BENCH_OUT="$(BENCH_OUT)" bin/estela-bench $(BENCH_FLAGS)

proto:
	$(MAKE) -C sdk proto

vet:
	$(GO) vet ./...
	cd sdk && $(GO) vet ./...
	@for p in $(PLUGINS); do (cd plugins/$$p && $(GO) vet ./...) || exit 1; done

clean:
	rm -rf bin .estela-test

# docs/api.yaml is generated from the route table; a test fails when it is stale.
docs:
	$(GO) test ./core/internal/api -run TestOpenAPIDocumentUpToDate -count=1 -args -update-docs
