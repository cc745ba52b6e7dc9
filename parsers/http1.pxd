# Read by Cython only, when `pip install .` compiles parsers/http1.py (see setup.py): these classes become
# extension types whose attributes (their __slots__, which tests/test_compiled.py checks against this file)
# are C struct fields, read and written without a dictionary lookup. The methods declared cpdef are called as C
# functions, from the class and from the methods whose locals `@cython.locals` types. Plain Python ignores this
# file. The sink and the head are typed: the parser calls the sink's methods and reads and sets the head's fields
# as C functions and fields (parsers/messages.pxd), and a head read fast comes as a C struct too (headread.pxd).

cimport cython
from libc.stdint cimport int64_t

from parsers.headread cimport FastHead, read_head
from parsers.messages cimport MessageEnd, MessageHead, MessageSink


cdef class Http1DirectionParser:
    # The flags and lists read for every message typed too: a C test, where each was a call of PyObject_IsTrue.
    cdef public object role
    cdef public MessageSink sink
    cdef public object limits, state
    cdef public bint http_confirmed, verdict_pending
    cdef public object unconfirmed_scan_bytes, sync_buffer, switch_buffer
    cdef public list pending_flags
    cdef public bint loss_possible
    cdef public object parse_errors, tunnel_bytes, buffer
    cdef public MessageHead head
    cdef public object reader
    cdef public object message_ts
    # Counted for every piece of a body: C integers, where each sum was a new int object. Each is bounded by bytes
    # seen, by a config number (at most 2**62, sniffer.config) or by MAX_CONTENT_LENGTH, so it fits.
    cdef public int64_t body_bytes
    cdef public object body_keep
    cdef public int64_t body_kept
    cdef public bint body_incomplete
    cdef public int64_t body_remaining
    cdef public object framing
    cdef public list flags
    cdef public object _switch_ts
    cdef public bint host_injected
    cdef public object head_bytes
    cdef public bint proposed_switch
    cdef public object response_method
    cdef public bint response_context_known, strict
    cdef public int64_t max_body_keep_bytes
    cpdef feed(self, ts_ns, data)
    cpdef gap(self, nbytes)
    cpdef fin(self)
    cpdef _reset_message(self)
    cpdef _next_message(self, data, ts_ns)
    cpdef _feed_message(self, ts_ns, data)
    @cython.locals(fast=FastHead)
    cpdef _drain(self, ts_ns)
    @cython.locals(fast=FastHead, head=MessageHead, text="const char *", size=Py_ssize_t, head_length=Py_ssize_t)
    cpdef _feed_start(self, ts_ns, data)
    @cython.locals(remaining=int64_t, size=Py_ssize_t)
    cpdef _feed_body(self, ts_ns, data)
    cpdef _buffer_bytes(self, data)
    cpdef _on_head(self, headers, http_version, method, target, status, reason, ts_ns)
    cpdef _new_head(self, headers, http_version, method, target, status, reason)
    cpdef _take_head(self, MessageHead head, ts_ns, framing=*)
    cpdef _framing(self, MessageHead head)
    cpdef _framing_from(self, status, chunked, content_length)
    @cython.locals(size=Py_ssize_t, room=int64_t)
    cpdef _on_body(self, data)
    cpdef _finish_message(self, ts_ns)
    cpdef _end_message(self)
    cpdef _announce(self, MessageHead head)


# Module-level functions called per message: C calls from this module's methods. The values typed bytes (what h11
# and the fast reader give): their decode is a call of PyUnicode_DecodeLatin1, without a method lookup.
cpdef _text(bytes value)
@cython.locals(texts=dict)
cpdef _token_text(bytes value)
@cython.locals(head=MessageHead)
cpdef _head(ts_ns, http_version, headers, method, target, status, reason, flags)
@cython.locals(end=MessageEnd)
cpdef _end(body_bytes, body, flags)
