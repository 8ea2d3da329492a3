"""EighPlan: repeated calls with out=, no array allocation per call, threads, the GIL."""

import threading
import time
import tracemalloc

import numpy as np
import pytest

import megabatch
from megabatch._megabatch import _last_pointers
from checks import assert_accurate, batch, symmetric_from


def address(x):
    return x.__array_interface__["data"][0]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_repeated_calls_with_out(dtype, rng):
    plan = megabatch.EighPlan(n=12, batch=200, dtype=dtype)
    w, v = np.empty((200, 12), dtype), np.empty((200, 12, 12), dtype)
    for k in range(5):
        a = batch(["random_dense", "graded", "clustered"], 12, 200, dtype, rng)
        rw, rv = plan(a, out=(w, v))
        assert rw is w and rv is v
        assert_accurate(symmetric_from(a), w, v, dtype, f"call {k}")
        w1, v1 = megabatch.eigh(a, backend=plan.backend)
        np.testing.assert_array_equal(w, w1)
        np.testing.assert_array_equal(v, v1)


def test_values_only_plan(rng):
    plan = megabatch.EighPlan(n=9, batch=30, vectors=False)
    a = batch(["random_dense"], 9, 30, np.float64, rng)
    w = np.empty((30, 9))
    assert plan(a, out=w) is w
    assert plan(a, out=(w,)) is w
    np.testing.assert_array_equal(plan(a), megabatch.eigvalsh(a))


def test_batch_dimensions_of_a_plan(rng):
    plan = megabatch.EighPlan(n=5, batch=12)
    a = batch(["random_dense"], 5, 12, np.float64, rng)
    w, v = plan(a.reshape(3, 4, 5, 5))
    assert w.shape == (3, 4, 5) and v.shape == (3, 4, 5, 5)
    np.testing.assert_array_equal(w.reshape(12, 5), plan(a)[0])
    one = megabatch.EighPlan(n=5, batch=1)
    assert one(a[0])[0].shape == (5,)


def test_properties_and_repr():
    plan = megabatch.EighPlan(n=12, batch=1582, dtype=np.float32, vectors=False, uplo="u")
    assert (plan.n, plan.batch, plan.sizes) == (12, 1582, None)
    assert (plan.dtype, plan.vectors, plan.uplo) == ("float32", False, "U")
    assert plan.backend in megabatch.info()["backends"]
    host, device = plan.footprint
    assert host >= 1582 * 144 * 4 and device >= 0  # the transposed copy for uplo="U"
    assert repr(plan).startswith("EighPlan(n=12, batch=1582, dtype='float32', vectors=False")
    ragged = megabatch.EighPlan(sizes=[3, 1, 4, 1, 5, 9, 2, 6])
    assert ragged.n is None and ragged.batch == 8 and ragged.sizes == [3, 1, 4, 1, 5, 9, 2, 6]
    assert "sizes=[3, 1, 4, 1, 5, 9, ...] (8 matrices)" in repr(ragged)


def test_ragged_plan(rng):
    sizes = [4, 0, 7, 1, 12, 3]
    plan = megabatch.EighPlan(sizes=sizes)
    w, v = np.empty(sum(sizes)), np.empty(sum(n * n for n in sizes))
    for _ in range(3):
        values = np.concatenate([batch(["random_dense"], n, 1, np.float64, rng).ravel() for n in sizes])
        rw, rv = plan(values, out=(w, v))
        assert rw is w and rv is v
        w1, v1 = megabatch.eigh_ragged(values, sizes)
        np.testing.assert_array_equal(w, w1)
        np.testing.assert_array_equal(v, v1)


def _peak_growth(call, repeats):
    """Peak traced memory (numpy's array data included) above the level before `repeats`
    calls of `call`, after one warm-up call."""
    call()
    tracemalloc.start()
    try:
        start, _ = tracemalloc.get_traced_memory()
        for _ in range(repeats):
            call()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - start


