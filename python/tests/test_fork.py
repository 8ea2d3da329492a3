"""A child forked after the parent started the backends (multiprocessing's default start
method on Linux): fresh calls work there, the parent's plans are refused, nothing hangs."""

import multiprocessing
import sys
import warnings

import numpy as np
import pytest

import megabatch

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="fork start method")


def _child(plan, a, queue, reduce_plan):
    try:
        plan(a)
        queue.put("the parent's plan ran")
    except RuntimeError as e:
        queue.put(f"refused: {e}")
    try:
        reduce_plan(a.ravel())
        queue.put("the parent's reduction plan ran")
    except RuntimeError as e:
        queue.put(f"refused: {e}")
    try:
        plan.footprint
        queue.put("the parent's plan was read")
    except RuntimeError as e:
        queue.put(f"refused: {e}")
    w = megabatch.eigvalsh(a)
    queue.put(float(w.sum()))
    del plan  # dropped in the child: leaked, not freed (no join of the parent's threads)


def test_forked_child_starts_its_own_backends():
    a = np.tile(np.diag([1.0, 2.0, 3.0]), (64, 1, 1))
    plan = megabatch.EighPlan(n=3, batch=64)
    plan(a)  # the parent's worker threads are running
    reduce_plan = megabatch.ReducePlan("sum", len=a.size)
    assert float(reduce_plan(a.ravel())) == 64 * 6.0
    queue = multiprocessing.get_context("fork").SimpleQueue()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork with threads
        child = multiprocessing.get_context("fork").Process(target=_child, args=(plan, a, queue, reduce_plan))
        child.start()
    child.join(120)
    if child.is_alive():
        child.kill()
        pytest.fail("the forked child hung")
    assert child.exitcode == 0
    refused, reduce_refused, read, total = queue.get(), queue.get(), queue.get(), queue.get()
    for message in (refused, reduce_refused, read):
        assert message.startswith("refused: ") and "another process" in message, message
    assert total == 64 * 6.0
    plan(a)  # the parent's plan still works in the parent
