"""What the machine can do, read once."""
from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """True where the CPU does bf16 arithmetic natively (AVX512-BF16 or AMX): only there does bf16 pay.
    Elsewhere (and where /proc/cpuinfo cannot be read) fp32 is the safe choice."""
    try:
        with open("/proc/cpuinfo") as info:
            flags = next((line for line in info if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags
