# Read by Cython only, when `pip install .` compiles sniffer/records.py (see setup.py): these classes become
# extension types whose attributes (their __slots__, which tests/test_compiled.py checks against this file)
# are C struct fields, read and written without a dictionary lookup. The methods declared cpdef are called as C
# functions, and the transaction their locals type as a Transaction has its fields read and set as C struct fields.
# Plain Python ignores this file.

cimport cython

from parsers.correlate cimport Exchange
from parsers.memo cimport SharedHeaders
from parsers.messages cimport MessageEnd, MessageHead
from parsers.templating cimport EndpointTemplater
from parsers.transaction cimport Transaction
from sniffer.flows cimport Endpoint, Flow
from sniffer.identity cimport ClientIdentity


cdef class EndpointNamer:
    cdef public object spec
    cdef public EndpointTemplater templater
    cpdef endpoint(self, method, path)

cdef class TransactionBuilder:
    cdef public object api_key_headers
    cdef public dict content_types
    cdef public object facts_token
    cdef public ClientIdentity identity
    cdef public Py_ssize_t max_decoded_body_bytes
    cdef public EndpointNamer namer
    cdef public dict request_bodies
    cdef public dict response_bodies
    @cython.locals(transaction=Transaction, request=MessageHead, response=MessageHead, flags=list, client=Endpoint,
                   server=Endpoint)
    cpdef build(self, Flow flow, Exchange exchange)
    @cython.locals(end=MessageEnd)
    cpdef _add_request(self, Transaction transaction, MessageHead request, Exchange exchange, list flags, facts)
    @cython.locals(shared=SharedHeaders, kept=tuple)
    cpdef _facts_of(self, MessageHead request)
    @cython.locals(end=MessageEnd)
    cpdef _add_response_body(self, Transaction transaction, MessageHead response, Exchange exchange, list flags)
    @cython.locals(limit=Py_ssize_t)
    cpdef _decoded(self, bytes body, MessageHead head, list end_flags, flags)
    cpdef _content_type(self, raw)


# Module-level functions called per transaction: C calls from the builder.
# The target typed str (it is the latin-1 text of the request-target): its startswith, slices and `in` tests are C
# calls without a method lookup.
cpdef split_target(str target)
cpdef target_parts(str target)
cpdef _text(value)
@cython.locals(per_s=cython.longlong, whole=cython.longlong)
cpdef seconds(long long ts_ns)
@cython.locals(per_us=cython.longlong)
cpdef latency_ms(long long elapsed_ns)
cpdef _unique(flags)
@cython.locals(transaction=Transaction)
cpdef _transaction(ts, src_ip, src_port, dst_ip, dst_port, method, uri, host, path, query, http_version, endpoint)
@cython.locals(previous=bytes)
cpdef _shared_body(dict last_bodies, endpoint, bytes body)
