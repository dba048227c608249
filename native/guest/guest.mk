# native/guest/guest.mk — builds the freestanding workload guest and its hosted test harness.
# Included by native/Makefile (which runs in native/ with BUILD=build); also usable on its own:
#   make -f native/guest/guest.mk                 (from the repo root: native/build/guest/workload.bin)
#   make -f native/guest/guest.mk guest-check     (hosted self-checks, ~1.5 min)
# Targets: $(BUILD)/guest/workload.bin, guest-elf-check, guest-hosted, guest-check, guest-content.

KP_GUEST_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
BUILD ?= $(KP_GUEST_DIR)/../build
KP_GUEST_CC ?= gcc
KP_GUEST_OBJCOPY ?= objcopy
KP_GUEST_OUT := $(BUILD)/guest

KP_GUEST_CORE := rt.c boot.c content.c fill.c region.c heartbeat.c main.c \
                 wl_idle.c wl_text.c wl_audio.c wl_movie.c wl_pattern.c wl_replay.c wl_database.c
KP_GUEST_HDRS := $(addprefix $(KP_GUEST_DIR)/,rt.h port.h ticker.h) $(KP_GUEST_DIR)/../include/kvmpresync_guest.h

# No SSE/MMX/AVX: the guest needs no FPU state. No red zone: nothing may assume one without an IST.
# -fno-tree-loop-distribute-patterns: gcc must not turn our memset loop into a call to memset.
KP_GUEST_CFLAGS := -std=gnu11 -O2 -Wall -Wextra -Werror -ffreestanding -fno-pic -fno-pie \
    -mcmodel=small -mno-red-zone -mno-sse -mno-mmx -mno-avx -mno-80387 -fno-stack-protector \
    -fno-stack-clash-protection -fcf-protection=none -fno-asynchronous-unwind-tables \
    -fno-unwind-tables -fno-tree-loop-distribute-patterns -fno-common
KP_GUEST_LDFLAGS := -nostdlib -static -no-pie -Wl,-T,$(KP_GUEST_DIR)/guest.ld -Wl,--build-id=none \
    -Wl,-z,noexecstack -Wl,-z,max-page-size=4096 -Wl,--no-undefined

KP_GUEST_OBJS := $(KP_GUEST_OUT)/obj/entry.o $(KP_GUEST_OUT)/obj/libc.o \
                 $(patsubst %.c,$(KP_GUEST_OUT)/obj/%.o,$(KP_GUEST_CORE))

.PHONY: guest-elf-check guest-hosted guest-check

$(KP_GUEST_OUT)/obj/%.o: $(KP_GUEST_DIR)/%.c $(KP_GUEST_HDRS)
	@mkdir -p $(dir $@)
	$(KP_GUEST_CC) $(KP_GUEST_CFLAGS) -c $< -o $@

$(KP_GUEST_OUT)/obj/entry.o: $(KP_GUEST_DIR)/entry.S
	@mkdir -p $(dir $@)
	$(KP_GUEST_CC) -c $< -o $@

$(KP_GUEST_OUT)/workload.elf: $(KP_GUEST_OBJS) $(KP_GUEST_DIR)/guest.ld
	$(KP_GUEST_CC) $(KP_GUEST_CFLAGS) $(KP_GUEST_LDFLAGS) -o $@ $(KP_GUEST_OBJS)

$(KP_GUEST_OUT)/workload.bin: $(KP_GUEST_OUT)/workload.elf
	$(KP_GUEST_OBJCOPY) -O binary $< $@

# The image must be self-contained: entry at 0x100000, no relocations, no undefined symbols.
guest-elf-check: $(KP_GUEST_OUT)/workload.bin
	@size $(KP_GUEST_OUT)/workload.elf
	@ls -l $(KP_GUEST_OUT)/workload.bin
	@test "$$(nm $(KP_GUEST_OUT)/workload.elf | awk '$$3 == "_start" {print $$1}')" = "0000000000100000" \
	    || { echo "guest: _start is not at 0x100000" >&2; exit 1; }
	@test -z "$$(nm -u $(KP_GUEST_OUT)/workload.elf)" || { echo "guest: undefined symbols:" >&2; nm -u $(KP_GUEST_OUT)/workload.elf >&2; exit 1; }
	@! readelf -r $(KP_GUEST_OUT)/workload.elf | grep -q 'Relocation section' \
	    || { echo "guest: image has relocations" >&2; readelf -r $(KP_GUEST_OUT)/workload.elf >&2; exit 1; }
	@echo "guest: workload.bin OK (entry 0x100000, no relocations, no undefined symbols)"

# Hosted harness: the same workload sources over a Linux port-I/O backend (development tool).
$(KP_GUEST_OUT)/kp-hosted: $(addprefix $(KP_GUEST_DIR)/,$(KP_GUEST_CORE)) $(KP_GUEST_DIR)/hosted/harness.c $(KP_GUEST_HDRS)
	@mkdir -p $(dir $@)
	$(KP_GUEST_CC) -std=gnu11 -O2 -g -Wall -Wextra -Werror -DKP_HOSTED -o $@ \
	    $(addprefix $(KP_GUEST_DIR)/,$(KP_GUEST_CORE)) $(KP_GUEST_DIR)/hosted/harness.c

guest-hosted: $(KP_GUEST_OUT)/kp-hosted

guest-check: guest-elf-check $(KP_GUEST_OUT)/kp-hosted
	$(KP_GUEST_DIR)/hosted/check.sh $(KP_GUEST_OUT)/kp-hosted

# KVM runner (development tool): runs workload.bin on /dev/kvm with KVM's dirty log.
$(KP_GUEST_OUT)/kp-kvmrun: $(KP_GUEST_DIR)/tools/kp-kvmrun.c $(KP_GUEST_DIR)/../include/kvmpresync_guest.h
	@mkdir -p $(dir $@)
	$(KP_GUEST_CC) -std=gnu11 -O2 -Wall -Wextra -Werror -o $@ $<

# Page content on the host (development tool): pages for measuring ratios, self-check, cost per page.
$(KP_GUEST_OUT)/kp-content: $(KP_GUEST_DIR)/tools/kp-content.c $(KP_GUEST_DIR)/content.c $(KP_GUEST_HDRS)
	@mkdir -p $(KP_GUEST_OUT)/obj
	$(KP_GUEST_CC) $(KP_GUEST_CFLAGS) -DKP_HOSTED -c $(KP_GUEST_DIR)/content.c -o $(KP_GUEST_OUT)/obj/content-hosted.o
	$(KP_GUEST_CC) -std=gnu11 -O2 -Wall -Wextra -Werror -DKP_HOSTED -no-pie -o $@ $< $(KP_GUEST_OUT)/obj/content-hosted.o

.PHONY: guest-content
guest-content: $(KP_GUEST_OUT)/kp-content

.PHONY: guest-kvmrun guest-kvm-check
guest-kvmrun: $(KP_GUEST_OUT)/kp-kvmrun

guest-kvm-check: $(KP_GUEST_OUT)/workload.bin $(KP_GUEST_OUT)/kp-kvmrun
	$(KP_GUEST_DIR)/tools/kvm-check.sh $(KP_GUEST_OUT)/kp-kvmrun $(KP_GUEST_OUT)/workload.bin
