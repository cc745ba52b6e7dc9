# Read by Cython only, when `pip install .` compiles parsers/correlate.py (see setup.py): these classes become
# extension types whose attributes (their __slots__, or an Exchange's dataclass fields in order, which
# tests/test_compiled.py checks against this file) are C struct fields, read and written without a dictionary
# lookup. The methods declared cpdef are C calls from a flow's sink (sniffer/flows.pxd), and the exchanges and heads
# they handle are read as C structs (parsers/messages.pxd). Plain Python ignores this file.

cimport cython

from parsers.messages cimport MessageEnd, MessageHead


cdef class Exchange:
    cdef public MessageHead request
    cdef public MessageEnd request_end
    cdef public MessageHead response
    cdef public MessageEnd response_end
    cdef public object interim_statuses, flags
    cdef public bint switch_proposed

cdef class TransactionCorrelator:
    cdef public object _emit, _on_switch, max_pending, queue
    cdef public Exchange answering, reading_request
    @cython.locals(exchange=Exchange, queue=list)
    cpdef on_head(self, role, MessageHead head)
    @cython.locals(exchange=Exchange)
    cpdef on_interim(self, MessageHead head)
    cpdef on_end(self, role, MessageEnd end)
    @cython.locals(exchange=Exchange, methods=dict)
    cpdef response_context(self)
    @cython.locals(first=Exchange, queue=list)
    cpdef _emit_ready(self)


# Called once per exchange, from its __init__ or _request_exchange.
cpdef _proposes_switch(MessageHead request)
# Called per request: a C call from the correlator.
@cython.locals(exchange=Exchange)
cpdef _request_exchange(MessageHead request)
