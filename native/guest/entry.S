/*
 * entry.S — first byte of workload.bin (GPA 0x100000). The VMM enters here in 64-bit long mode,
 * identity paging, interrupts off, RSP = KP_STACK_TOP_GPA. Nothing else is assumed: the direction
 * flag is cleared, .bss is zeroed, the stack is 16-byte aligned for the C ABI.
 */
    .section .text.entry, "ax"
    .code64
    .globl _start
_start:
    cli
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
