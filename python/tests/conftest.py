"""Shared fixtures. Every test gets its own seeded generator, so failures reproduce."""

import numpy as np
import pytest

try:
    import megabatch  # noqa: F401
except ImportError as e:  # pragma: no cover - a setup error, reported once
    raise pytest.UsageError(
        f"cannot import megabatch ({e}). Install the wheel (pip install ./python) and run "
        "pytest outside python/: `python -m pytest` puts the working directory on sys.path, "
        "and python/megabatch/ there has no compiled extension."
    ) from e


@pytest.fixture
def rng(request):
    """A numpy Generator seeded from the test's name."""
    seed = sum(ord(c) * (i + 1) for i, c in enumerate(request.node.name))
    return np.random.default_rng(seed)
