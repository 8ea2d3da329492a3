//! The tridiagonal-QL kernel of `tridiag_ql.rs` run on `L` matrices of the same order at once,
//! one matrix per SIMD lane (`L = 4`: one AVX2 register of f64).
//!
//! Why: for small orders a single matrix is latency-bound (each Givens rotation of the QL sweep
//! waits on a sqrt and a division of the previous one) and loop overhead dominates its short
//! inner loops. With matrices in lanes, every scalar operation of the algorithm becomes one
//! vector operation over `L` independent problems, the same idea as batched GPU eigensolvers
//! (e.g. cuSOLVER's `syevjBatched` assigns matrices to threads). Control flow is shared; where
//! the algorithm branches per matrix (a zero Householder column, QL convergence and deflation
//! points), every lane computes and a per-lane select keeps the result of the lanes the branch
//! applies to, so each lane follows the scalar algorithm's arithmetic.
//!
//! Storage: `z[c * n + r][q]` is row `r`, column `c` of lane `q`'s working matrix
//! (column-major per lane, lanes interleaved); `d[i][q]`, `e[i][q]` likewise.

use crate::Real;

use super::tridiag_ql::{negligible_floor, NoConvergence};

type Lanes<T, const L: usize> = [T; L];

#[inline(always)]
fn splat<T: Real, const L: usize>(x: T) -> Lanes<T, L> {
    [x; L]
}

/// sqrt(x^2 + y^2) per lane. Only lanes in `active` decide whether the fast formula is safe
/// (idle lanes often hold zeros, whose result is discarded), otherwise libm's `hypot` per lane.
#[inline(always)]
fn hypot_lanes<T: Real, const L: usize>(
    x: &Lanes<T, L>,
    y: &Lanes<T, L>,
    active: &[bool; L],
) -> Lanes<T, L> {
    let mut r2 = [T::zero(); L];
    let mut safe = true;
    for q in 0..L {
        r2[q] = x[q] * x[q] + y[q] * y[q];
        safe &= !active[q] || (r2[q] > T::SAFE_MIN.sqrt() && r2[q] < T::max_value().sqrt());
    }
    if safe {
        r2.map(|v| v.sqrt())
    } else {
        std::array::from_fn(|q| x[q].hypot(y[q]))
    }
}

