# Read by Cython only, when `pip install .` compiles parsers/templating.py (see setup.py): these classes become
# extension types whose attributes (their __slots__, which tests/test_compiled.py checks against this file)
# are C struct fields, read and written without a dictionary lookup. The methods declared cpdef are C calls from
# the modules that cimport the class (sniffer/records.pxd). Plain Python ignores this file.

cimport cython

from parsers.memo cimport FifoMemo


# The tables are typed, so that their lookups are C calls.
cdef class EndpointTemplater:
    cdef public FifoMemo _cache
    cdef public object _cache_size
    cdef public dict _endpoints
    cdef public FifoMemo _id_endpoints
    cdef public object _learn_min_distinct, _max_tracked_prefixes
    cdef public FifoMemo _parents
    cdef public dict _positions
    cdef public FifoMemo _shapes
    @cython.locals(path=str, parent=str, slash=Py_ssize_t, id_last=bint)
    cpdef template(self, path)
    cpdef _template_uncached(self, path)
    cpdef _template_segment(self, templated, position, segment)
    cpdef _observe_literal(self, prefix, literal)


# Module-level functions called per path or path segment: C calls from the templater.
@cython.locals(segments=list, position=cython.Py_ssize_t)
cpdef _id_shape(path)
@cython.locals(position=Py_ssize_t, character=Py_UCS4)
cdef bint _decimal_from(str path, Py_ssize_t start) except -1
cpdef _classify(segment)
cpdef _typed_placeholder(decoded)
cpdef _placeholder_with_extension(segment)
cpdef _looks_like_token(decoded)
