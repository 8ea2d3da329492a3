"""Test matrices (LAPACK's types) and LAPACK dsyt21-style accuracy ratios, in numpy."""

import numpy as np

# A ratio below this passes, as in LAPACK's test drivers and the crate's Rust tests.
THRESHOLD = 30.0

TYPES = (
    "zero",
    "identity",
    "diagonal",
    "clustered",
    "geometric",
    "arithmetic",
    "random_spectrum",
    "wilkinson",
    "random_dense",
    "graded",
)


def _with_spectrum(d, rng):
    """U diag(d) U^T with U Haar-random orthogonal, made exactly symmetric (its lower
    triangle mirrored), so that either triangle describes the same matrix."""
    n = len(d)
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    q = q * np.sign(np.diag(r))
    m = (q * d) @ q.T
    return np.tril(m) + np.tril(m, -1).T


def make(kind, n, dtype, rng):
    """A symmetric matrix of LAPACK test type `kind`, order `n`, in float64, with the
    condition of the spectra set by `dtype`'s epsilon (as the crate's tests/common/mod.rs)."""
    cond = 1.0 / np.finfo(dtype).eps
    denom = max(n, 2) - 1
    i = np.arange(n)
    if kind == "zero":
        return np.zeros((n, n))
    if kind == "identity":
        return np.eye(n)
    if kind == "diagonal":
        return np.diag(rng.uniform(-1, 1, n))
    if kind == "clustered":
        return _with_spectrum(np.where(i == 0, 1.0, 1.0 / cond), rng)
    if kind == "geometric":
        return _with_spectrum(cond ** (-i / denom), rng)
    if kind == "arithmetic":
        return _with_spectrum(1.0 - i / denom * (1.0 - 1.0 / cond), rng)
    if kind == "random_spectrum":
        signs = rng.choice([-1.0, 1.0], n)
        return _with_spectrum(signs * np.exp(rng.uniform(0, 1, n) * np.log(cond)) / cond, rng)
    if kind == "wilkinson":
        return np.diag(np.abs(i - (n - 1) / 2.0)) + np.eye(n, k=1) + np.eye(n, k=-1)
    if kind == "random_dense":
        m = rng.uniform(-1, 1, (n, n))
        return np.tril(m) + np.tril(m, -1).T
    if kind == "graded":
        # D R D with D's entries from 1 down to sqrt(1 / cond): entries over cond's range.
        m = rng.uniform(-1, 1, (n, n))
        g = cond ** (-i / (2.0 * denom))
        return (np.tril(m) + np.tril(m, -1).T) * np.outer(g, g)
    raise ValueError(kind)


def batch(kinds, n, count, dtype, rng):
    """`count` matrices of order `n` cycling through `kinds`, shape (count, n, n), `dtype`."""
    return np.stack([make(kinds[k % len(kinds)], n, dtype, rng) for k in range(count)]).astype(
        dtype
    )


def symmetric_from(a, uplo="L"):
    """The symmetric matrices (float64) whose `uplo` triangles are those of `a`."""
    a = np.asarray(a, dtype=np.float64)
    tri = np.tril(a) if uplo == "L" else np.triu(a)
    return tri + np.swapaxes(tri, -1, -2) - tri * np.eye(a.shape[-1])


def _one_norm(m):
    """Max column sum of absolute values, per matrix of [..., n, n]."""
    return np.abs(m).sum(axis=-2).max(axis=-1)


def ratios(a, w, v, dtype):
    """dsyt21's residual |A V - V diag(w)|_1 / (n |A|_1 ulp) and orthogonality
    |V^T V - I|_1 / (n ulp) of every matrix of [..., n, n], computed in float64;
    `a` symmetric (float64), `ulp` the epsilon of `dtype`."""
    n = a.shape[-1]
    if n == 0:
        zeros = np.zeros(a.shape[:-2])
        return zeros, zeros
    ulp = np.finfo(dtype).eps
    w = np.asarray(w, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    anorm = np.maximum(_one_norm(a), np.finfo(np.float64).tiny)
    residual = _one_norm(a @ v - v * w[..., None, :]) / (n * anorm * ulp)
    orth = _one_norm(np.swapaxes(v, -1, -2) @ v - np.eye(n)) / (n * ulp)
    return residual, orth


def eigenvalue_ratio(a, w, dtype):
    """max |w - w_numpy| / (n |A|_1 ulp) per matrix (Weyl: O(1) for a backward-stable
    solver), against numpy.linalg.eigvalsh in float64."""
    n = a.shape[-1]
    if n == 0:
        return np.zeros(a.shape[:-2])
    ulp = np.finfo(dtype).eps
    reference = np.linalg.eigvalsh(a)
    anorm = np.maximum(_one_norm(a), np.finfo(np.float64).tiny)
    return np.abs(np.asarray(w, dtype=np.float64) - reference).max(axis=-1) / (n * anorm * ulp)


def assert_accurate(a_sym, w, v, dtype, what=""):
    """Every matrix's ratios below THRESHOLD, eigenvalues ascending, the sign convention."""
    residual, orth = ratios(a_sym, w, v, dtype)
    ev = eigenvalue_ratio(a_sym, w, dtype)
    worst = (residual.max(initial=0), orth.max(initial=0), ev.max(initial=0))
    assert max(worst) < THRESHOLD, f"{what}: residual, orthogonality, eigenvalue ratios {worst}"
    assert np.all(np.diff(w, axis=-1) >= 0), f"{what}: eigenvalues not ascending"
    assert_sign_convention(v, what)


def assert_sign_convention(v, what=""):
    """Each eigenvector's first component of largest magnitude is positive."""
    v = np.asarray(v)
    if v.size == 0:
        return
    columns = np.swapaxes(v, -1, -2).reshape(-1, v.shape[-1])
    biggest = np.take_along_axis(columns, np.abs(columns).argmax(axis=-1)[:, None], axis=-1)
    assert np.all(biggest > 0), f"{what}: an eigenvector's largest component is negative"
