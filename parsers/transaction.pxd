# Read by Cython only, when `pip install .` compiles parsers/transaction.py (see setup.py): Transaction becomes an
# extension type (a Cython dataclass) whose fields, in declaration order (tests/test_compiled.py checks them
# against the dataclass's), are C struct fields, which the modules that cimport it read and set without a
# dictionary lookup. `transaction_columns` reads them so. Plain Python ignores this file.

cimport cython


cdef class Transaction:
    cdef public object ts, src_ip, src_port, dst_ip, dst_port, method, uri, host, path, query, http_version
    cdef public object endpoint, status, reason, latency_ms, req_body_bytes, resp_body_bytes, req_content_type
    cdef public object resp_content_type, client_id, api_key_hash, user_agent, flags, forwarded_for, forwarded
    cdef public object req_body, resp_body, raw_target, req_headers, resp_headers, payload_features


@cython.locals(transaction=Transaction)
cpdef transaction_columns(transactions)
