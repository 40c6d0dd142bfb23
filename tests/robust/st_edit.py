#!/usr/bin/env python3
"""st_edit.py: a copy of a float32 safetensors file with one tensor changed,
for the robust tests (no safetensors package needed).
  st_edit.py IN OUT KEY nan|inf|scale=S [INDEX]
nan/inf set element INDEX (default 0) of KEY; scale=S multiplies all of KEY by S."""
import json
import struct
import sys

import numpy as np


def main():
    src, dst, key, how = sys.argv[1:5]
    index = int(sys.argv[5]) if len(sys.argv) > 5 else 0
    raw = open(src, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    data = bytearray(raw[8 + n:])
    if key not in header:
        sys.exit(f"st_edit: no tensor {key}; have {sorted(k for k in header if k != '__metadata__')[:8]}...")
    a, b = header[key]["data_offsets"]
    assert header[key]["dtype"] == "F32"
    t = np.frombuffer(bytes(data[a:b]), dtype="<f4").copy()
    if how == "nan":
        t[index] = np.nan
    elif how == "inf":
        t[index] = np.inf
    elif how.startswith("scale="):
        with np.errstate(over="ignore"):
            t = (t.astype(np.float64) * float(how[6:])).astype("<f4")
    else:
        sys.exit(f"st_edit: unknown change {how}")
    data[a:b] = t.tobytes()
    open(dst, "wb").write(raw[:8 + n] + bytes(data))


if __name__ == "__main__":
    main()
