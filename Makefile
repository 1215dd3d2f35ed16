# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
# Makefile: builds the BPF object, its skeleton and the vfswatch daemon out of tree under $(BUILD).

BUILD ?= build
SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
# SANITIZE=1: AddressSanitizer + UndefinedBehaviorSanitizer, any report fatal, built apart
ifeq ($(SANITIZE),1)
ifeq ($(BUILD),build)
BUILD := build-san
endif
EXTRA_CFLAGS += $(SAN_FLAGS)
EXTRA_LDFLAGS += $(SAN_FLAGS)
endif
# FUZZ=1: the libFuzzer targets (clang; the same sanitizers), built apart
ifeq ($(FUZZ),1)
ifeq ($(BUILD),build)
BUILD := build-fuzz
endif
CC := clang
EXTRA_CFLAGS += $(SAN_FLAGS) -fsanitize=fuzzer-no-link
EXTRA_LDFLAGS += $(SAN_FLAGS)
endif
CC ?= cc
CLANG ?= clang
BPFTOOL ?= bpftool
PKG_CONFIG ?= pkg-config
LLVM_STRIP ?= llvm-strip
ARCH ?= $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
prefix ?= /usr/local
DESTDIR ?=

ifeq ($(V),1)
Q =
msg =
else
Q = @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

LIBS_PC := libbpf libcjson libcrypto
PC_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(LIBS_PC) 2>/dev/null)
PC_LIBS := $(shell $(PKG_CONFIG) --libs $(LIBS_PC) 2>/dev/null)

CFLAGS ?= -O2 -g
WARN := -Wall -Wextra -Wformat=2 -Wshadow -Wno-unused-parameter
ifeq ($(CI),true)
WARN += -Werror
endif
ALL_CFLAGS := -std=gnu11 $(CFLAGS) $(WARN) -D_FORTIFY_SOURCE=2 -fstack-protector-strong \
	-Iinclude -Isrc -I$(BUILD) $(PC_CFLAGS) $(EXTRA_CFLAGS) -MMD -MP
LDLIBS := $(PC_LIBS) -lelf -lz $(EXTRA_LDFLAGS)

# clang -target bpf does not know the host's system include dirs; borrow them.
CLANG_BPF_SYS_INCLUDES ?= $(shell $(CLANG) -v -E - </dev/null 2>&1 \
	| sed -n '/<...> search starts here:/,/End of search list./{ s| \(/.*\)|-idirafter \1|p }')
BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -Ivmlinux/$(ARCH) -Iinclude -Ibpf \
	-Wall -Werror $(CLANG_BPF_SYS_INCLUDES) -MMD -MP
ifeq ($(DEBUG),1)
BPF_CFLAGS += -DVW_BPF_DEBUG
endif

BPF_SRCS := bpf/maps.bpf.c bpf/resolve.bpf.c bpf/tracepoint.bpf.c bpf/fentry.bpf.c
BPF_OBJS := $(patsubst bpf/%.bpf.c,$(BUILD)/bpf/%.tmp.bpf.o,$(BPF_SRCS))
# The same sources built for kernels without bpf_loop() or bpf_get_func_ret() (VW_COMPAT).
BPF_COMPAT_OBJS := $(patsubst bpf/%.bpf.c,$(BUILD)/bpf/%.compat.tmp.bpf.o,$(BPF_SRCS))
SKEL := $(BUILD)/vfswatch.skel.h
SKEL_COMPAT := $(BUILD)/vfswatch_compat.skel.h

