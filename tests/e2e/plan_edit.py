#!/usr/bin/env python3
"""plan_edit.py: reads and rewrites plan.bin's sections (docs/plan-format.md)
for the tests, with fresh checksums, as a tool that corrupts or forges a plan
would. Subcommands:
  sections PLAN                          kind, count, bytes of each section
  add-candidate PLAN OUT FAMILY          a forged candidate: op -> another slot of
                                         kernel family FAMILY (plan_ops.h number)
                                         with other knobs (a wrong kernel)
  tuning-device PLAN OUT NAME            renames every tuning's device (another machine)
  choice-field PLAN OUT INDEX FIELD V    sets a uint32 field (0 op, 1 kind, 2 slot) of tuning
                                         choice INDEX: a forged choice
"""
import struct, sys, zlib

HDR = struct.Struct("<8sII32sQQIIIII7I")  # PlanHeader, 112 bytes
SEC = struct.Struct("<IIQQII")            # PlanSection, 32 bytes
CUDA = struct.Struct("<IIIIQQQ")          # PlanCudaHeader, 40 bytes
SLOT = struct.Struct("<IIIIII4q")         # PlanKernelSlot, 56 bytes
ALIGN = 64


def load(path):
    b = open(path, "rb").read()
    h = list(HDR.unpack_from(b, 0))
    table, n = h[5], h[6]
    secs = []
    for i in range(n):
        kind, count, off, size, crc, flags = SEC.unpack_from(b, table + 32 * i)
        secs.append([kind, count, bytearray(b[off:off + size]), flags])
    return h, secs


def save(path, h, secs):
    out = bytearray(HDR.size)
    out += bytes(-len(out) % ALIGN)
    table = []
    for kind, count, data, flags in secs:
        table.append(SEC.pack(kind, count, len(out), len(data), zlib.crc32(bytes(data)), flags))
        out += data
        out += bytes(-len(out) % ALIGN)
    h = list(h)
    h[5], h[6] = len(out), len(secs)
    for t in table:
        out += t
    h[4] = len(out)
    h[10] = 0
    h[10] = zlib.crc32(HDR.pack(*h))
    out[0:HDR.size] = HDR.pack(*h)
    open(path, "wb").write(bytes(out))


def section(secs, kind):
    for s in secs:
        if s[0] == kind:
            return s
    return None


def add_candidate(plan, out, family):
    h, secs = load(plan)
    cub = section(secs, 100)
    d = cub[2]
    n_ops, n_slots, _, _, op_off, slot_off, _ = CUDA.unpack_from(d, 0)
    op_slot = struct.unpack_from("<%dI" % n_ops, d, op_off)
    slots = [SLOT.unpack_from(d, slot_off + SLOT.size * j) for j in range(n_slots)]
    of_family = [j for j in range(n_slots) if slots[j][4] == family]
    for op in range(n_ops):
        s = op_slot[op]
        if s == 0xFFFFFFFF or slots[s][4] != family:
            continue
        others = [j for j in of_family if j != s and slots[j][6:] != slots[s][6:]]
        if others:
            cand = section(secs, 300)
            recs = []
            if cand:
                recs = [struct.unpack_from("<II", cand[2], 8 * i) for i in range(cand[1])]
            recs.append((op, others[0]))
            recs.sort(key=lambda r: r[0])  # stable: the forged one after the op's own
            data = bytearray(b"".join(struct.pack("<II", *r) for r in recs))
            if cand:
                cand[1], cand[2] = len(recs), data
            else:
                secs.append([300, len(recs), data, 1])
            save(out, h, secs)
            print(op, others[0])
            return
    sys.exit("no op of family %d has another slot of its family to forge" % family)


def tuning_device(plan, out, name):
    h, secs = load(plan)
    t = section(secs, 301)
    n_t, _, t_off, _ = struct.unpack_from("<IIQQ", t[2], 0)
    for i in range(n_t):
        o = t_off + 192 * i
        t[2][o:o + 128] = name.encode()[:127].ljust(128, b"\0")
    save(out, h, secs)


def choice_field(plan, out, index, field, value):
    h, secs = load(plan)
    t = section(secs, 301)
    _, _, _, c_off = struct.unpack_from("<IIQQ", t[2], 0)
    struct.pack_into("<I", t[2], c_off + 112 * index + 4 * field, value)
    save(out, h, secs)


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "sections":
        _, secs = load(sys.argv[2])
        for kind, count, data, flags in secs:
            print(kind, count, len(data))
    elif cmd == "add-candidate":
        add_candidate(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif cmd == "tuning-device":
        tuning_device(sys.argv[2], sys.argv[3], sys.argv[4])
    elif cmd == "choice-field":
        choice_field(sys.argv[2], sys.argv[3], *map(int, sys.argv[4:7]))
    else:
        sys.exit(__doc__)
