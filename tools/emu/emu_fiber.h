/* emu_fiber.h: fibers for the SIMT executor (emu_simt.cpp): a stack per
 * emulated CUDA thread and a hand-written context switch that saves only the
 * callee-saved registers and the floating-point control words (glibc's
 * swapcontext makes a system call per switch). x86-64 System V only. Under
 * AddressSanitizer every switch is announced to it, so that it follows the
 * fibers' stacks. */
#ifndef DIT_EMU_FIBER_H
#define DIT_EMU_FIBER_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct EmuFiberStack {
  void *base;       /* the mapping, a guard page at its bottom */
  size_t bytes;     /* of the mapping */
  void *bottom;     /* the usable stack: [bottom, bottom + size) */
  size_t size;
} EmuFiberStack;

/* A context: the saved stack pointer, and what ASan needs to switch to it. */
typedef struct EmuFiber {
  void *sp;
  const void *stack_bottom; /* NULL: the thread's own stack (learnt at the first switch) */
  size_t stack_size;
  void *asan_fake;          /* ASan's fake stack of this context while it is switched out */
} EmuFiber;

/* Maps a stack of `size` usable bytes with a guard page below it; 0 or -1. */
int emu_stack_alloc(EmuFiberStack *s, size_t size);
void emu_stack_free(EmuFiberStack *s); /* accepts a zeroed struct */

/* Makes f start, at its first switch-in, in entry(arg) on stack s. entry must
 * never return: it switches away for the last time instead. */
void emu_fiber_init(EmuFiber *f, const EmuFiberStack *s, void (*entry)(void *), void *arg);

/* Saves the running context into `from` and resumes `to`. `from_exits`: the
 * running fiber never resumes again (ASan frees its fake stack). */
void emu_fiber_switch(EmuFiber *from, EmuFiber *to, int from_exits);

/* The first thing a fiber's entry does: completes the switch that started it,
 * learning the stack of `from` (the scheduler) for ASan. */
void emu_fiber_started(EmuFiber *from);

#ifdef __cplusplus
}
#endif

#endif
