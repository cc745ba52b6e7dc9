# Read by Cython only, when `pip install .` compiles sniffer/records.py (see setup.py): these classes become
# extension types whose attributes (their __slots__, which tests/test_compiled.py checks against this file)
# are C struct fields, read and written without a dictionary lookup. Plain Python ignores this file.

cdef class EndpointNamer:
    cdef public object spec, templater

cdef class TransactionBuilder:
    cdef public object api_key_headers, content_types, identity, max_decoded_body_bytes, namer, request_facts
