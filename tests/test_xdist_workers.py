"""The suite's own set-up for pytest-xdist (``xdist_workers.share_cores_between_workers``, which
conftest.py calls): each worker's torch gets cores // workers threads, so two workers do not spin
against each other on 2 cores."""
from __future__ import annotations

import os

import pytest
import torch

from xdist_workers import share_cores_between_workers


@pytest.fixture
def threads_set(monkeypatch):
    """The thread counts handed to torch, and the environment as a worker would start it."""
    calls: list[int] = []
    monkeypatch.setattr(torch, "set_num_threads", calls.append)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4, 5, 6, 7}, raising=False)
    return calls


def test_each_worker_gets_its_share_of_the_cores(monkeypatch, threads_set) -> None:
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "2")
    share_cores_between_workers()
    assert os.environ["OMP_NUM_THREADS"] == "4"  # for the CLI subprocesses tests start
    assert threads_set == [4]  # torch was loaded already (by this module): its pool is set too


def test_more_workers_than_cores_still_get_one_thread(monkeypatch, threads_set) -> None:
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "16")
    share_cores_between_workers()
    assert os.environ["OMP_NUM_THREADS"] == "1" and threads_set == [1]


def test_the_users_setting_and_a_single_process_are_left_alone(monkeypatch, threads_set) -> None:
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "2")
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    share_cores_between_workers()
    assert os.environ["OMP_NUM_THREADS"] == "3" and threads_set == []

    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.delenv("PYTEST_XDIST_WORKER_COUNT")
    share_cores_between_workers()
    assert "OMP_NUM_THREADS" not in os.environ and threads_set == []
