# Read by Cython only, when `pip install .` compiles sniffer/flows.py (see setup.py): these classes become
# extension types whose attributes (their __slots__, which tests/test_compiled.py checks against this file)
# are C struct fields, read and written without a dictionary lookup. Plain Python ignores this file.

cdef class _DirectionSink:
    cdef public object flow, direction, correlator

cdef class Flow:
    cdef public object key, a_key, a, b, limits, reassemblers, parsers, client_direction, correlator, last_ts_ns
    cdef public object last_position, is_http, closed, emit, syn_seen, stats

cdef class FlowTable:
    cdef public object budget, emit, flows, idle_timeout_ns, limits, stale_retransmissions, stats, tombstones
