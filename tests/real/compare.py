"""The field-by-field comparison every fidelity test uses: real component vs emulator, after normalising."""

from __future__ import annotations

from typing import Any


def differences(real: Any, emu: Any, path: str = "$") -> list[str]:
    """Every place where two JSON values differ, as `$.path: what` lines (empty: the same)."""
    if isinstance(real, dict) and isinstance(emu, dict):
        found: list[str] = []
        for k in sorted(set(real) | set(emu), key=str):
            if k not in emu:
                found.append(f"{path}.{k}: only real ({real[k]!r:.120})")
            elif k not in real:
                found.append(f"{path}.{k}: only emulator ({emu[k]!r:.120})")
            else:
                found += differences(real[k], emu[k], f"{path}.{k}")
        return found
    if isinstance(real, list) and isinstance(emu, list):
        if len(real) != len(emu):
            return [f"{path}: {len(real)} items real vs {len(emu)} emulator: {real!r:.300} vs {emu!r:.300}"]
        return [
            d
            for i, (a, b) in enumerate(zip(real, emu, strict=True))
            for d in differences(a, b, f"{path}[{i}]")
        ]
    return [] if real == emu else [f"{path}: real {real!r} vs emulator {emu!r}"]
