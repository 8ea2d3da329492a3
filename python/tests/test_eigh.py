"""megabatch.eigh and eigvalsh against numpy.linalg: accuracy on LAPACK's matrix types,
shapes, dtypes, uplo, the sign convention."""

import numpy as np
import pytest

import megabatch
from checks import TYPES, assert_accurate, batch, symmetric_from

DTYPES = [np.float32, np.float64]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 12, 17, 32, 33, 48, 64, 100])
def test_every_type_is_accurate(n, dtype, rng):
    a = batch(TYPES, n, 2 * len(TYPES), dtype, rng)
    w, v = megabatch.eigh(a)
    assert w.dtype == dtype and v.dtype == dtype
    assert w.shape == (2 * len(TYPES), n) and v.shape == a.shape
    assert_accurate(symmetric_from(a), w, v, dtype, f"n={n} {np.dtype(dtype).name}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "shape", [(12, 12), (1, 4, 4), (7, 6, 6), (2, 3, 5, 5), (3, 1, 2, 9, 9), (1582, 12, 12)]
)
def test_batch_shapes(shape, dtype, rng):
    a = batch(["random_dense", "graded", "geometric"], shape[-1], int(np.prod(shape[:-2])), dtype, rng)
    a = a.reshape(shape)
    w, v = megabatch.eigh(a)
    assert w.shape == shape[:-1] and v.shape == shape
    assert_accurate(symmetric_from(a), w, v, dtype, f"shape {shape}")
    np.testing.assert_array_equal(megabatch.eigvalsh(a), w)


@pytest.mark.parametrize("dtype", DTYPES)
def test_values_match_numpy(dtype, rng):
    a = batch(["random_dense"], 10, 50, dtype, rng)
    w = megabatch.eigvalsh(a)
    reference = np.linalg.eigvalsh(a.astype(np.float64))
    tol = 50 * np.finfo(dtype).eps * np.abs(reference).max()
    np.testing.assert_allclose(w, reference, rtol=0, atol=tol)


def test_vectors_match_numpy_up_to_sign(rng):
    a = batch(["random_dense"], 9, 40, np.float64, rng)
    w, v = megabatch.eigh(a)
    w_np, v_np = np.linalg.eigh(a)
    np.testing.assert_allclose(w, w_np, rtol=0, atol=1e-12)
    signs = np.sign((v * v_np).sum(axis=-2, keepdims=True))
    np.testing.assert_allclose(v, v_np * signs, rtol=0, atol=1e-10)


def test_result_unpacks_like_numpy(rng):
    a = batch(["random_dense"], 4, 3, np.float64, rng)
    result = megabatch.eigh(a)
    assert isinstance(result, megabatch.EighResult)
    assert result.eigenvalues is result[0] and result.eigenvectors is result[1]


@pytest.mark.parametrize("dtype", DTYPES)
def test_uplo_reads_one_triangle(dtype, rng):
    a = batch(["random_dense", "graded"], 11, 20, dtype, rng)
    lower = np.tril(a) + np.triu(np.full_like(a, np.nan), 1)
    upper = np.triu(a) + np.tril(np.full_like(a, np.nan), -1)
    w_l, v_l = megabatch.eigh(lower, uplo="L")
    w_u, v_u = megabatch.eigh(upper, uplo="U")
    assert_accurate(symmetric_from(a), w_l, v_l, dtype, "uplo L")
    assert_accurate(symmetric_from(a), w_u, v_u, dtype, "uplo U")
    # The same symmetric matrices either way, and the same code on them: the same bits.
    np.testing.assert_array_equal(w_l, w_u)
    np.testing.assert_array_equal(v_l, v_u)
    np.testing.assert_array_equal(megabatch.eigvalsh(upper, uplo="u"), w_u)


def test_transposed_input_reads_the_triangle_asked_for(rng):
    # t = b.mT holds a's lower triangle in its upper one and NaN in its lower one.
    a = batch(["random_dense", "graded"], 6, 8, np.float64, rng)
    b = np.tril(a) + np.triu(np.full_like(a, np.nan), 1)
    t = np.swapaxes(b, -1, -2)
    w, v = megabatch.eigh(b)
    w_t, v_t = megabatch.eigh(t, uplo="U")
    np.testing.assert_array_equal(w_t, w)
    np.testing.assert_array_equal(v_t, v)
    with pytest.raises(megabatch.LinAlgError):
        megabatch.eigh(t, uplo="L")


def test_empty_batches():
    for shape in [(0, 5, 5), (3, 0, 0), (0, 0, 0), (2, 0, 4, 4), (0, 0)]:
        for dtype in DTYPES:
            a = np.zeros(shape, dtype=dtype)
            w, v = megabatch.eigh(a)
            assert w.shape == shape[:-1] and v.shape == shape and w.dtype == dtype
            assert megabatch.eigvalsh(a).shape == shape[:-1]


def test_lists_go_through_numpy():
    w, v = megabatch.eigh([[2.0, 1.0], [1.0, 2.0]])
    np.testing.assert_allclose(w, [1.0, 3.0])
    assert v.dtype == np.float64


def test_sign_convention_on_a_known_matrix():
    # Eigenvectors of [[2, 1], [1, 2]]: (1, -1)/sqrt2 and (1, 1)/sqrt2; the largest component
    # (the first of two ties) is made positive.
    w, v = megabatch.eigh(np.array([[2.0, 1.0], [1.0, 2.0]]))
    s = np.sqrt(0.5)
    np.testing.assert_allclose(v, [[s, s], [-s, s]], atol=1e-15)


def test_read_only_input(rng):
    a = batch(["random_dense"], 5, 4, np.float64, rng)
    a.setflags(write=False)
    w, v = megabatch.eigh(a)
    assert_accurate(symmetric_from(a), w, v, np.float64, "read-only")


def test_forced_cpu_backend(rng):
    a = batch(["random_dense"], 7, 30, np.float64, rng)
    w, v = megabatch.eigh(a, backend="cpu")
    assert_accurate(symmetric_from(a), w, v, np.float64, "backend cpu")
