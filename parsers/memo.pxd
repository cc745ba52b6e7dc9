# Read by Cython only, when `pip install .` compiles parsers/memo.py (see setup.py): SharedHeaders and HeaderMemo
# become extension types whose attributes (their __slots__, which tests/test_compiled.py checks against this file)
# are C struct fields: the shared list's index, read by parsers/messages.pxd, and the memo's store. The memo's `get`
# and `put` are C calls from the modules that cimport it (sniffer/records.pxd). Plain Python ignores this file.

cdef class SharedHeaders(list):
    cdef public object field_index

cdef class HeaderMemo:
    cdef public object entries
    cdef public dict store
    cpdef get(self, headers)
    cpdef put(self, headers, value)
