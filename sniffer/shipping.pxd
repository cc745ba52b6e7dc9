# Read by Cython only, when `pip install .` compiles sniffer/shipping.py (see setup.py): the transaction each loop
# reads or makes has its fields read and set as C struct fields, and the columns are typed memoryviews, each value a
# C read or write. Plain Python ignores this file.

cimport cython
from libc.stdint cimport int64_t

from parsers.transaction cimport Transaction

# The columns' offsets, C integers in the loops (the module's own assignments set them).
cdef Py_ssize_t SRC_PORT, DST_PORT, STATUS, REQ_BODY_BYTES, RESP_BODY_BYTES, BODY_BYTES, POSITION, FLOW_POSITION
cdef Py_ssize_t INTEGER_COLUMNS, TS, LATENCY_MS, REAL_COLUMNS, TEXT_COLUMNS, MAX_TEXT_CODES
cdef int64_t NO_STATUS


@cython.locals(count=Py_ssize_t, row=Py_ssize_t, at=Py_ssize_t, real_at=Py_ssize_t, text_at=Py_ssize_t,
               column=Py_ssize_t, ints=int64_t[::1], floats=double[::1], text_codes=int64_t[::1],
               transaction=Transaction, position=int64_t, flow_position=int64_t, texts=tuple, previous=tuple,
               new_texts=list, flags=list, requests=list, responses=list, raised=dict, restarted=bint)
cpdef ship(list transactions, list positions, list alerts, bint tagged, dict numbered)

@cython.locals(count=Py_ssize_t, row=Py_ssize_t, at=Py_ssize_t, real_at=Py_ssize_t, text_at=Py_ssize_t,
               ints=int64_t[::1], floats=double[::1], text_codes=int64_t[::1], transaction=Transaction,
               status=int64_t, latency=double, entries=list, flags=list, requests=list, responses=list, raised=dict)
cpdef received(shipped, features, list texts)
