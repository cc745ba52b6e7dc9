# Read by Cython only, when `pip install .` compiles sniffer/identity.py (see setup.py): these classes become
# extension types whose attributes (their __slots__, which tests/test_compiled.py checks against this file)
# are C struct fields, read and written without a dictionary lookup. Plain Python ignores this file.

cdef class ClientIdentity:
    cdef public object _hash_key, _sources, _trusted_networks
    cpdef client_id(self, src_ip, x_forwarded_for=*, forwarded=*)
