# Read by Cython only, when `pip install .` compiles parsers/transaction.py (see setup.py): Transaction becomes an
# extension type (a Cython dataclass) whose fields, in declaration order (tests/test_compiled.py checks them
# against the dataclass's), are C struct fields, which the modules that cimport it read and set without a
# dictionary lookup. ColumnLists reads them so, and the replay loop hands each transaction to a BatchCollector as a
# C call. Plain Python ignores this file.

cimport cython


cdef class Transaction:
    cdef public object ts, src_ip, src_port, dst_ip, dst_port, method, uri, host, path, query, http_version
    cdef public object endpoint, status, reason, latency_ms, req_body_bytes, resp_body_bytes, req_content_type
    cdef public object resp_content_type, client_id, api_key_hash, user_agent, flags, forwarded_for, forwarded
    cdef public object req_body, resp_body, raw_target, req_headers, resp_headers, payload_features


cdef class ColumnLists:
    cdef public list ts, client_ids, src_ips, methods, endpoints, paths, statuses, targets, req_headers
    cdef public list resp_headers, req_bodies, resp_bodies, req_lengths, resp_lengths, req_types, resp_types
    cdef public list req_wire, resp_wire
    cpdef append(self, Transaction transaction)
    cpdef columns(self)

cdef class BatchCollector:
    cdef public object batch_size, body_bytes
    cdef public list carried
    cdef public ColumnLists lists
    cdef public object max_body_bytes, max_delay_s
    cdef public list sealed
    cdef public object started_s
    cdef public list transactions
    cpdef add(self, Transaction transaction, body_bytes=*, raised=*)
    cpdef seal_due(self, now_s)
    cpdef seal(self)
    cpdef take(self)

@cython.locals(transaction=Transaction, lists=ColumnLists)
cpdef transaction_columns(transactions)
