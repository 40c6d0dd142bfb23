/* emu_fiber.c: stacks and the context switch of the emulator's fibers (see
 * emu_fiber.h). The switch pushes rbp, rbx, r12-r15 and the MXCSR and x87
 * control words on the running stack, stores the stack pointer, loads the
 * other one and pops the same. A new fiber's stack is laid out as if it had
 * been switched out at the first instruction of emu_fiber_trampoline, which
 * calls entry(arg) (r13, r12) on a 16-byte aligned stack. */
#define _GNU_SOURCE
#include "emu_fiber.h"

#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#if !defined(__x86_64__)
#error "the emulator's fibers switch contexts for x86-64 only"
#endif

#if defined(__SANITIZE_ADDRESS__)
#define EMU_ASAN 1
void __sanitizer_start_switch_fiber(void **fake_stack_save, const void *bottom, size_t size);
void __sanitizer_finish_switch_fiber(void *fake_stack_save, const void **bottom_old, size_t *size_old);
void __asan_unpoison_memory_region(void const volatile *addr, size_t size);
#else
#define EMU_ASAN 0
#endif

void emu_fiber_swap_sp(void **save_sp, void *load_sp);
void emu_fiber_trampoline(void);

__asm__(".text\n"
        ".globl emu_fiber_swap_sp\n"
        ".type emu_fiber_swap_sp,@function\n"
        "emu_fiber_swap_sp:\n"
        "  pushq %rbp\n"
        "  pushq %rbx\n"
        "  pushq %r12\n"
        "  pushq %r13\n"
        "  pushq %r14\n"
        "  pushq %r15\n"
        "  subq $8, %rsp\n"
        "  stmxcsr (%rsp)\n"
        "  fnstcw 4(%rsp)\n"
        "  movq %rsp, (%rdi)\n"
        "  movq %rsi, %rsp\n"
        "  ldmxcsr (%rsp)\n"
        "  fldcw 4(%rsp)\n"
        "  addq $8, %rsp\n"
        "  popq %r15\n"
        "  popq %r14\n"
        "  popq %r13\n"
        "  popq %r12\n"
        "  popq %rbx\n"
        "  popq %rbp\n"
        "  ret\n"
        ".size emu_fiber_swap_sp, .-emu_fiber_swap_sp\n"
        ".globl emu_fiber_trampoline\n"
        ".type emu_fiber_trampoline,@function\n"
        "emu_fiber_trampoline:\n"
        "  movq %r12, %rdi\n"
        "  callq *%r13\n"
        "  ud2\n"
        ".size emu_fiber_trampoline, .-emu_fiber_trampoline\n");

int emu_stack_alloc(EmuFiberStack *s, size_t size) {
  memset(s, 0, sizeof *s);
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  size = (size + page - 1) / page * page;
  void *p = mmap(NULL, size + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return -1;
  if (mprotect(p, page, PROT_NONE) != 0) { /* the guard: an overflow faults instead of corrupting */
    munmap(p, size + page);
    return -1;
  }
  s->base = p;
  s->bytes = size + page;
  s->bottom = (char *)p + page;
  s->size = size;
  return 0;
}

void emu_stack_free(EmuFiberStack *s) {
  if (s && s->base) munmap(s->base, s->bytes);
  if (s) memset(s, 0, sizeof *s);
}

void emu_fiber_init(EmuFiber *f, const EmuFiberStack *s, void (*entry)(void *), void *arg) {
  uintptr_t top = ((uintptr_t)s->bottom + s->size) & ~(uintptr_t)15;
#if EMU_ASAN
  /* the frames of the stack's last fiber never returned: their redzones are still poisoned */
  size_t used = s->size < (256u << 10) ? s->size : (256u << 10);
  __asan_unpoison_memory_region((char *)s->bottom + s->size - used, used);
#endif
  uint64_t *ret = (uint64_t *)(top - 24); /* 8 mod 16: the trampoline then calls on an aligned stack */
  ret[0] = (uint64_t)(uintptr_t)emu_fiber_trampoline;
  ret[1] = ret[2] = 0;
  uint64_t *regs = ret - 6; /* r15, r14, r13, r12, rbx, rbp from low to high */
  memset(regs, 0, 6 * sizeof *regs);
  regs[2] = (uint64_t)(uintptr_t)entry; /* r13 */
  regs[3] = (uint64_t)(uintptr_t)arg;   /* r12 */
  uint32_t *ctl = (uint32_t *)(regs - 1);
  ctl[0] = 0x1F80; /* MXCSR: round to nearest, every exception masked, no flush to zero */
  ctl[1] = 0x037F; /* x87: the same, extended precision */
  f->sp = regs - 1;
  f->stack_bottom = s->bottom;
  f->stack_size = s->size;
  f->asan_fake = NULL;
}

void emu_fiber_switch(EmuFiber *from, EmuFiber *to, int from_exits) {
#if EMU_ASAN
  __sanitizer_start_switch_fiber(from_exits ? NULL : &from->asan_fake, to->stack_bottom, to->stack_size);
#else
  (void)from_exits;
#endif
  emu_fiber_swap_sp(&from->sp, to->sp);
#if EMU_ASAN
  __sanitizer_finish_switch_fiber(from->asan_fake, NULL, NULL);
#endif
}

void emu_fiber_started(EmuFiber *from) {
#if EMU_ASAN
  __sanitizer_finish_switch_fiber(NULL, &from->stack_bottom, &from->stack_size);
#else
  (void)from;
#endif
}