def test_no_array_allocation_per_call(rng):
    n, count = 12, 1582
    a = batch(["random_dense"], n, count, np.float64, rng)
    plan = megabatch.EighPlan(n=n, batch=count)
    w, v = np.empty((count, n)), np.empty((count, n, n))
    outputs = w.nbytes + v.nbytes
    # The check can fail: calls without out= allocate their outputs, and it sees them.
    assert _peak_growth(lambda: plan(a), 5) >= outputs
    # With out=: only the DLPack handshake's small capsules, freed each call.
    assert _peak_growth(lambda: plan(a, out=(w, v)), 50) < 16 * 1024


def test_uplo_u_plan_reuses_its_copy(rng):
    plan = megabatch.EighPlan(n=6, batch=10, uplo="U")
    a = batch(["random_dense"], 6, 10, np.float64, rng)
    w, v = np.empty((10, 6)), np.empty((10, 6, 6))
    footprint = plan.footprint
    plan(a, out=(w, v))
    first = _last_pointers()
    plan(a, out=(w, v))
    assert _last_pointers() == first and first["a_copied"]
    assert plan.footprint == footprint
    # A transposed input is read in place instead.
    plan(np.swapaxes(a, -1, -2), out=(w, v))
    assert _last_pointers()["a"] == address(a)


def test_lower_plan_allocates_its_copy_once_for_transposed_input(rng):
    plan = megabatch.EighPlan(n=6, batch=10)
    a = np.swapaxes(batch(["random_dense"], 6, 10, np.float64, rng), -1, -2)
    before = plan.footprint[0]
    plan(a)
    after = plan.footprint[0]
    assert after == before + a.nbytes
    plan(a)
    assert plan.footprint[0] == after


def test_threads_share_a_plan(rng):
    n, count = 16, 400
    plan = megabatch.EighPlan(n=n, batch=count)
    inputs = [batch(["random_dense", "graded"], n, count, np.float64, rng) for _ in range(4)]
    expected = [megabatch.eigh(a) for a in inputs]
    results = [None] * len(inputs)

    def work(i):
        w, v = np.empty((count, n)), np.empty((count, n, n))
        for _ in range(5):
            plan(inputs[i], out=(w, v))
        results[i] = (w, v)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for (w, v), (we, ve) in zip(results, expected):
        np.testing.assert_array_equal(w, we)
        np.testing.assert_array_equal(v, ve)


def test_gil_is_released_during_compute(rng):
    # While a call computes in another thread, this thread keeps running Python. With the
    # GIL held through the compute, no tick of this thread falls inside a call, except within
    # one switch interval (5 ms) of its ends, where the caller runs bytecode: count the middle.
    n, margin = 32, 0.010
    count = 1000
    while True:
        plan = megabatch.EighPlan(n=n, batch=count)
        a = batch(["random_dense"], n, count, np.float64, rng)
        w, v = np.empty((count, n)), np.empty((count, n, n))
        t0 = time.perf_counter()
        plan(a, out=(w, v))
        if time.perf_counter() - t0 > 8 * margin or count >= 64000:
            break
        count *= 4
    calls, done = [], threading.Event()

    def work():
        for _ in range(3):
            t0 = time.perf_counter()
            plan(a, out=(w, v))
            calls.append((t0, time.perf_counter()))
        done.set()

    ticks = []
    thread = threading.Thread(target=work)
    thread.start()
    while not done.is_set():
        ticks.append(time.perf_counter())
        for _ in range(200):
            pass
    thread.join()
    inside = sum(any(t0 + margin < t < t1 - margin for t0, t1 in calls) for t in ticks)
    shortest = min(t1 - t0 for t0, t1 in calls)
    assert shortest > 4 * margin, f"calls too short to tell ({shortest:.3f} s)"
    assert inside >= 20, f"{inside} ticks inside {len(calls)} calls of {shortest:.3f} s or more"