# The code by layer (README "Layout"); every module but main.c, so that tests can link them.
LAYERS := core store source pipeline serve daemon cli
LIB_SRCS := $(foreach l,$(LAYERS),$(wildcard src/$(l)/*.c))
LIB_OBJS := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(LIB_SRCS))
MAIN_OBJ := $(BUILD)/obj/main.o

UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))

# Each unit test links the module it tests and what that needs, nothing more (a module that
# comes to need another fails to link here: add it). core/ and store/project are the base.
BASE_MODS := core/creds core/ignore core/log core/mounts core/record core/util store/config \
	store/project
test_bser_MODS := core/util serve/bser
test_changes_MODS := $(BASE_MODS) store/changes
test_debounce_MODS := core/record core/util pipeline/debounce
test_decoder_MODS := core/log source/decoder
test_ignore_MODS := core/ignore
test_index_MODS := $(BASE_MODS) store/index
test_json_out_MODS := core/record core/util pipeline/json_out
test_liveness_MODS := source/liveness
test_project_MODS := $(BASE_MODS)
test_reconcile_MODS := $(BASE_MODS) store/pathtable store/state pipeline/reconcile
test_route_MODS := $(BASE_MODS) pipeline/route
test_state_MODS := $(BASE_MODS) store/pathtable store/state
test_util_MODS := core/util
mods_of = $(patsubst %,$(BUILD)/obj/%.o,$($(1)_MODS))

FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRCS))

DEPS := $(BPF_OBJS:.o=.d) $(BPF_COMPAT_OBJS:.o=.d) $(LIB_OBJS:.o=.d) $(MAIN_OBJ:.o=.d) $(UNIT_BINS:=.d) $(FUZZ_BINS:=.d)

.PHONY: all clean test check check-layers git-tests unit integration vmtest burst bench bench-compare model install format check-format vmlinux deps \
	fuzz fuzzers soak vmtest-all
.DELETE_ON_ERROR:
.SECONDARY:

all: $(BUILD)/vfswatch

$(BUILD)/bpf/%.tmp.bpf.o: bpf/%.bpf.c | $(BUILD)/bpf
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BUILD)/bpf/%.compat.tmp.bpf.o: bpf/%.bpf.c | $(BUILD)/bpf
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -DVW_COMPAT -c $< -o $@

$(BUILD)/vfswatch.bpf.o: $(BPF_OBJS)
	$(call msg,LINK-BPF,$@)
	$(Q)$(BPFTOOL) gen object $@ $^

$(BUILD)/vfswatch_compat.bpf.o: $(BPF_COMPAT_OBJS)
	$(call msg,LINK-BPF,$@)
	$(Q)$(BPFTOOL) gen object $@ $^

$(SKEL): $(BUILD)/vfswatch.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name vfswatch_bpf > $@

# Only its ELF bytes are used: the loader opens them through the main skeleton, so the
# knobs and globals (data sections) of the two builds must be laid out alike.
$(SKEL_COMPAT): $(BUILD)/vfswatch_compat.bpf.o $(BUILD)/vfswatch.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)for o in $^; do $(BPFTOOL) btf dump file $$o | sed -n "/DATASEC/,/^\[/{s/type_id=[0-9]* //;s/^\[[0-9]*\] //;p}" \
		> $$o.datasec; done; cmp -s $(BUILD)/vfswatch_compat.bpf.o.datasec $(BUILD)/vfswatch.bpf.o.datasec \
		|| { echo "the compat build's data sections differ from the full build's" >&2; exit 1; }
	$(Q)$(BPFTOOL) gen skeleton $< name vfswatch_compat_bpf > $@

$(BUILD)/obj/%.o: src/%.c
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $@

# Only the loader includes the skeleton.
$(BUILD)/obj/source/loader.o: $(SKEL) $(SKEL_COMPAT)

$(BUILD)/vfswatch: $(MAIN_OBJ) $(LIB_OBJS)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $^ -o $@ $(LDLIBS)

.SECONDEXPANSION:
$(BUILD)/tests/%: tests/unit/%.c $$(call mods_of,%) | $(BUILD)/tests
	$(call msg,CC-TEST,$@)
	$(Q)test -n "$(call mods_of,$*)" || { echo "Makefile: $*_MODS: which modules $* links" >&2; exit 1; }
	$(Q)$(CC) $(ALL_CFLAGS) $< $(call mods_of,$*) -o $@ $(LDLIBS) $(shell $(PKG_CONFIG) --libs cmocka)

$(BUILD)/fuzz/%: tests/fuzz/%.c tests/fuzz/fuzz.h tests/fuzz/fuzz_route.h $(LIB_OBJS) | $(BUILD)/fuzz
	$(call msg,CC-FUZZ,$@)
	$(Q)$(CC) $(ALL_CFLAGS) -fsanitize=fuzzer $< $(LIB_OBJS) -o $@ $(LDLIBS) -lresolv

$(BUILD)/bpf $(BUILD)/obj $(BUILD)/tests $(BUILD)/fuzz:
	$(Q)mkdir -p $@

unit: $(UNIT_BINS)

fuzzers: $(FUZZ_BINS)

# libFuzzer: make fuzz [T=config] [S=seconds per target]: the kept crashing inputs first, then
# S seconds from the seed corpus (new finds go to build-fuzz/corpus, crashes to build-fuzz/crashes).
T ?=
S ?= 60
fuzz:
	$(Q)$(MAKE) -s FUZZ=1 CI=$(CI) fuzzers
	$(Q)sh tests/fuzz/run.sh $(S) $(T)

# The whole suite: the layering, unit, end-to-end (root + BTF), and the fentry VM test.
check test: all unit
	$(Q)./tests/run-all.sh

# git's own fsmonitor and status tests against `vfswatch git-fsmonitor` (Debian's git source,
# fetched once under build/git-tests/; takes minutes: not part of make check; README has the result)
git-tests: all
	$(Q)sh scripts/git-tests.sh

# A lower layer of src/ never includes a higher one, no include cycle, no file over its bound.
check-layers:
	$(Q)python3 scripts/check-layers.py

bench: all
	$(Q)sh scripts/deps.sh bench
	$(Q)python3 tests/bench/bench.py

# make bench-compare BASE=path/to/an/older/vfswatch: write overhead, latency, idle wake-ups and
# throughput of this build and that one, side by side in one run (build/bench-compare/)
bench-compare: all
	$(Q)test -x "$(BASE)" || { echo "bench-compare: BASE=path/to/vfswatch to compare with"; exit 2; }
	$(Q)VW_BENCH_BASELINE="$(abspath $(BASE))" VW_BENCH_OUT=$(BUILD)/bench-compare \
		python3 tests/bench/bench.py

# The model-based exactness test: SEEDS random operation sequences of OPS operations per
# backend and mode; prints each failing seed with a minimized operation list.
SEEDS ?= 200
OPS ?= 50
MODEL_BACKENDS ?= tracepoint fanotify
model: all
	$(Q)rc=0; for b in $(MODEL_BACKENDS); do for m in settled raw; do \
		python3 tests/model/model.py --backend $$b --mode $$m --seeds $(SEEDS) --ops $(OPS) \
			|| rc=1; done; done; exit $$rc

# The liveness bursts: BURSTS bursts of 20 000 mkdirs per backend here (tracepoint, fanotify), each
# followed by a probe write that must be told within a second; then BURSTS_VM in the VM (fentry),
# with the ready test (changes within microseconds of ready) READY_VM times.
BURSTS ?= 50
BURSTS_VM ?= 10
READY_VM ?= 30
burst: all
	$(Q)VW_BURSTS=$(BURSTS) python3 tests/integration/run.py test_liveness.py \
		TracepointBursts.test_bursts_of FanotifyBursts.test_bursts_of
	$(Q)KERNELS="$(or $(KERNELS),6.12)" VMTEST_SEEDS=0 VW_BURSTS=$(BURSTS_VM) \
		VW_READY_RUNS=$(READY_VM) VMTEST_CLASSES="test_liveness.FentryBursts.test_bursts_of \
		test_liveness.FentryReady." sh scripts/vmtest.sh

# The VM tests: make vmtest [KERNELS="5.10 6.12"] runs the fentry backend's suite and model on
# each kernel (make check does this); make vmtest-all every backend each kernel can run, on
# 5.10, 6.1 and 6.12, and writes the support matrix to build/vm/matrix.md and README.md.
vmtest: all
	$(Q)KERNELS="$(or $(KERNELS),5.10 6.12)" sh scripts/vmtest.sh

# The matrix measured goes into README.md (between its vmtest-matrix markers), pass or fail.
vmtest-all: all
	$(Q)rc=0; KERNELS="$(or $(KERNELS),5.10 6.1 6.12)" VMTEST_ALL=1 sh scripts/vmtest.sh || rc=$$?; \
		python3 scripts/readme-matrix.py $(BUILD)/vm/matrix.md README.md && exit $$rc

# make soak DURATION=600 [SOAK_BACKEND=fanotify]: mixed load on 20 projects; samples in build/soak/
DURATION ?= 600
SOAK_BACKEND ?= tracepoint
soak: all
	$(Q)python3 tests/soak/soak.py --duration $(DURATION) --backend $(SOAK_BACKEND)

deps:
	$(Q)sh scripts/deps.sh

vmlinux:
	$(Q)sh scripts/gen-vmlinux.sh

sbindir ?= $(prefix)/sbin
unitdir ?= /lib/systemd/system
sysconfdir ?= /etc

install: all
	install -D -m 0755 $(BUILD)/vfswatch $(DESTDIR)$(sbindir)/vfswatch
	install -d $(DESTDIR)$(unitdir) $(DESTDIR)$(sysconfdir)/vfswatch
	sed 's|@SBINDIR@|$(sbindir)|' scripts/vfswatch.service > $(DESTDIR)$(unitdir)/vfswatch.service
	install -m 0644 scripts/config.example.json $(DESTDIR)$(sysconfdir)/vfswatch/config.example.json
	install -D -m 0644 README.md $(DESTDIR)$(prefix)/share/doc/vfswatch/README.md

format:
	$(Q)clang-format -i src/*.c src/*/*.[ch] bpf/*.c bpf/*.h include/*.h tests/unit/*.c

check-format:
	$(Q)clang-format --dry-run -Werror src/*.c src/*/*.[ch] bpf/*.c bpf/*.h include/*.h tests/unit/*.c

clean:
	$(Q)rm -rf $(BUILD)

-include $(DEPS)
