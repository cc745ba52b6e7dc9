# Read by Cython only, when `pip install .` compiles sniffer/metrics.py (see setup.py): these classes become
# extension types whose attributes (their __slots__, which tests/test_compiled.py checks against this file)
# are C struct fields, read and written without a dictionary lookup. The methods declared cpdef are called as C
# functions, from the class and from the methods whose locals `@cython.locals` types. Plain Python ignores this
# file.

cimport cython

from parsers.transaction cimport Transaction

cdef class SeriesAggregate:
    cdef public object count, errors, req_bytes, resp_bytes, latencies, latencies_seen, sampler, next_sampled
    cdef public object skip_weight

cdef class IntervalMetrics:
    cdef public object closed_before_ns, emit, endpoints, folded_endpoints, health, health_fields, interval_ns
    cdef public object late_transactions, lateness_ns, open, packets, pending_since, points_emitted, previous_counters
    cdef public object settings, source
    cpdef interval_of(self, ts_ns)
    @cython.locals(aggregate=SeriesAggregate, transaction=Transaction)
    cpdef add(self, transaction)
