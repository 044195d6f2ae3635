"""CPU threads: as many as the cores this process may use (affinity, cgroup quota), or as asked; and
OpenMP threads that sleep when idle, so a busy neighbour does not stall every parallel region (issue 25;
the speed itself is measured by `python -m geocontext.bench.contention`, BENCHMARKS.md section 12)."""
import os
import subprocess
import sys

import pytest
import torch

from geocontext import threads
from geocontext.cli import main


def test_the_cgroup_quota_caps_the_cores_v2_and_v1(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    v2 = tmp_path / "v2"
    (v2 / "kubepods" / "pod1").mkdir(parents=True)
    (v2 / "cpu.max").write_text("max 100000\n")
    (v2 / "kubepods" / "pod1" / "cpu.max").write_text("150000 100000\n")  # a 1.5-CPU limit on this pod
    (tmp_path / "v2-cgroup").write_text("0::/kubepods/pod1\n")
    assert threads.cgroup_cpu_limit(v2, tmp_path / "v2-cgroup") == 1.5
    assert threads.usable_cores(v2, tmp_path / "v2-cgroup") == 2
    (v2 / "kubepods" / "pod1" / "cpu.max").write_text("max 100000\n")
    assert threads.cgroup_cpu_limit(v2, tmp_path / "v2-cgroup") is None
    assert threads.usable_cores(v2, tmp_path / "v2-cgroup") == 4  # no quota: the affinity

    v1 = tmp_path / "v1"
    (v1 / "cpu,cpuacct" / "docker" / "c1").mkdir(parents=True)
    (v1 / "cpu,cpuacct" / "cpu.cfs_quota_us").write_text("-1\n")
    (v1 / "cpu,cpuacct" / "docker" / "c1" / "cpu.cfs_quota_us").write_text("50000\n")  # docker --cpus 0.5
    (v1 / "cpu,cpuacct" / "docker" / "c1" / "cpu.cfs_period_us").write_text("100000\n")
    (tmp_path / "v1-cgroup").write_text("4:memory:/docker/c1\n3:cpu,cpuacct:/docker/c1\n")
    assert threads.cgroup_cpu_limit(v1, tmp_path / "v1-cgroup") == 0.5
    assert threads.usable_cores(v1, tmp_path / "v1-cgroup") == 1
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {3})  # taskset -c 3
    assert threads.usable_cores(tmp_path / "none", tmp_path / "none") == 1


def test_threads_as_asked_and_refused_when_not_a_count(monkeypatch):
    monkeypatch.setattr(threads, "usable_cores", lambda: 3)
    monkeypatch.delenv(threads.ENV, raising=False)
    assert threads.chosen() == 3 and threads.chosen(1) == 1
    monkeypatch.setenv(threads.ENV, "2")
    assert threads.chosen() == 2 and threads.chosen(5) == 5  # --threads wins over the variable
    monkeypatch.setenv(threads.ENV, "two")
    with pytest.raises(ValueError, match="GEOCONTEXT_THREADS must be a whole number of threads >= 1, got 'two'"):
        threads.chosen()
    with pytest.raises(ValueError, match="--threads must be a whole number >= 1, got 0"):
        threads.chosen(0)


def test_the_command_line_sets_torchs_threads(monkeypatch, capsys):
    before = torch.get_num_threads()
    monkeypatch.delenv(threads.ENV, raising=False)
    try:
        assert main(["--threads", "1", "leaderboard"]) == 2  # any verb: the threads are set first
        assert torch.get_num_threads() == 1
        monkeypatch.setenv(threads.ENV, "0")
        assert main(["leaderboard"]) == 2
        assert "GEOCONTEXT_THREADS must be a whole number" in capsys.readouterr().err
    finally:
        torch.set_num_threads(before)


def test_openmp_threads_sleep_when_idle_unless_the_user_chose(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    probe = "import os, geocontext; print(os.environ.get('OMP_WAIT_POLICY'))"
    said = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert said.stdout.strip() == "PASSIVE"
    said = subprocess.run([sys.executable, "-c", probe], env={**env, "OMP_WAIT_POLICY": "ACTIVE"}, capture_output=True,
                          text=True, check=True)
    assert said.stdout.strip() == "ACTIVE"
    chosen = {"GOMP_SPINCOUNT": "300000"}
    threads.prepare_environment(chosen)
    assert "OMP_WAIT_POLICY" not in chosen
