# Read by Cython only, when `pip install .` compiles sniffer/identity.py (see setup.py): these classes become
# extension types whose attributes (their __slots__, which tests/test_compiled.py checks against this file)
# are C struct fields, read and written without a dictionary lookup. Plain Python ignores this file.

cdef class ClientIdentity:
    cdef public object _hash_key
    cdef public dict _sources
    cdef public object _trusted_networks
    cpdef client_id(self, src_ip, x_forwarded_for=*, forwarded=*)
    # The cached source of an address, a C call per transaction from client_id (a method called by name cost some 670
    # instructions a transaction, and the cache's get by name 330).
    cpdef _source(self, src_ip)
