# Read by Cython only, when `pip install .` compiles parsers/correlate.py (see setup.py): these classes become
# extension types whose attributes (their __slots__, which tests/test_compiled.py checks against this file)
# are C struct fields, read and written without a dictionary lookup. Plain Python ignores this file.

cdef class TransactionCorrelator:
    cdef public object _emit, _on_switch, max_pending, queue, answering, reading_request
