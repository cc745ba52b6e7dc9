# Read by Cython only, when `pip install .` compiles parsers/headread.py (see setup.py): FastHead becomes an extension
# type (a Cython dataclass) whose fields, in declaration order (tests/test_compiled.py checks them against the
# dataclass's), are C struct fields that the parser (parsers/http1.pxd) reads without a dictionary lookup. Plain
# Python ignores this file.

cdef class FastHead:
    cdef public object head_length, http_version, headers, method, target, status, reason, content_length, chunked


# Called per request whose header fields are remembered: a C call from read_head.
cpdef _remembered_request(head_length, remembered, line)
