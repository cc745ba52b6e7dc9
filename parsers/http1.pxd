# Read by Cython only, when `pip install .` compiles parsers/http1.py (see setup.py): these classes become
# extension types whose attributes (their __slots__, which tests/test_compiled.py checks against this file)
# are C struct fields, read and written without a dictionary lookup. Plain Python ignores this file.

cdef class Http1DirectionParser:
    cdef public object role, sink, limits, state, http_confirmed, verdict_pending, unconfirmed_scan_bytes, sync_buffer
    cdef public object switch_buffer, pending_flags, loss_possible, parse_errors, tunnel_bytes, buffer, head, reader
    cdef public object message_ts, body_bytes, body_keep, body_kept, body_incomplete, body_remaining, framing, flags
    cdef public object _switch_ts, host_injected, head_bytes, proposed_switch, response_method, response_context_known
