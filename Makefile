# kedge — build, run, test. Everything a fresh Debian machine needs is
# installed by the targets themselves (scripts/install-deps.sh).

GO        ?= go
# seccomp: libcontainer's seccomp support (cgo + libseccomp, linked statically).
TAGS      := netgo osusergo sqlite_omit_load_extension seccomp
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION) -extldflags -static
# Code kedge runs rarely or in small doses (the node agent, container setup,
# netlink, image pulls, YAML, CBOR, D-Bus, certificate parsing, the CLI, the
# generated k8s.io/api methods) is built without inlining: inlining copies a
# callee into each caller, which here buys size, not speed. A kedge process
# maps most of the binary (an idle agent's RSS is two-thirds its pages), so
# the ~0.9 MB this saves is ~0.8 MiB of RSS per process. BenchmarkStoreCluster
# A/B against the inlined build: throughput 0.97-0.98x at 16 clients (within
# run-to-run noise), RSS 0.98x. The store's and API server's hot paths
# (kedge.dev/kedge/server, raftstore, apimachinery, raft, SQLite, JSON) and
# the standard library's keep inlining.
COLD      := k8s.io/api/... github.com/vishvananda/... go.yaml.in/... github.com/fxamacker/... \
             github.com/godbus/... github.com/opencontainers/... github.com/google/go-containerregistry/... \
             github.com/cilium/... github.com/coreos/... github.com/eclipse/... github.com/mochi-mqtt/... \
             github.com/cyphar/... github.com/docker/... github.com/moby/... github.com/checkpoint-restore/... \
             k8s.io/klog/... k8s.io/utils/... golang.org/x/text/... gopkg.in/... sigs.k8s.io/yaml/... \
             sigs.k8s.io/randfill/... github.com/gogo/... \
             kedge.dev/kedge/agent/... kedge.dev/kedge/runtime/... kedge.dev/kedge/netpolicy/... \
             kedge.dev/kedge/cmd/... kedge.dev/kedge/internal/strategicpatch kedge.dev/kedge/internal/spdy \
             debug/... archive/... crypto/x509/... encoding/asn1 encoding/pem math/big mime/... html/... \
             text/... internal/profile runtime/pprof net/http/pprof flag os/user \
             vendor/golang.org/x/text/... vendor/golang.org/x/net/idna
GCFLAGS   := $(foreach p,$(COLD),-gcflags=$(p)=-l)
GOBUILD    = CGO_ENABLED=1 $(GO) build -trimpath -tags '$(TAGS)' $(GCFLAGS) -ldflags '$(LDFLAGS)'
DATA_DIR  ?= /var/lib/kedge
KUBECTL   ?= /usr/lib/google-cloud-sdk/bin/kubectl.1.32
IMAGES    := build/images
SRC       := $(shell find . -name '*.go' -not -path './build/*' 2>/dev/null) go.mod go.sum

export CGO_ENABLED := 1
SHELL := /bin/bash

.PHONY: all build build-arm64 build-armv7 deps images run test unit e2e e2e-long bench smoke-cross lint openapi clean

all: build

deps:
	@bash scripts/install-deps.sh

build: bin/kedge
bin/kedge: $(SRC) | deps
	$(GOBUILD) -o $@ ./cmd/kedge

build-arm64: bin/kedge-arm64
bin/kedge-arm64: $(SRC) | deps
	GOARCH=arm64 CC=aarch64-linux-gnu-gcc PKG_CONFIG_PATH=/usr/lib/aarch64-linux-gnu/pkgconfig $(GOBUILD) -o $@ ./cmd/kedge

build-armv7: bin/kedge-armv7
bin/kedge-armv7: $(SRC) | deps
	GOARCH=arm GOARM=7 CC=arm-linux-gnueabihf-gcc PKG_CONFIG_PATH=/usr/lib/arm-linux-gnueabihf/pkgconfig $(GOBUILD) -o $@ ./cmd/kedge

# Stand-in test images (OCI tarballs built from Debian's busybox-static and
# our own test programs) under the names ../shared/manifests uses.
images: $(IMAGES)/.stamp
$(IMAGES)/.stamp: $(shell find test/images -type f 2>/dev/null) | deps
	$(GO) run ./test/images -out $(IMAGES)
	@touch $@

# A working single-node cluster in the foreground; Ctrl-C stops it.
run: deps build images
	@mkdir -p $(DATA_DIR)/images && cp $(IMAGES)/all.tar $(DATA_DIR)/images/kedge-test-images.tar
	@echo "kedge: starting; in another shell:  export KUBECONFIG=$(DATA_DIR)/kubeconfig.yaml; kubectl get nodes"
	bin/kedge server --data-dir $(DATA_DIR)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet -tags '$(TAGS)' ./...

unit: deps
	$(GO) test -tags '$(TAGS)' -count=1 -timeout 15m $$($(GO) list ./... | grep -v /test/e2e)
	cd third_party/hashicorp-raft && $(GO) test -count=1 -run Kedge .

# End-to-end: the built binary driven by real kubectl (v1.32 and v1.27).
e2e: deps build images
	KEDGE_BIN=$(CURDIR)/bin/kedge KEDGE_IMAGES=$(CURDIR)/$(IMAGES) \
	  $(GO) test -tags '$(TAGS)' -count=1 -timeout 20m -v ./test/e2e

# The cross-built binaries must start under qemu-user.
smoke-cross: build-arm64 build-armv7
	qemu-aarch64-static bin/kedge-arm64 version
	qemu-arm-static bin/kedge-armv7 version

test: deps lint unit e2e smoke-cross
	@echo "kedge: all tests passed"

e2e-long: deps build images
	KEDGE_BIN=$(CURDIR)/bin/kedge KEDGE_IMAGES=$(CURDIR)/$(IMAGES) KEDGE_LONG=1 \
	  $(GO) test -tags '$(TAGS)' -count=1 -timeout 90m -v ./test/e2e
	# The store's long churn (100k updates) runs in-process.
	KEDGE_LONG=1 $(GO) test -tags '$(TAGS)' -count=1 -timeout 30m -run 'TestChurn' -v ./raftstore/raftkv

bench: deps build build-arm64 build-armv7 images
	@bash scripts/install-deps.sh etcd-server   # the store benchmark's peer (Debian's etcd 3.4)
	KEDGE_BIN=$(CURDIR)/bin/kedge KEDGE_IMAGES=$(CURDIR)/$(IMAGES) \
	  $(GO) test -tags '$(TAGS)' -count=1 -timeout 60m -run '^$$' -bench . -benchtime 1x -v ./test/e2e
	# Container start: kedge's runtime vs runc run vs ctr run (Debian's runc and containerd),
	# compiled as bin/kedge is ($(GCFLAGS)).
	@bash scripts/install-deps.sh containerd
	$(GO) test -tags '$(TAGS)' $(GCFLAGS) -count=1 -timeout 30m -run '^$$' -bench 'BenchmarkContainerStartPeers' -benchtime 1x -v ./runtime

clean:
	rm -rf bin build

# Regenerate the OpenAPI definitions from the upstream types (kube-openapi's openapi-gen) and the served documents.
openapi:
	$(GO) generate ./server/openapi/definitions ./server/openapi
