# Read by Cython only, when `pip install .` compiles sniffer/summary.py (see setup.py): these classes become
# extension types whose attributes (their __slots__, which tests/test_compiled.py checks against this file)
# are C struct fields, read and written without a dictionary lookup. The methods declared cpdef are called as C
# functions, from the class and from the methods whose locals `@cython.locals` types. Plain Python ignores this
# file.

cimport cython
from libc.stdint cimport int64_t

from parsers.transaction cimport Transaction

# Counted per transaction: C integers, and the histogram an int64 array written through a memoryview, in C.
cdef class EndpointStats:
    cdef public int64_t count, errors
    cdef public object histogram
    cdef int64_t[::1] _counts

cdef class EndpointSummary:
    cdef public object rows
    @cython.locals(row=EndpointStats, transaction=Transaction, rows=dict)
    cpdef add(self, transaction)


# Called per transaction: C calls from EndpointSummary.add.
@cython.locals(buckets=dict, by_micros=list, micros=Py_ssize_t)
cpdef latency_bucket(double latency_ms)
cpdef _bucket_of(latency_ms)
