"""The cell lock of ``pyro-mm reproduce``: one holder at a time, also among processes racing for
it; a live lock is respected; a stale one (dead holder, silent heartbeat) is taken over."""

import json
import multiprocessing
import socket
import subprocess
import sys
import time

import pytest

from pyro_mm.experiments.cell_lock import CellLock


def write_lock(directory, pid, host=None, heartbeat=None):
    """A lock file as another process would have left it."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / CellLock.NAME).write_text(json.dumps({
        "host": host or socket.gethostname(), "pid": pid, "token": "theirs", "since": "2024-01-01 00:00:00",
        "heartbeat": time.time() if heartbeat is None else heartbeat}))


def dead_pid():
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_one_holder_at_a_time_and_release(tmp_path):
    first, second = CellLock(tmp_path / "cell"), CellLock(tmp_path / "cell")
    assert first.acquire() and first.held
    assert not second.acquire()  # live: this very process holds it
    holder = second.holder()
    assert holder["host"] == socket.gethostname() and holder["token"] and holder["heartbeat"] <= time.time()
    first.release()
    assert not (tmp_path / "cell" / CellLock.NAME).exists()
    assert second.acquire()
    second.release()


def test_a_dead_holder_or_a_silent_heartbeat_is_taken_over_a_live_remote_one_is_not(tmp_path):
    write_lock(tmp_path / "dead", dead_pid())
    write_lock(tmp_path / "silent", 1, host="elsewhere", heartbeat=time.time() - 301)
    write_lock(tmp_path / "remote", 1, host="elsewhere")
    for name, taken in (("dead", True), ("silent", True), ("remote", False)):
        lock = CellLock(tmp_path / name)
        assert lock.acquire() == taken, name
        if taken:
            assert lock.holder()["token"] != "theirs"
            assert [p.name for p in (tmp_path / name).iterdir()] == [CellLock.NAME]  # nothing left aside
        lock.release()


def test_an_unreadable_lock_is_live_while_fresh(tmp_path):
    directory = tmp_path / "cell"
    directory.mkdir()
    (directory / CellLock.NAME).write_bytes(b"")  # created, not written yet
    assert not CellLock(directory).acquire()
    assert CellLock(directory, ttl=0.2, interval=0.1).stale(None) is False
    time.sleep(0.3)
    lock = CellLock(directory, ttl=0.2, interval=0.1)
    assert lock.acquire()
    lock.release()


def test_the_heartbeat_keeps_a_lock_alive(tmp_path):
    lock = CellLock(tmp_path / "cell", ttl=0.5, interval=0.05)
    assert lock.acquire()
    first = lock.holder()["heartbeat"]
    time.sleep(0.8)  # longer than the TTL: only the heartbeat keeps it live
    assert lock.holder()["heartbeat"] > first
    assert not CellLock(tmp_path / "cell", ttl=0.5, interval=0.05).stale(lock.holder())
    lock.release()
    with pytest.raises(ValueError, match="heartbeat interval"):
        CellLock(tmp_path, ttl=1.0, interval=1.0)


def _race(directory, start, results):
    lock = CellLock(directory)
    start.wait()
    got = lock.acquire()
    results.put(got)
    if got:
        time.sleep(0.5)  # hold it while the others try
        lock.release()


@pytest.mark.parametrize("stale", [False, True], ids=["free", "stale"])
def test_of_processes_racing_for_a_cell_exactly_one_gets_it(tmp_path, stale):
    """(``fork``: the racers run nothing but the lock's code.)"""
    if stale:
        write_lock(tmp_path / "cell", dead_pid())
    context = multiprocessing.get_context("fork")
    start, results = context.Event(), context.Queue()
    racers = [context.Process(target=_race, args=(tmp_path / "cell", start, results)) for _ in range(4)]
    for p in racers:
        p.start()
    start.set()
    outcomes = [results.get(timeout=30) for _ in racers]
    for p in racers:
        p.join(30)
    assert sorted(outcomes) == [False, False, False, True]
