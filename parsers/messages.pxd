# Read by Cython only, when `pip install .` compiles parsers/messages.py (see setup.py): MessageHead and MessageEnd
# become extension types (Cython dataclasses) whose fields, in declaration order (tests/test_compiled.py checks them
# against the dataclasses'), are C struct fields, and `header` is called as a C function by the modules that cimport
# MessageHead (its index typed a dict, whose `get` is then a C call too, and read from a shared header list as a C
# struct field). MessageSink's methods are C calls from the parser, overridden by the flow's sink. Plain Python
# ignores this file.

cimport cython

from parsers.memo cimport SharedHeaders


cdef class MessageHead:
    cdef public object ts_ns, http_version, headers, method, target, status, reason, flags, after_loss, _index
    @cython.locals(shared=SharedHeaders, index=dict)
    cpdef header(self, name)

cdef class MessageEnd:
    cdef public object body_bytes, body, flags

cdef class MessageSink:
    cpdef on_head(self, role, head)
    cpdef on_interim(self, head)
    cpdef on_end(self, role, end)
    cpdef on_role(self, role)
    cpdef on_verdict(self, looks_like_http)
    cpdef response_context(self)
