# Read by Cython only, when `pip install .` compiles parsers/headread.py (see setup.py): FastHead becomes an extension
# type (a Cython dataclass) whose fields, in declaration order (tests/test_compiled.py checks them against the
# dataclass's), are C struct fields that the parser (parsers/http1.pxd) reads without a dictionary lookup. Plain
# Python ignores this file.

cimport cython

cdef class FastHead:
    cdef public object head_length, http_version, headers, method, target, status, reason, content_length, chunked


# Called per request head: a C call from read_head.
@cython.locals(limit=Py_ssize_t, space=Py_ssize_t, target_end=Py_ssize_t, version_start=Py_ssize_t, byte=cython.uchar,
               text="const char *")
cpdef _request_line(bytes data)

# Called per request line: a C call from _request_line.
@cython.locals(method=bytes)
cpdef _method(bytes data, Py_ssize_t length)

@cython.locals(head=FastHead)
cpdef _remembered_request(head_length, remembered, method, target)

# Called per message head: start_bytes a bytes object, whose startswith compiles to a C call.
@cython.locals(start_bytes=bytes, last_key=bytes, version_start=Py_ssize_t, recent=list)
cpdef read_head(data, bint is_request)

# Called when a head is looked up or made: a C call from read_head.
cpdef _recent(list recent, Py_ssize_t size, key, value)

cpdef _shared_token(token)
