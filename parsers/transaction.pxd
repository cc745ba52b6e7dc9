# Read by Cython only, when `pip install .` compiles parsers/transaction.py (see setup.py): Transaction becomes an
# extension type (a Cython dataclass) whose fields, in declaration order (tests/test_compiled.py checks them
# against the dataclass's), are C struct fields, which the modules that cimport it read and set without a
# dictionary lookup. ColumnsBuilder reads them so, and the replay loop hands each transaction to a BatchCollector as a
# C call. Plain Python ignores this file.

cimport cython
from libc.stdint cimport int64_t


# `ts` is a C double: no float object is made per transaction (nor kept in a batch held for the detectors).
# Callgrind, bench_q, every detector: 6,563.1M instructions against 6,570.0M with an object field.
cdef class Transaction:
    cdef public double ts
    cdef public object src_ip, src_port, dst_ip, dst_port, method, uri, host, path, query, http_version
    cdef public object endpoint, status, reason, latency_ms, req_body_bytes, resp_body_bytes, req_content_type
    cdef public object resp_content_type, client_id, api_key_hash, user_agent, flags, forwarded_for, forwarded
    cdef public object req_body, resp_body, raw_target, req_headers, resp_headers, payload_features


cdef class ColumnsBuilder:
    cdef int64_t[::1] _client_codes, _endpoint_codes, _last_req_rows, _last_resp_rows, _method_codes, _path_lengths
    cdef int64_t[::1] _req_header_codes, _req_lengths, _req_sources, _req_types, _req_wire, _resp_header_codes
    cdef int64_t[::1] _resp_lengths, _resp_sources, _resp_types, _resp_wire, _statuses, _target_lengths
    cdef double[::1] _ts
    cdef public Py_ssize_t capacity, count
    cdef public list client_ids, distinct_clients, distinct_endpoints, distinct_methods, distinct_req_headers
    cdef public list distinct_resp_headers, distinct_types, endpoints, methods, paths
    cdef public list req_bodies, req_headers, resp_bodies, resp_headers, src_ips, targets
    cdef public dict client_index, endpoint_index, method_index, req_header_index, resp_header_index, type_index
    cdef public object last_rows
    cdef public tuple numbers
    cpdef _allocate(self, Py_ssize_t capacity)
    @cython.locals(row=Py_ssize_t, endpoint_code=Py_ssize_t, previous=Py_ssize_t, repeats=bint, req_type=int64_t,
                   resp_type=int64_t, last=Py_ssize_t, code=Py_ssize_t, known_endpoints=Py_ssize_t)
    cpdef append(self, Transaction transaction)
    cpdef columns(self)

cdef class BatchCollector:
    cdef public Py_ssize_t batch_size, body_bytes
    cdef public list carried
    cdef public Py_ssize_t max_body_bytes
    cdef public double max_delay_s
    cdef public list sealed
    cdef public double started_s
    cdef public list transactions
    @cython.locals(ts=double)
    cpdef add(self, Transaction transaction, Py_ssize_t body_bytes=*, raised=*)
    cpdef seal_due(self, now_s)
    cpdef seal(self)
    cpdef take(self)

@cython.locals(code=object)
cdef Py_ssize_t _code(dict index, list distinct, value, Py_ssize_t last) except -1

@cython.locals(code=object, position=Py_ssize_t)
cdef Py_ssize_t _identity_code(dict index, list distinct, value, Py_ssize_t last) except -1

cdef bint _repeats(Py_ssize_t previous, body, int64_t type_id, list bodies, int64_t[::1] type_ids) except -1

@cython.locals(transaction=Transaction, builder=ColumnsBuilder)
cpdef transaction_columns(transactions)

@cython.locals(transaction=Transaction, row=Py_ssize_t, number=Py_ssize_t, count=Py_ssize_t, carried_count=Py_ssize_t,
               last_number=Py_ssize_t, sources=list, requests=list, responses=list, request_ids=list,
               response_ids=list, numbers=int64_t[::1], taken_at=int64_t[::1], rows_at=int64_t[::1])
cpdef carried_features(transactions, dict interned, dict aliases)

@cython.locals(number=Py_ssize_t)
cpdef _gather(list sources, numbers, taken)

@cython.locals(alias=tuple)
cpdef _interned(keyset, dict interned, dict aliases)
