"""Core clusters from a fake sysfs and /proc/cpuinfo: what `bench --cpus big` pins on a phone."""
from __future__ import annotations

from pathlib import Path

import pytest

from yolox_edge.bench.cores import core_clusters, describe_clusters, resolve_cpus
from yolox_edge.errors import UserError


def fake_soc(root: Path, cores: list[tuple[int, int]]) -> tuple[Path, str]:
    """cores: (max kHz, MIDR part) per cpu -> (sysfs cpu folder, cpuinfo text)."""
    blocks = []
    for i, (khz, part) in enumerate(cores):
        d = root / f"cpu{i}" / "cpufreq"
        d.mkdir(parents=True)
        (d / "cpuinfo_max_freq").write_text(f"{khz}\n")
        blocks.append(f"processor\t: {i}\nBogoMIPS\t: 38.40\nFeatures\t: fp asimd asimddp\n"
                      f"CPU implementer\t: 0x41\nCPU architecture: 8\nCPU part\t: {part:#x}\nCPU revision\t: 0\n")
    (root / "cpufreq").mkdir()  # sysfs has non-cpu entries too; they are not cores
    (root / "online").write_text("0-7\n")
    return root, "\n".join(blocks)


def test_big_little_phone(tmp_path: Path) -> None:
    sysfs, info = fake_soc(tmp_path, [(1800000, 0xD05)] * 4 + [(2400000, 0xD0B)] * 4)
    clusters = core_clusters(sysfs, info)
    assert clusters == [{"cpus": [0, 1, 2, 3], "max_mhz": 1800, "core": "Cortex-A55"},
                        {"cpus": [4, 5, 6, 7], "max_mhz": 2400, "core": "Cortex-A76"}]
    assert describe_clusters(clusters) == "4x Cortex-A55 @1.80 GHz (cpus 0-3) + 4x Cortex-A76 @2.40 GHz (cpus 4-7)"
    assert resolve_cpus("big", clusters) == [4, 5, 6, 7]
    assert resolve_cpus("Little", clusters) == [0, 1, 2, 3]
    assert resolve_cpus("5,6", clusters) == [5, 6]


def test_three_clusters_big_is_all_but_the_little_ones(tmp_path: Path) -> None:
    # 4 little + 3 mid + 1 prime, listed out of order in sysfs order does not matter
    sysfs, info = fake_soc(tmp_path, [(2000000, 0xD46)] * 4 + [(2850000, 0xD47)] * 3 + [(3200000, 0xD48)])
    clusters = core_clusters(sysfs, info)
    assert [c["core"] for c in clusters] == ["Cortex-A510", "Cortex-A710", "Cortex-X2"]
    assert resolve_cpus("big", clusters) == [4, 5, 6, 7]  # mid and prime: enough cores for --threads 4


def test_no_cpufreq_or_one_kind_of_core_is_a_clear_error(tmp_path: Path) -> None:
    assert core_clusters(tmp_path / "none", "") == []
    with pytest.raises(UserError, match=r"--cpus big \(cpus='big' in Python\): this system does not report core clocks"):
        resolve_cpus("big", [])
    sysfs, info = fake_soc(tmp_path / "same", [(2400000, 0xD0B)] * 4)
    with pytest.raises(UserError, match=r"--cpus big \(cpus='big' in Python\): all cores here are alike"):
        resolve_cpus("big", core_clusters(sysfs, info))
    with pytest.raises(UserError, match="core numbers"):
        resolve_cpus("fast", [])


def test_bench_cli_takes_big(run_cli, monkeypatch, tmp_path: Path) -> None:
    """--cpus big reaches the bench, which resolves it on the machine (here: no cpufreq -> one line)."""
    import yolox_edge.bench.cores as cores

    monkeypatch.setattr(cores, "SYSFS_CPU", tmp_path / "no_sysfs")
    monkeypatch.setattr(cores, "core_clusters", lambda *a, **k: [])
    code, _out, err = run_cli("bench", tmp_path / "m.pt", "--cpus", "big")
    assert code == 2 and "does not report core clocks" in err, err
    code, _out, err = run_cli("bench", tmp_path / "m.pt", "--cpus", "fast")
    assert code == 2 and "'big' or 'little'" in err, err


def test_an_arm_vm_without_cpufreq_is_named_by_its_cores(tmp_path: Path, monkeypatch) -> None:
    """A Graviton VM (no 'model name', no cpufreq) was 'cpu: unknown', so bench-compare took a
    Neoverse-N1 run and a Neoverse-V1 run for the same CPU."""
    import yolox_edge.bench.machine as machine
    from yolox_edge.bench.cores import describe_cores

    _, n1 = fake_soc(tmp_path / "a", [(0, 0xD0C)] * 2)
    _, mixed = fake_soc(tmp_path / "b", [(0, 0xD05)] * 4 + [(0, 0xD0B)] * 4)
    assert describe_cores(n1) == "2x Neoverse-N1"
    assert describe_cores(mixed) == "4x Cortex-A55 + 4x Cortex-A76"
    assert describe_cores("processor\t: 0\nmodel name\t: AMD EPYC\nflags\t: avx2\n") == ""  # x86: none
    monkeypatch.setattr(machine, "_cpuinfo", lambda: {"Features": "fp asimd"})
    monkeypatch.setattr(machine, "core_clusters", lambda: [])
    monkeypatch.setattr(machine, "describe_cores", lambda: describe_cores(n1))
    assert machine.describe_machine()["cpu"] == "2x Neoverse-N1"
