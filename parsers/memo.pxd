# Read by Cython only, when `pip install .` compiles parsers/memo.py (see setup.py): SharedHeaders and the memos
# become extension types whose attributes (their __slots__, which tests/test_compiled.py checks against this file)
# are C struct fields: the shared list's index, read by parsers/messages.pxd, and the memos' stores. The memos' `get`
# and `put` are C calls from the modules that cimport them (sniffer/records.pxd, parsers/templating.pxd). Plain
# Python ignores this file.

cimport cython


cdef class SharedHeaders(list):
    cdef public object field_index, request_facts

cdef class HeaderMemo:
    cdef public object entries
    cdef public dict store
    cpdef get(self, headers)
    cpdef put(self, headers, value)

cdef class FifoMemo:
    cdef public Py_ssize_t entries
    cdef public dict store
    cdef public list order
    cdef public Py_ssize_t next_out
    cpdef get(self, key)
    @cython.locals(store=dict, order=list, oldest=Py_ssize_t)
    cpdef put(self, key, value)
    cpdef clear(self)
