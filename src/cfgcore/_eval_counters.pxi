# Part of cfgcore._eval (included by _eval.pyx, which holds the declarations every part
# shares): Counters, one compiled snapshot's evaluation counts in C cells (what a racing
# increment can lose: _eval.pyx's docstring). CompiledSnapshot (_eval_snapshot.pxi)
# adds to the cells; Engine.take_evaluation_counts harvests them through take().


# Counters are this process's live tallies, not a value: a copy (a pickle, copy.copy)
# would count nothing and harvest nothing, so both evaluators refuse it. A snapshot is
# pickled without them (its copy counts from zero); a take() result is plain dicts.
COUNTERS_NOT_PICKLED = (
    "cfgcore evaluation counters cannot be pickled or copied: they are this process's "
    "live tallies; pickle the counts instead (counters.take(), or the engine's "
    "take_evaluation_counts())"
)


@cython.final
@cython.no_gc  # holds tuples of strings only: no cycle possible
cdef class Counters:
    """Evaluation counts of one compiled snapshot: plain C integers, no lock.

    ``cells[variant * N_REASONS + reason]`` counts the top-level evaluations that served
    a (global) variant for a reason, ``errors[code]`` the calls per error code. The
    cells are calloc'ed: pages no flag was evaluated on stay unmapped, so a large
    snapshot built before ``fork()`` adds no private memory to a worker until it
    evaluates. ``evaluate_all`` counts itself once in ``all_calls``; the flags that
    cannot vary are attributed at :meth:`take` from ``const_cells``.

    It outlives its snapshot (the engine keeps it until harvested), so nothing counted
    on a retired snapshot is lost. Under the GIL an increment (a C ``+=``) and
    :meth:`take` never interleave; on a free-threaded build, concurrent ``+=`` on one
    cell can lose increments: counters are statistics, not ledgers.
    """

    cdef uint64_t* cells
    cdef Py_ssize_t n_cells
    cdef uint64_t errors[N_ERRORS]
    cdef uint64_t all_calls
    cdef int32_t* const_cells
    cdef Py_ssize_t n_const
    cdef int32_t* var_flag  # the flag owning each global variant (-1: unreachable)
    cdef tuple _keys
    cdef tuple _names
    cdef public long long version

    cdef int _setup(self, tuple keys, tuple names, const int32_t* flags, Py_ssize_t n_flags) except -1:
        cdef Py_ssize_t n_vars = len(names), fi, v
        self._keys = keys
        self._names = names
        self.n_cells = n_vars * N_REASONS
        self.cells = <uint64_t*>calloc(self.n_cells if self.n_cells else 1, sizeof(uint64_t))
        self.var_flag = <int32_t*>malloc((n_vars if n_vars else 1) * sizeof(int32_t))
        if self.cells == NULL or self.var_flag == NULL:
            raise MemoryError()
        for v in range(n_vars):
            self.var_flag[v] = -1
        for fi in range(n_flags):
            for v in range(flags[fi * FW + F_VAR_BASE], flags[fi * FW + F_VAR_BASE] + flags[fi * FW + F_VAR_COUNT]):
                self.var_flag[v] = <int32_t>fi
        return 0

    def __reduce__(self):
        raise TypeError(COUNTERS_NOT_PICKLED)

    def __dealloc__(self):
        free(self.cells)
        free(self.const_cells)
        free(self.var_flag)

    def take(self):
        """Read and reset every counter: ``({(flag, variant, reason): n}, {code: n})``.

        The read and the reset are one C pass that runs no Python code, so under the GIL
        no evaluation on another thread lands between them.
        """
        cdef Py_ssize_t i, n = 0
        cdef uint64_t calls = self.all_calls
        cdef uint64_t errs[N_ERRORS]
        cdef CountCell* buf
        self.all_calls = 0
        if calls:
            for i in range(self.n_const):
                self.cells[self.const_cells[i]] += calls
        for i in range(self.n_cells):
            if self.cells[i]:  # reads only: untouched pages stay unmapped
                n += 1
        buf = <CountCell*>malloc((n if n else 1) * sizeof(CountCell))
        if buf == NULL:
            raise MemoryError()  # nothing reset: the counts stay for the next take
        n = 0
        for i in range(self.n_cells):
            if self.cells[i]:
                buf[n].index = i
                buf[n].count = self.cells[i]
                self.cells[i] = 0
                n += 1
        for i in range(N_ERRORS):
            errs[i] = self.errors[i]
            self.errors[i] = 0
        try:
            return self._as_dicts(buf, n, errs)
        finally:
            free(buf)

    cdef tuple _as_dicts(self, const CountCell* buf, Py_ssize_t n, const uint64_t* errs):
        cdef dict evaluations = {}, errors = {}
        cdef Py_ssize_t i, var
        for i in range(n):
            var = buf[i].index // N_REASONS
            if self.var_flag[var] >= 0:
                key = (self._keys[self.var_flag[var]], self._names[var], REASONS[buf[i].index % N_REASONS])
                evaluations[key] = buf[i].count
        for i in range(N_ERRORS):
            if errs[i]:
                errors[ERROR_CODES[i]] = errs[i]
        return evaluations, errors
