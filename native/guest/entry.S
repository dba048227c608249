/*
 * entry.S — first byte of workload.bin (GPA 0x100000). The VMM enters here in 64-bit long mode,
 * identity paging, interrupts off, RSP = KP_STACK_TOP_GPA. Nothing else is assumed: the direction
 * flag is cleared, .bss is zeroed, the stack is 16-byte aligned for the C ABI.
 *
 * The guest runs at CPL 0 or at CPL 3 (with RFLAGS.IOPL = 3 and user-accessible page tables), and
 * executes no privileged instruction at CPL 3: no cli (interrupts are off already), hlt only at
 * CPL 0. On software-virtualization hosts (kvm_pvm) CPL 0 code is emulated instruction by
 * instruction (~1 us each) while CPL 3 code runs natively; see docs/WORKLOADS.md.
 */
    .section .text.entry, "ax"
    .code64
    .globl _start
_start:
    cld
    leaq __bss_start(%rip), %rdi
    leaq __bss_end(%rip), %rcx
    subq %rdi, %rcx
    xorl %eax, %eax
    rep stosb
    andq $-16, %rsp
    xorl %ebp, %ebp
    xorl %edi, %edi                  /* mem_base: GPA 0 is address 0 */
    xorl %esi, %esi                  /* host: none */
    leaq __kp_image_end(%rip), %rdx  /* image_end: the heap must start at or after it */
    call kp_guest_main
1:  hlt                              /* kp_guest_main never returns */
    jmp 1b

    .section .note.GNU-stack, "", @progbits
