# Read by Cython only, when `pip install .` compiles sniffer/sharded.py (see setup.py): Merge becomes an extension
# type whose attributes (its __slots__, which tests/test_compiled.py checks against this file) are C struct fields,
# and the parent's calls per merged transaction (naming, summary, metrics, the detectors' batches) are C calls.
# Plain Python ignores this file.

cimport cython

from parsers.transaction cimport BatchCollector, Transaction
from sniffer.metrics cimport IntervalMetrics
from sniffer.records cimport EndpointNamer
from sniffer.summary cimport EndpointSummary


cdef class Merge:
    cdef public BatchCollector batches
    cdef public EndpointSummary endpoints
    cdef public object engine, expected_jwts
    cdef public IntervalMetrics metrics
    cdef public EndpointNamer namer
    cdef public object on_transaction
    @cython.locals(row=tuple)
    cpdef take(self, list rows)
    cpdef _take(self, Transaction transaction, Py_ssize_t body_bytes, raised)
