# Read by Cython only, when `pip install .` compiles sniffer/reassembly.py (see setup.py): these classes become
# extension types whose attributes (their __slots__, which tests/test_compiled.py checks against this file)
# are C struct fields, read and written without a dictionary lookup. The methods declared cpdef are called as C
# functions, from the class and from the methods whose locals `@cython.locals` types. Plain Python ignores this
# file.

cimport cython
from libc.stdint cimport int64_t


# Sizes and counts are C integers (the configuration bounds every limit by 2**62); the sequence numbers and the FIN's
# offset stay objects, None until known.
cdef class ReassemblyBudget:
    cdef public int64_t limit, used, overruns, recent_limit, recent_used
    cpdef over(self)

cdef class StreamReassembler:
    cdef public int64_t max_buffered_bytes
    cdef public int64_t next_seq
    cdef public int64_t next_offset
    cdef public object pending
    cdef public int64_t pending_bytes
    cdef public object fin_offset
    cdef public list recent
    cdef public int64_t recent_bytes, recent_start
    cdef public ReassemblyBudget budget
    cdef public bint finished
    cdef public int64_t retransmitted_bytes, overlap_conflicts, gap_bytes, gaps, delivered_bytes
    cpdef on_segment(self, ts_ns, seq, data, fin, out, missing=*)
    cpdef take_next(self, long long seq, bytes data, bint fin, long long missing)
    cpdef on_peer_ack(self, ack, out)
    @cython.locals(recent=list, next_seq=cython.longlong, half=cython.longlong, modulus=cython.longlong,
                   acked_offset=cython.longlong)
    cpdef forget_acked(self, long long ack)
    cpdef _add(self, ts_ns, offset, data, out)
    @cython.locals(recent=list, size=cython.Py_ssize_t, offset=cython.longlong, recent_bytes=cython.longlong,
                   budget=ReassemblyBudget, dropped=cython.Py_ssize_t, next_seq=cython.longlong,
                   modulus=cython.longlong, kept_limit=cython.longlong)
    cpdef _take(self, data)
    @cython.locals(recent=list, count=cython.Py_ssize_t, dropped=cython.Py_ssize_t, offset=cython.longlong,
                   size=cython.Py_ssize_t)
    cpdef _forget_recent(self, long long before_offset)
    @cython.locals(recent=list)
    cpdef _drop_leading_gap(self)
    cpdef _drain(self, out)
    cpdef _skip_to(self, offset, out)
    cpdef _check_finished(self)
    cpdef _deliver(self, ts_ns, data, out)


# Called per segment: a C call from the reassembler.
cpdef seq_delta(seq, reference)
