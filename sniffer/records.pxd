# Read by Cython only, when `pip install .` compiles sniffer/records.py (see setup.py): these classes become
# extension types whose attributes (their __slots__, which tests/test_compiled.py checks against this file)
# are C struct fields, read and written without a dictionary lookup. The methods declared cpdef are called as C
# functions, and the transaction their locals type as a Transaction has its fields read and set as C struct fields.
# Plain Python ignores this file.

cimport cython

from parsers.transaction cimport Transaction


cdef class EndpointNamer:
    cdef public object spec, templater

cdef class TransactionBuilder:
    cdef public object api_key_headers, content_types, identity, max_decoded_body_bytes, namer, request_facts
    @cython.locals(transaction=Transaction)
    cpdef build(self, flow, exchange)
    @cython.locals(transaction=Transaction)
    cpdef _add_request(self, transaction, request, exchange, flags)
    @cython.locals(transaction=Transaction)
    cpdef _add_response_body(self, transaction, response, exchange, flags)
