"""Core clusters of big.LITTLE SoCs (phones, Raspberry Pi 5-class boards, Jetson), from sysfs
and /proc/cpuinfo, so ``bench --cpus big`` pins the fast cores without the user looking them up
and the report says which cores a run had."""
from __future__ import annotations

import re
from pathlib import Path

from ..errors import UserError, flag_value

SYSFS_CPU = Path("/sys/devices/system/cpu")

# Arm Ltd. (implementer 0x41) MIDR part numbers of common phone and board cores.
ARM_PARTS = {
    0xD03: "Cortex-A53", 0xD04: "Cortex-A35", 0xD05: "Cortex-A55", 0xD07: "Cortex-A57", 0xD08: "Cortex-A72",
    0xD09: "Cortex-A73", 0xD0A: "Cortex-A75", 0xD0B: "Cortex-A76", 0xD0C: "Neoverse-N1", 0xD0D: "Cortex-A77",
    0xD40: "Neoverse-V1", 0xD41: "Cortex-A78", 0xD44: "Cortex-X1", 0xD46: "Cortex-A510", 0xD47: "Cortex-A710",
    0xD48: "Cortex-X2", 0xD49: "Neoverse-N2", 0xD4B: "Cortex-A78C", 0xD4D: "Cortex-A715", 0xD4E: "Cortex-X3",
    0xD4F: "Neoverse-V2", 0xD80: "Cortex-A520", 0xD81: "Cortex-A720", 0xD82: "Cortex-X4", 0xD85: "Cortex-X925",
    0xD87: "Cortex-A725",
}


def _core_names(cpuinfo: str) -> dict[int, str]:
    """cpu index -> core name from the per-processor blocks of /proc/cpuinfo (Arm only)."""
    names: dict[int, str] = {}
    for block in re.split(r"\n\s*\n", cpuinfo):
        fields = dict((k.strip(), v.strip()) for k, v in
                      (line.split(":", 1) for line in block.splitlines() if ":" in line))
        try:
            cpu = int(fields["processor"])
            part = int(fields["CPU part"], 16)
        except (KeyError, ValueError):
            continue
        if fields.get("CPU implementer", "").lower() == "0x41" and part in ARM_PARTS:
            names[cpu] = ARM_PARTS[part]
        else:
            names[cpu] = f"part {part:#x}"
    return names


def describe_cores(cpuinfo: str | None = None) -> str:
    """'2x Neoverse-N1' (or '4x Cortex-A55 + 4x Cortex-A76') from /proc/cpuinfo alone: an Arm
    kernel names no CPU model, and a VM or container exposes no cpufreq for ``core_clusters``;
    '' on x86 or where nothing names the cores."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return ""
    counts: dict[str, int] = {}
    for name in _core_names(cpuinfo).values():
        counts[name] = counts.get(name, 0) + 1
    return " + ".join(f"{n}x {name}" for name, n in counts.items())


def core_clusters(sysfs: Path = SYSFS_CPU, cpuinfo: str | None = None) -> list[dict]:
    """Cores grouped by maximum clock (and core type where known), slowest first:
    ``[{"cpus": [0, 1, 2, 3], "max_mhz": 1800, "core": "Cortex-A55"}, ...]``. Empty when the
    kernel exposes no cpufreq (most VMs and containers)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
    names = _core_names(cpuinfo)
    groups: dict[tuple[int, str | None], list[int]] = {}
    for d in sysfs.glob("cpu[0-9]*"):
        try:
            khz = int((d / "cpufreq" / "cpuinfo_max_freq").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
        cpu = int(d.name[3:])
        groups.setdefault((khz // 1000, names.get(cpu)), []).append(cpu)
    return [{"cpus": sorted(cpus), "max_mhz": mhz, "core": core}
            for (mhz, core), cpus in sorted(groups.items(), key=lambda kv: (kv[0][0], min(kv[1])))]


def describe_clusters(clusters: list[dict]) -> str:
    """'4x Cortex-A55 @1.80 GHz (cpus 0-3) + 4x Cortex-A76 @2.40 GHz (cpus 4-7)'."""
    return " + ".join(f"{len(c['cpus'])}x {c['core'] or 'core'} @{c['max_mhz'] / 1000:.2f} GHz "
                      f"(cpus {cpu_span(c['cpus'])})" for c in clusters)


def oversubscribed(threads: int, cpus: list[int]) -> bool:
    """True when ``threads`` is above the cores the bench runs on (``cpus``; empty: unknown)."""
    return bool(cpus) and threads > len(cpus)


def cpu_span(cpus: list[int]) -> str:
    """'4-7' for a run of consecutive cores, else '0,2,5'."""
    cpus = sorted(cpus)
    if len(cpus) > 1 and cpus == list(range(cpus[0], cpus[-1] + 1)):
        return f"{cpus[0]}-{cpus[-1]}"
    return ",".join(map(str, cpus))


def resolve_cpus(spec: str, clusters: list[dict] | None = None) -> list[int]:
    """``--cpus`` value -> core numbers: 'big' (every core but the slowest cluster: on a phone with
    little, mid and prime cores, the mid and prime ones), 'little' (the slowest cluster), or a
    comma list of numbers."""
    word = spec.strip().lower()
    if word not in ("big", "little"):
        try:
            cpus = [int(v) for v in spec.split(",") if v.strip()]
        except ValueError:
            cpus = []
        if not cpus or min(cpus) < 0:
            raise UserError(f"{flag_value('--cpus', 'cpus', spec, repr(spec))}: give core numbers (e.g. 4,5,6,7), 'big' "
                        "or 'little'")
        return cpus
    clusters = core_clusters() if clusters is None else clusters
    if not clusters:
        raise UserError(f"{flag_value('--cpus', 'cpus', spec, word)}: this system does not report core clocks (no "
                        f"cpufreq in {SYSFS_CPU}); "
                        f"give core numbers instead, e.g. --cpus 4,5,6,7 (see lscpu -e)")
    if len(clusters) == 1:
        raise UserError(f"{flag_value('--cpus', 'cpus', spec, word)}: all cores here are alike "
                        f"({describe_clusters(clusters)}); "
                        f"leave --cpus out or give core numbers")
    if word == "little":
        return list(clusters[0]["cpus"])
    return sorted(c for cl in clusters[1:] for c in cl["cpus"])
