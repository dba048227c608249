# KvmPresync — top-level build. `make run` (the main job) and `make test` (all tests) work on a fresh
# Debian machine: they install what they need (apt packages, NuGet restore) first.
SHELL := /bin/bash
DOTNET ?= dotnet
CONFIG ?= Release
BUILD := build
CLI := $(BUILD)/kvmpresync

.PHONY: all deps native build cli pack test run bench fuzz clean api guest-image many-guests soak install-libvirt traces page-corpus

all: build cli

deps:
	@tools/ensure-deps.sh

native: deps
	$(MAKE) -s -C native

build: native
	$(DOTNET) build KvmPresync.sln -c $(CONFIG) -nologo -v:q -clp:ErrorsOnly

# The CLI, published once as build/kvmpresync (scripts and benchmarks call this path).
cli: native
	$(DOTNET) publish src/KvmPresync.Cli/KvmPresync.Cli.csproj -c $(CONFIG) -o $(BUILD)/cli -nologo -v:q -clp:ErrorsOnly
	ln -sfn cli/kvmpresync $(CLI)

# The NuGet packages -> build/packages/ (docs/ARCHITECTURE.md, "Packages"; docs/EMBEDDING.md): KvmPresync (add this one:
# it depends on one package per engine layer), KvmPresync.Vmm, KvmPresync.Libvirt; version from Directory.Build.props.
pack: native
	rm -rf $(BUILD)/packages
	$(DOTNET) pack KvmPresync.sln -c $(CONFIG) -nologo -v:q -clp:ErrorsOnly
	@ls $(BUILD)/packages/*.nupkg

# The Linux guest image (Debian kernel + busybox initramfs + our static workload) -> build/guest-image/.
# Installs its Debian packages when missing (~80 s once), then ~4 s. make test builds it first. docs/WORKLOADS.md, "Linux guest".
guest-image:
	tools/build-guest-image.sh $(BUILD)/guest-image

# Every test (unit + real /dev/kvm + a real libvirtd + the Linux guest under QEMU TCG); ends with one line
# "N passed, N failed, N skipped". The image is built first; if that fails (no root to install its packages), the
# Linux guest tests skip with the reason. The packages are built first too (make pack): tests/…/Packaging checks them
# and builds samples/HypervisorManager from them.
test: native
	@tools/ensure-test-deps.sh
	@$(MAKE) -s pack
	@$(MAKE) -s guest-image || echo "make test: the Linux guest image could not be built; its tests will skip" >&2
	$(DOTNET) build tests/KvmPresync.Tests/KvmPresync.Tests.csproj -c $(CONFIG) -nologo -v:q -clp:ErrorsOnly
	tools/run-tests.sh tests/KvmPresync.Tests/bin/$(CONFIG)/net10.0/KvmPresync.Tests

# The main job: the paper's experiment, quick (15 s sync, 1 run) on the in-process 1 Gbit/s link.
run: cli
	$(CLI) repro --quick --json $(BUILD)/repro-quick.json --plots $(BUILD)/plots

# The five real-application traces (vim, mpv audio, mpv 720p video, PostgreSQL under pgbench, memcached under memaslap),
# each captured for 62 s with `kvmpresync trace capture` into tests/data/traces/apps/ (docs/WORKLOADS.md, "Real
# applications"). Installs the Debian packages and generates the inputs first. About 7 minutes. TRACES="text cache"
# captures a subset.
traces: cli
	tools/make-traces.sh

# The real-page corpus the compression benchmark reads (bench/corpus/pages/: 256 sampled written pages per program, from the
# same five programs as `make traces`, 20 s each; tools/page-corpus.sh).
page-corpus: cli
	tools/page-corpus.sh

# AFL++ over the SharpFuzz harness (fuzz/README.md): FUZZ_SECONDS per target (default 60), FUZZ_TARGET=frames|handshake|receiver
# (default all three). Prints executions and crashes per target; fails when a crash was found.
fuzz: native
	FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_TARGET="$(FUZZ_TARGET)" tools/fuzz.sh

bench: native
	$(DOTNET) run -c Release --project bench/KvmPresync.Bench -- $(ARGS)

clean:
	$(MAKE) -s -C native clean
	rm -rf $(BUILD)
	$(DOTNET) clean KvmPresync.sln -nologo -v:q

# Four 256 MiB guests presync at once into one receive process (issue: many guests); prints memory and CPU figures.
many-guests: native
	$(DOTNET) build tests/KvmPresync.Tests/KvmPresync.Tests.csproj -c $(CONFIG) -nologo -v:q -clp:ErrorsOnly
	tests/KvmPresync.Tests/bin/$(CONFIG)/net10.0/KvmPresync.Tests -noColor -showLiveOutput -class KvmPresync.Tests.Migration.ManyGuestsTests

# Soak (not in CI): a movie guest presyncs for SOAK_MINUTES (default 30), then launches; resident memory and open
# handles of both processes are sampled and must stay flat after warm-up; the guest must verify at the end.
SOAK_MINUTES ?= 30
soak: cli
	tools/soak.sh $(SOAK_MINUTES)


# The libvirt pieces (docs/LIBVIRT.md): the preload tracker for source domains' QEMU (readable by libvirt's QEMU user)
# and, on a destination host, the qemu hook. libvirtd reads hooks only when it starts: restart it after installing.
LIBVIRT_LIBDIR ?= /usr/local/lib/kvmpresync
install-libvirt: native
	install -d -m 0755 $(LIBVIRT_LIBDIR)
	install -m 0644 native/build/libkvmpresync-track.so $(LIBVIRT_LIBDIR)/
	install -m 0755 native/build/kvmpresync-libvirt-hook $(LIBVIRT_LIBDIR)/
	@echo "source hosts: add to each domain what 'build/kvmpresync libvirt check DOMAIN' prints"
	@echo "destination hosts: install -D -m 0755 $(LIBVIRT_LIBDIR)/kvmpresync-libvirt-hook /etc/libvirt/hooks/qemu (or into hooks/qemu.d/), restart libvirtd, run 'kvmpresync receive --libvirt'"

# Accepts the current public API of every library into api/<Assembly>.txt (Api/PublicApiTests fails with a diff until then).
api:
	$(DOTNET) build tests/KvmPresync.Tests/KvmPresync.Tests.csproj -c $(CONFIG) -nologo -v:q -clp:ErrorsOnly
	KVMPRESYNC_ACCEPT_API=1 tests/KvmPresync.Tests/bin/$(CONFIG)/net10.0/KvmPresync.Tests -noColor -class KvmPresync.Tests.Api.PublicApiTests
