# Read by Cython only, when `pip install .` compiles sniffer/metrics.py (see setup.py): these classes become
# extension types whose attributes (their __slots__, which tests/test_compiled.py checks against this file)
# are C struct fields, read and written without a dictionary lookup. The methods declared cpdef are called as C
# functions, from the class and from the methods whose locals `@cython.locals` types. Plain Python ignores this
# file.

cimport cython
from libc.stdint cimport int64_t

from parsers.transaction cimport Transaction

# Counts and byte sums are C integers; next_sampled stays an object: Algorithm L's skips may pass any C integer.
cdef class SeriesAggregate:
    cdef public int64_t count, errors, req_bytes, resp_bytes
    cdef public list latencies
    cdef public Py_ssize_t latencies_seen
    cdef public object draw, draw_bits, next_sampled
    cdef public double skip_weight

cdef class IntervalMetrics:
    cdef public int64_t closed_before_ns
    cdef public object emit
    cdef public set endpoints
    cdef public object folded_endpoints, health, health_fields, interval_ns, late_transactions, lateness_ns
    cdef public Py_ssize_t max_latency_samples
    cdef public dict open, open_series
    cdef public int64_t open_start
    cdef public object packets, pending_since, points_emitted, previous_counters
    cdef public Py_ssize_t sample_bits
    cdef public object settings, source
    @cython.locals(interval=int64_t)
    cpdef interval_of(self, int64_t ts_ns)
    @cython.locals(aggregate=SeriesAggregate, transaction=Transaction, series=dict, key=tuple, seen=cython.Py_ssize_t,
                   scaled=double, start=int64_t, request_bytes=int64_t, response_bytes=int64_t)
    cpdef add(self, transaction)
    cpdef _sample(self, SeriesAggregate aggregate, tuple key, start, latency_ms)


# Called per latency past a full reservoir that Algorithm L samples: C calls from IntervalMetrics._sample.
@cython.locals(uniform=double)
cpdef _skip(draw, double weight)
@cython.locals(uniform=double)
cpdef _weight_factor(draw, Py_ssize_t size)
cpdef _below(draw_bits, bound, bits)
