# Read by Cython only, when `pip install .` compiles sniffer/pipeline.py (see setup.py): these classes become
# extension types whose attributes (their __slots__, which tests/test_compiled.py checks against this file)
# are C struct fields, read and written without a dictionary lookup. The methods declared cpdef are called as C
# functions, from the class and from the methods whose locals `@cython.locals` types. Plain Python ignores this
# file.

cimport cython
from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t, uint64_t

from sniffer.flows cimport Flow
from sniffer.records cimport TransactionBuilder


# Counted per batch and per transaction: C integers.
cdef class CaptureStats:
    cdef public int64_t packets, bytes, tcp_packets, malformed_packets, transactions, last_ts_ns


cdef class Pipeline:
    cdef public object batch_base
    cdef public TransactionBuilder builder
    cdef public int64_t emitting_flow_position
    cdef public object expire_every_ns, flows, fragments, next_expire_ns
    cdef public object on_transaction
    # Written per segment: a C integer, where an int object was made for it each time.
    cdef public int64_t position
    cdef public object shard
    cdef public CaptureStats stats
    @cython.locals(row_numbers=int64_t[::1], flow_keys=uint64_t[::1], endpoint_keys=uint64_t[::1], times=int64_t[::1],
                   seqs=uint32_t[::1], acks=uint32_t[::1], flag_bits=uint8_t[::1], offsets=int64_t[::1],
                   lengths=int32_t[::1], missing_bytes=int32_t[::1], index=cython.Py_ssize_t, flow=Flow, frames=bytes,
                   row=cython.Py_ssize_t, base=cython.Py_ssize_t, position=cython.Py_ssize_t, flags=cython.int,
                   offset=cython.Py_ssize_t, length=cython.Py_ssize_t, direction=cython.int, syn_bit=cython.int,
                   ack_bit=cython.int, fin_bit=cython.int, rst_bit=cython.int, flow_map=dict,
                   frame_bytes="const char *", frames_length=cython.Py_ssize_t, end=cython.Py_ssize_t,
                   endpoint_key=uint64_t, seq=int64_t, ack=int64_t, missing=cython.int)
    cpdef _segments(self, batch, frames, decoded, rows, inline=*)
    # Called per transaction (through the flow table's callback): the flow's fields are C reads.
    cpdef _emit(self, Flow flow, exchange)
