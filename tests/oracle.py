"""A dense numpy oracle of the WALS objective, written independently of walsspark.solver.

Everything is dense n x m: the full weight matrix (w0 off the observed set), one explicit
k x k solve per row in a Python loop. Slow, obvious, and only for small test matrices.
"""

from __future__ import annotations

import numpy as np


def dense_problem(rows, cols, values, n, m, w0, row_weight=1.0, col_weight=1.0):
    """Dense targets A, weights W and the observed mask of a ratings list."""
    observed = np.zeros((n, m), dtype=bool)
    observed[rows, cols] = True
    targets = np.zeros((n, m))
    targets[rows, cols] = values
    weights = np.full((n, m), float(w0))
    weights[observed] = w0 + row_weight * col_weight
    return targets, weights, observed


def row_update(targets, weights, observed, other, lam, nu, offset=0.0):
    """Minimize the objective over every row, `other` fixed: one dense solve per row.

    Row i's regularization is lam * (n_i + offset) ** nu, n_i its number of observations.
    """
    n, k = targets.shape[0], other.shape[1]
    result = np.zeros((n, k))
    for i in range(n):
        count = observed[i].sum()
        if count == 0:
            continue
        reg = lam * (count + offset) ** nu
        lhs = (other * weights[i][:, None]).T @ other + reg * np.eye(k)
        rhs = other.T @ (weights[i] * targets[i])
        result[i] = np.linalg.solve(lhs, rhs)
    return result


def loss(targets, weights, observed, users, items, lam, nu, offset=0.0):
    """The full objective, computed densely."""
    residual = targets - users @ items.T
    data = np.sum(weights * residual**2)
    reg_rows = lam * (observed.sum(axis=1) + offset) ** nu
    reg_cols = lam * (observed.sum(axis=0) + offset) ** nu
    reg_rows = np.where(observed.sum(axis=1) > 0, reg_rows, 0.0)
    reg_cols = np.where(observed.sum(axis=0) > 0, reg_cols, 0.0)
    return data + np.sum(reg_rows * (users**2).sum(1)) + np.sum(reg_cols * (items**2).sum(1))


def train(targets, weights, observed, initial_items, sweeps, lam, nu, offset=0.0):
    """Alternate row and column updates; return factors and the loss after each sweep."""
    items = initial_items.astype(np.float64)
    history = []
    users = None
    for _ in range(sweeps):
        users = row_update(targets, weights, observed, items, lam, nu, offset)
        items = row_update(targets.T, weights.T, observed.T, users, lam, nu, offset)
        history.append(loss(targets, weights, observed, users, items, lam, nu, offset))
    return users, items, history


def popularity_weights(observed, w0, row_exponent, col_exponent, excess=1.0):
    """Dense weights with popularity-scaled unobserved entries (eALS's form).

    w0_ij = w0 * s_i * t_j with s_i = n_i^e_row / mean(n^e_row) over rows that have
    observations (t_j likewise over columns); observed entries weigh w0_ij + excess.
    """
    row_counts = observed.sum(axis=1).astype(float)
    col_counts = observed.sum(axis=0).astype(float)

    def scales(counts, exponent):
        powered = np.where(counts > 0, counts**exponent, 0.0)
        return powered / powered[counts > 0].mean()

    unobserved = w0 * np.outer(scales(row_counts, row_exponent), scales(col_counts, col_exponent))
    return np.where(observed, unobserved + excess, unobserved)
