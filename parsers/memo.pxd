# Read by Cython only, when `pip install .` compiles parsers/memo.py (see setup.py): HeaderMemo becomes an extension
# type whose attributes (its __slots__, which tests/test_compiled.py checks against this file) are C struct fields,
# and whose `get` and `put` are C calls from the modules that cimport it (parsers/messages.pxd, sniffer/records.pxd).
# Plain Python ignores this file.

cdef class SharedHeaders(list):
    cdef public object field_index

cdef class HeaderMemo:
    cdef public object entries
    cdef public dict store
    cpdef get(self, headers)
    cpdef put(self, headers, value)
