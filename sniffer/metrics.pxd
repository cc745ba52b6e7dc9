# Read by Cython only, when `pip install .` compiles sniffer/metrics.py (see setup.py): these classes become
# extension types whose attributes (their __slots__, which tests/test_compiled.py checks against this file)
# are C struct fields, read and written without a dictionary lookup. Plain Python ignores this file.

cdef class IntervalMetrics:
    cdef public object closed_before_ns, emit, endpoints, folded_endpoints, health, health_fields, interval_ns
    cdef public object late_transactions, lateness_ns, open, packets, pending_since, points_emitted, previous_counters
    cdef public object settings, source
