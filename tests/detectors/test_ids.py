"""The ids under an endpoint's placeholders, and the kernel that hashes a batch of them."""

from __future__ import annotations

from unittest.mock import patch

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.kernels import python_body

from detectors import ids
from detectors.batchkeys import codes_of
from detectors.ids import batch_id_hashes, id_hash, id_values

# The Python body wraps 64-bit hashes with numpy scalars, which warn where the kernel is silent.
pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")

CASES = [
    ("/api/v1/users/42", "/api/v1/users/{id}", "42"),
    ("/api/v1/users/", "/api/v1/users/{id}", ""),
    ("/api/v1/users", "/api/v1/users/{id}", None),
    ("/api/v1/users/42/x", "/api/v1/users/{id}", "42"),
    ("/a/1/b/2", "/a/{id}/b/{id}", "1/2"),
    ("/a/1", "/a/{id}/b/{id}", "1"),
    ("/files/7.json", "/files/{id}.json", "7.json"),
    ("users/9", "users/{id}", "9"),
    ("/café/ü/\udcff", "/café/{id}/{slug}", "ü/\udcff"),
    ("/orders/🍕/items", "/orders/{id}/items", "🍕"),
    ("", "/users/{id}", None),
]


@pytest.mark.parametrize(("path", "endpoint", "values"), CASES)
def test_id_values_take_the_segments_under_the_placeholders(path, endpoint, values) -> None:
    assert id_values(path, endpoint) == values


def test_the_batch_kernel_hashes_what_id_values_reads() -> None:
    paths = [path for path, _, _ in CASES]
    endpoints = [endpoint for _, endpoint, _ in CASES]
    present, hashes = batch_id_hashes(paths, *codes_of(endpoints))
    assert present.tolist() == [values is not None for _, _, values in CASES]
    for (_, _, values), named, digest in zip(CASES, present.tolist(), hashes.tolist(), strict=True):
        if named:
            assert digest == id_hash(values)


segment = st.text(alphabet=st.sampled_from("ab1/é{}x🍕"), max_size=6)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(segment, st.lists(st.sampled_from(["v1", "{id}", "users", "{slug}"]), max_size=5)),
                min_size=1, max_size=20))  # fmt: skip
def test_the_kernel_and_its_python_body_agree_with_the_reference(rows) -> None:
    paths = ["/" + path for path, _ in rows]
    endpoints = ["/" + "/".join(["{id}", *parts]) for _, parts in rows]
    present, hashes = batch_id_hashes(paths, *codes_of(endpoints))
    for path, endpoint, named, digest in zip(paths, endpoints, present.tolist(), hashes.tolist(), strict=True):
        values = id_values(path, endpoint)
        assert named == (values is not None)
        if named:
            assert digest == id_hash(values)
    # The same columns through the kernel's Python body.
    with patch.object(ids, "id_hashes", python_body(ids.id_hashes)):
        body_present, body_hashes = batch_id_hashes(paths, *codes_of(endpoints))
    assert body_present.tolist() == present.tolist()
    assert body_hashes.tolist() == hashes.tolist()


def test_an_empty_batch_has_no_ids() -> None:
    present, hashes = batch_id_hashes([], [], np.zeros(0, np.int64))
    assert len(present) == len(hashes) == 0
