# Read by Cython only, when `pip install .` compiles sniffer/replay.py (see setup.py): these classes become
# extension types whose attributes (their __slots__, which tests/test_compiled.py checks against this file)
# are C struct fields, read and written without a dictionary lookup. Plain Python ignores this file.

cdef class Run:
    cdef public object alerting, detect, endpoints, metrics, on_transaction, outputs, pipeline
