# Read by Cython only, when `pip install .` compiles sniffer/replay.py (see setup.py): these classes become
# extension types whose attributes (their __slots__, which tests/test_compiled.py checks against this file)
# are C struct fields, read and written without a dictionary lookup. Plain Python ignores this file.

from parsers.transaction cimport BatchCollector
from sniffer.metrics cimport IntervalMetrics
from sniffer.summary cimport EndpointSummary


cdef class Run:
    cdef public object alerting
    cdef public BatchCollector batches
    cdef public EndpointSummary endpoints
    cdef public object engine
    cdef public IntervalMetrics metrics
    cdef public object on_transaction, outputs, pipeline
    cpdef _record(self, transaction)
