# Read by Cython only, when `pip install .` compiles sniffer/flows.py (see setup.py): these classes become
# extension types whose attributes (their __slots__, which tests/test_compiled.py checks against this file)
# are C struct fields, read and written without a dictionary lookup. The methods declared cpdef are called as C
# functions, from the class and from the methods whose locals `@cython.locals` types. Plain Python ignores this
# file.

cimport cython
from libc.stdint cimport int64_t, uint64_t

from parsers.correlate cimport TransactionCorrelator
from parsers.http1 cimport Http1DirectionParser
from parsers.messages cimport MessageSink
from sniffer.reassembly cimport StreamReassembler


cdef class Flow

# The parser's sink (parsers/messages.pxd): its methods are C calls from the parser, and they call the flow and its
# correlator as C functions in turn.
cdef class _DirectionSink(MessageSink):
    cdef public Flow flow
    cdef public object direction
    cdef public TransactionCorrelator correlator
    cpdef on_head(self, role, head)
    cpdef on_interim(self, head)
    cpdef on_end(self, role, end)
    cpdef on_role(self, role)
    cpdef on_verdict(self, looks_like_http)
    cpdef response_context(self)

cdef class Endpoint:
    cdef public object ip, port

cdef class Flow:
    cdef public object key
    # Compared with every segment's endpoint key (sniffer/pipeline.py): a C integer, as the pipeline's is.
    cdef public uint64_t a_key
    cdef public object a, b, limits
    # Indexed per segment: typed, an item is read in place (no call that checks the container's type first).
    cdef public tuple reassemblers
    cdef public list parsers
    cdef public object client_direction, correlator, last_ts_ns
    # Written per segment: a C integer, where an int object was made for it each time.
    cdef public int64_t last_position
    cdef public object is_http, closed, emit, syn_seen, stats
    @cython.locals(reassembler=StreamReassembler, peer=StreamReassembler, other=StreamReassembler, parser=Http1DirectionParser)
    cpdef on_segment(self, int direction, ts_ns, long long seq, long long ack, bytes data, bint fin, long long missing)
    @cython.locals(parser=Http1DirectionParser)
    cpdef _deliver(self, direction, items)
    cpdef _parser(self, direction, starts_with_gap)
    @cython.locals(reassembler=StreamReassembler, parser=Http1DirectionParser)
    cpdef _maybe_fin(self, direction)
    cpdef carried_data(self)
    cpdef on_syn(self, direction, seq, has_ack)
    cpdef http_seen(self)
    cpdef client(self)
    cpdef server(self)
    cpdef role_found(self, direction, role)
    cpdef verdict(self, looks_like_http)

cdef class FlowTable:
    cdef public object budget
    cdef public list by_activity
    cdef public object emit, entries_made
    cdef public dict flows
    cdef public object idle_timeout_ns, limits, stale_retransmissions, stats, tombstones
