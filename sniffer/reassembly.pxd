# Read by Cython only, when `pip install .` compiles sniffer/reassembly.py (see setup.py): these classes become
# extension types whose attributes (their __slots__, which tests/test_compiled.py checks against this file)
# are C struct fields, read and written without a dictionary lookup. Plain Python ignores this file.

cdef class ReassemblyBudget:
    cdef public object limit, used, overruns, recent_limit, recent_used

cdef class StreamReassembler:
    cdef public object max_buffered_bytes, next_seq, next_offset, pending, pending_bytes, fin_offset, recent, recent_bytes
    cdef public object budget, finished, retransmitted_bytes, overlap_conflicts, gap_bytes, gaps, delivered_bytes