/// Lane version of [`super::tridiag_ql::tridiagonalize`].
#[inline(always)]
pub(crate) fn tridiagonalize_lanes<T: Real, const L: usize>(
    z: &mut [Lanes<T, L>],
    n: usize,
    d: &mut [Lanes<T, L>],
    e: &mut [Lanes<T, L>],
    accumulate: bool,
) {
    let zero = T::zero();
    let one = T::one();
    let at = |r: usize, c: usize| c * n + r;
    for j in 0..n {
        d[j] = z[at(n - 1, j)];
    }
    for i in (1..n).rev() {
        let mut scale = splat::<T, L>(zero);
        for dk in &d[..i] {
            for q in 0..L {
                scale[q] += dk[q].abs();
            }
        }
        // Lanes whose column is already zero take the scalar code's `scale == 0` branch: they
        // divide by 1 instead, which leaves every quantity of that branch unchanged.
        let nonzero: [bool; L] = std::array::from_fn(|q| scale[q] != zero);
        let scale_safe: Lanes<T, L> =
            std::array::from_fn(|q| if nonzero[q] { scale[q] } else { one });
        let mut h = splat::<T, L>(zero);
        for dk in &mut d[..i] {
            for q in 0..L {
                dk[q] /= scale_safe[q];
                h[q] += dk[q] * dk[q];
            }
        }
        let f = d[i - 1];
        let mut g = [zero; L];
        for q in 0..L {
            g[q] = h[q].sqrt();
            if f[q] > zero {
                g[q] = -g[q];
            }
            e[i][q] = if nonzero[q] { scale[q] * g[q] } else { f[q] };
            h[q] -= f[q] * g[q];
            d[i - 1][q] = f[q] - g[q];
        }
        for ej in &mut e[..i] {
            *ej = splat(zero);
        }
        for j in 0..i {
            let fj = d[j];
            z[at(j, i)] = fj;
            let mut gj = [zero; L];
            let zjj = z[at(j, j)];
            for q in 0..L {
                gj[q] = e[j][q] + zjj[q] * fj[q];
            }
            for k in j + 1..i {
                let zk = z[at(k, j)];
                for q in 0..L {
                    gj[q] += zk[q] * d[k][q];
                    e[k][q] += zk[q] * fj[q];
                }
            }
            e[j] = gj;
        }
        let h_safe: Lanes<T, L> = std::array::from_fn(|q| if nonzero[q] { h[q] } else { one });
        let mut ff = splat::<T, L>(zero);
        for j in 0..i {
            for q in 0..L {
                e[j][q] /= h_safe[q];
                ff[q] += e[j][q] * d[j][q];
            }
        }
        let hh: Lanes<T, L> = std::array::from_fn(|q| ff[q] / (h_safe[q] + h_safe[q]));
        for j in 0..i {
            for q in 0..L {
                e[j][q] -= hh[q] * d[j][q];
            }
        }
        for j in 0..i {
            let (fj, gj) = (d[j], e[j]);
            for k in j..i {
                let (ek, dk) = (e[k], d[k]);
                let zk = &mut z[at(k, j)];
                for q in 0..L {
                    zk[q] -= fj[q] * ek[q] + gj[q] * dk[q];
                }
            }
            d[j] = z[at(i - 1, j)];
            z[at(i, j)] = splat(zero);
        }
        d[i] = std::array::from_fn(|q| if nonzero[q] { h[q] } else { zero });
    }
    if !accumulate {
        for (j, dj) in d.iter_mut().enumerate().take(n) {
            *dj = z[at(j, j)];
        }
        e[0] = splat(zero);
        return;
    }
    for i in 0..n - 1 {
        z[at(n - 1, i)] = z[at(i, i)];
        z[at(i, i)] = splat(one);
        let h = d[i + 1];
        // h = 0 means a zero reflector (its vector is zero too): dividing by 1 keeps it a no-op.
        let h_safe: Lanes<T, L> = std::array::from_fn(|q| if h[q] != zero { h[q] } else { one });
        for k in 0..=i {
            let u = z[at(k, i + 1)];
            for q in 0..L {
                d[k][q] = u[q] / h_safe[q];
            }
        }
        for j in 0..=i {
            let mut g = splat::<T, L>(zero);
            for k in 0..=i {
                let (u, zk) = (z[at(k, i + 1)], z[at(k, j)]);
                for q in 0..L {
                    g[q] += u[q] * zk[q];
                }
            }
            for k in 0..=i {
                let dk = d[k];
                let zk = &mut z[at(k, j)];
                for q in 0..L {
                    zk[q] -= g[q] * dk[q];
                }
            }
        }
        for k in 0..=i {
            z[at(k, i + 1)] = splat(zero);
        }
    }
    for j in 0..n {
        d[j] = z[at(n - 1, j)];
        z[at(n - 1, j)] = splat(zero);
    }
    z[at(n - 1, n - 1)] = splat(one);
    e[0] = splat(zero);
}

