# Read by Cython only, when `pip install .` compiles sniffer/reassembly.py (see setup.py): these classes become
# extension types whose attributes (their __slots__, which tests/test_compiled.py checks against this file)
# are C struct fields, read and written without a dictionary lookup. The methods declared cpdef are called as C
# functions, from the class and from the methods whose locals `@cython.locals` types. Plain Python ignores this
# file.

cimport cython


cdef class ReassemblyBudget:
    cdef public object limit, used, overruns, recent_limit, recent_used
    cpdef over(self)

cdef class StreamReassembler:
    cdef public object max_buffered_bytes, next_seq, next_offset, pending, pending_bytes, fin_offset, recent, recent_bytes
    cdef public ReassemblyBudget budget
    cdef public object finished, retransmitted_bytes, overlap_conflicts, gap_bytes, gaps, delivered_bytes
    cpdef on_segment(self, ts_ns, seq, data, fin, out, missing=*)
    cpdef take_next(self, seq, data, fin, missing)
    cpdef on_peer_ack(self, ack, out)
    @cython.locals(recent=list)
    cpdef forget_acked(self, ack)
    cpdef _add(self, ts_ns, offset, data, out)
    @cython.locals(recent=list)
    cpdef _take(self, data)
    @cython.locals(recent=list, count=cython.Py_ssize_t, dropped=cython.Py_ssize_t, offset=cython.longlong,
                   size=cython.Py_ssize_t)
    cpdef _forget_recent(self, long long before_offset)
    cpdef _drain(self, out)
    cpdef _skip_to(self, offset, out)
    cpdef _check_finished(self)
    cpdef _deliver(self, ts_ns, data, out)


# Called per segment: a C call from the reassembler.
cpdef seq_delta(seq, reference)