/// Lane version of [`super::tridiag_ql::implicit_ql`]. On failure returns the first lane that
/// did not converge.
#[inline(always)]
pub(crate) fn implicit_ql_lanes<T: Real, const L: usize>(
    d: &mut [Lanes<T, L>],
    e: &mut [Lanes<T, L>],
    n: usize,
    mut z: Option<&mut [Lanes<T, L>]>,
) -> Result<(), (usize, NoConvergence)> {
    let zero = T::zero();
    let one = T::one();
    let two = one + one;
    let eps = T::epsilon();
    for i in 1..n {
        e[i - 1] = e[i];
    }
    e[n - 1] = splat(zero);
    let mut f = splat::<T, L>(zero);
    let mut tst1 = splat::<T, L>(negligible_floor::<T>());
    for l in 0..n {
        let mut m = [l; L];
        let mut active = [false; L];
        for q in 0..L {
            tst1[q] = tst1[q].max(d[l][q].abs() + e[l][q].abs());
            while m[q] < n - 1 && e[m[q]][q].abs() > eps * tst1[q] {
                m[q] += 1;
            }
            active[q] = m[q] > l;
        }
        let mut iterations = 0;
        while active.iter().any(|&a| a) {
            iterations += 1;
            if iterations > 30 {
                return Err((active.iter().position(|&a| a).unwrap_or(0), NoConvergence));
            }
            let mut h = [zero; L];
            let mut dl1 = [one; L];
            for q in 0..L {
                let g = d[l][q];
                let p = (d[l + 1][q] - g) / (two * e[l][q]);
                let rr = p * p + one;
                let mut r = if rr < T::max_value().sqrt() {
                    rr.sqrt()
                } else {
                    p.hypot(one)
                };
                if p < zero {
                    r = -r;
                }
                let new_l = e[l][q] / (p + r);
                let new_l1 = e[l][q] * (p + r);
                if active[q] {
                    d[l][q] = new_l;
                    d[l + 1][q] = new_l1;
                    dl1[q] = new_l1;
                    h[q] = g - new_l;
                }
            }
            for di in &mut d[l + 2..n] {
                for q in 0..L {
                    di[q] -= h[q];
                }
            }
            for q in 0..L {
                f[q] += h[q];
            }
            let mut p: Lanes<T, L> = std::array::from_fn(|q| d[m[q]][q]);
            let (mut c, mut c2, mut c3) = ([one; L], [one; L], [one; L]);
            let (mut s, mut s2) = ([zero; L], [zero; L]);
            let el1 = e[l + 1];
            let top = (0..L)
                .filter(|&q| active[q])
                .map(|q| m[q])
                .max()
                .unwrap_or(l);
            for i in (l..top).rev() {
                let act: [bool; L] = std::array::from_fn(|q| active[q] && i < m[q]);
                c3 = c2;
                c2 = c;
                s2 = s;
                let ei = e[i];
                let r = hypot_lanes(&p, &ei, &act);
                let di = d[i];
                // Every lane computes; lanes outside their sweep keep their old values.
                let mut e_next = e[i + 1];
                let mut d_next = d[i + 1];
                for q in 0..L {
                    let g = c[q] * ei[q];
                    let hq = c[q] * p[q];
                    let new_e = s[q] * r[q];
                    let new_s = ei[q] / r[q];
                    let new_c = p[q] / r[q];
                    let new_p = new_c * di[q] - new_s * g;
                    let new_d = hq + new_s * (new_c * g + new_s * di[q]);
                    if act[q] {
                        e_next[q] = new_e;
                        s[q] = new_s;
                        c[q] = new_c;
                        p[q] = new_p;
                        d_next[q] = new_d;
                    }
                }
                e[i + 1] = e_next;
                d[i + 1] = d_next;
                if let Some(z) = z.as_deref_mut() {
                    // Lanes outside their sweep hold c = 1, s = 0: the rotation is an identity
                    // for them (exact for finite entries, up to the sign of zero).
                    let (left, right) = z.split_at_mut((i + 1) * n);
                    let zi = &mut left[i * n..];
                    let zi1 = &mut right[..n];
                    for (a, b) in zi.iter_mut().zip(zi1.iter_mut()) {
                        for q in 0..L {
                            let (av, bv) = (a[q], b[q]);
                            b[q] = s[q] * av + c[q] * bv;
                            a[q] = c[q] * av - s[q] * bv;
                        }
                    }
                }
            }
            for q in 0..L {
                if active[q] {
                    let pq = -s[q] * s2[q] * c3[q] * el1[q] * e[l][q] / dl1[q];
                    e[l][q] = s[q] * pq;
                    d[l][q] = c[q] * pq;
                    active[q] = e[l][q].abs() > eps * tst1[q];
                }
            }
        }
        for q in 0..L {
            d[l][q] += f[q];
        }
        e[l] = splat(zero);
    }
    Ok(())
}
