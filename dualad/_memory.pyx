"""A caching allocator for the large arrays of a derivative call.

Design note
-----------
A derivative call allocates and frees many large temporaries: tangent lanes (``k``
times the size of a value), recorded partials and adjoints.  glibc serves allocations
above its mmap threshold (128 KiB by default) with fresh ``mmap`` pages and returns them
with ``munmap`` on free, so every call faults its memory in again: at n = 10 000 a
Hessian-vector product spent half its time, and a gradient at n = 100 000 two thirds,
in the kernel clearing pages.

While a transform runs, NumPy's allocator for array data (``PyDataMem_SetHandler``, a
context variable, so per thread and per task) is this module's handler: blocks of at
least :data:`MIN_BYTES` are kept on free, up to :func:`cache_limit` bytes in all, and
handed out again for an allocation of the same size (``calloc`` clears the reused
block).  Smaller blocks, and everything outside a transform, use ``malloc``/``free`` as
before.  An array keeps the handler that allocated it, so a result freed long after
the call still returns its block here.  The cache keeps the most recently freed blocks;
the oldest are released when it is full.  ``DUALAD_CACHE_MB`` (environment, read at
import) sets the limit in MiB; 0 turns the cache off.
"""

import os

cimport numpy as cnp
from cpython.pycapsule cimport PyCapsule_New

cnp.import_array()

cdef extern from *:
    """
    #include <stdlib.h>
    #include <string.h>
    #include "pythread.h"

    #define DD_SLOTS 64
    static PyThread_type_lock dd_lock = NULL;
    static void *dd_ptr[DD_SLOTS];     /* oldest first */
    static size_t dd_size[DD_SLOTS];
    static int dd_count = 0;
    static size_t dd_total = 0;
    static size_t dd_cap = 0;          /* bytes; 0: off */
    static size_t dd_min = 65536;
    static size_t dd_hits = 0, dd_misses = 0;
    /* NumPy's handler at import (its default): small blocks go there, so they keep
       NumPy's own small-block cache */
    static PyDataMem_Handler *dd_base = NULL;

    static void dd_remove(int i) {     /* under the lock */
        dd_total -= dd_size[i];
        dd_count--;
        memmove(dd_ptr + i, dd_ptr + i + 1, (size_t)(dd_count - i) * sizeof(void *));
        memmove(dd_size + i, dd_size + i + 1, (size_t)(dd_count - i) * sizeof(size_t));
    }

    static void *dd_take(size_t size) {
        void *p = NULL;
        int i;
        if (size < dd_min || dd_cap == 0) return NULL;
        PyThread_acquire_lock(dd_lock, WAIT_LOCK);
        for (i = dd_count - 1; i >= 0; --i) {   /* newest first */
            if (dd_size[i] == size) {
                p = dd_ptr[i];
                dd_remove(i);
                break;
            }
        }
        if (p) dd_hits++; else dd_misses++;
        PyThread_release_lock(dd_lock);
        return p;
    }

    static void *dd_malloc(void *ctx, size_t size) {
        void *p;
        (void)ctx;
        if (size < dd_min)
            return dd_base->allocator.malloc(dd_base->allocator.ctx, size);
        p = dd_take(size);
        return p ? p : malloc(size);
    }

    static void *dd_calloc(void *ctx, size_t nelem, size_t elsize) {
        size_t size;
        void *p;
        (void)ctx;
        if (elsize != 0 && nelem > ((size_t)-1) / elsize) return NULL;
        size = nelem * elsize;
        if (size < dd_min)
            return dd_base->allocator.calloc(dd_base->allocator.ctx, nelem, elsize);
        p = dd_take(size);
        if (p) {
            memset(p, 0, size);
            return p;
        }
        return calloc(nelem, elsize);
    }

    static void *dd_realloc(void *ctx, void *p, size_t size) {
        /* NumPy's default handler reallocs with realloc() whatever the size, as do we:
           both kinds of block are malloc blocks */
        (void)ctx;
        return dd_base->allocator.realloc(dd_base->allocator.ctx, p, size);
    }

    static void dd_free(void *ctx, void *p, size_t size) {
        void *evicted[DD_SLOTS];
        int n_evicted = 0, i;
        (void)ctx;
        if (p == NULL) return;
        if (size < dd_min) {
            dd_base->allocator.free(dd_base->allocator.ctx, p, size);
            return;
        }
        if (size <= dd_cap) {
            PyThread_acquire_lock(dd_lock, WAIT_LOCK);
            if (size <= dd_cap) {
                /* make room: release the oldest blocks (outside the lock) */
                while (dd_count > 0 && (dd_count == DD_SLOTS || dd_total + size > dd_cap)) {
                    evicted[n_evicted++] = dd_ptr[0];
                    dd_remove(0);
                }
                dd_ptr[dd_count] = p;
                dd_size[dd_count] = size;
                dd_count++;
                dd_total += size;
                p = NULL;
            }
            PyThread_release_lock(dd_lock);
            for (i = 0; i < n_evicted; ++i) free(evicted[i]);
            if (p == NULL) return;
        }
        free(p);
    }

    static PyDataMem_Handler dd_handler = {
        "dualad_cache", 1, {NULL, dd_malloc, dd_calloc, dd_realloc, dd_free}
    };

    static int dd_init(PyObject *base) {
        dd_base = (PyDataMem_Handler *)PyCapsule_GetPointer(base, "mem_handler");
        if (dd_base == NULL) return -1;
        dd_lock = PyThread_allocate_lock();
        return dd_lock == NULL ? -1 : 0;
    }

    static void dd_release(void) {     /* frees every cached block */
        void *all[DD_SLOTS];
        int n, i;
        PyThread_acquire_lock(dd_lock, WAIT_LOCK);
        n = dd_count;
        for (i = 0; i < n; ++i) all[i] = dd_ptr[i];
        dd_count = 0;
        dd_total = 0;
        PyThread_release_lock(dd_lock);
        for (i = 0; i < n; ++i) free(all[i]);
    }
    """
    ctypedef struct PyDataMem_Handler:
        pass
    PyDataMem_Handler dd_handler
    int dd_init(object base) except -1
    void dd_release() nogil
    size_t dd_cap, dd_min, dd_total, dd_hits, dd_misses
    int dd_count
    enum: DD_SLOTS

# NumPy's handler in force at import (its default one): small blocks are its business
cdef object _BASE = cnp.PyDataMem_GetHandler()
if dd_init(_BASE) < 0:
    raise MemoryError("dualad._memory: cannot allocate the cache's lock")

#: Blocks smaller than this many bytes are never cached (glibc's heap serves them).
MIN_BYTES = dd_min

cdef object _CAPSULE = PyCapsule_New(&dd_handler, "mem_handler", NULL)


def _env_cap():
    raw = os.environ.get("DUALAD_CACHE_MB", "64")
    try:
        mb = float(raw)
    except ValueError:
        raise ValueError(f"DUALAD_CACHE_MB must be a number of MiB (0 turns the cache "
                         f"off), got {raw!r}") from None
    if not mb >= 0:
        raise ValueError(f"DUALAD_CACHE_MB must be >= 0, got {raw!r}")
    return int(mb * 2 ** 20)


dd_cap = _env_cap()


cpdef object cache_on():
    """Make the caching handler NumPy's allocator in this context; return the previous
    handler for :func:`cache_off` (None, and nothing changed, when the cache is off)."""
    if dd_cap == 0:
        return None
    return cnp.PyDataMem_SetHandler(_CAPSULE)


cpdef cache_off(object previous):
    """Restore the handler :func:`cache_on` replaced."""
    if previous is not None:
        cnp.PyDataMem_SetHandler(previous)


def cache_limit(limit=None):
    """The cache's size limit in bytes; with ``limit``, set it first (0: off).

    Parameters
    ----------
    limit : int, optional
        New limit in bytes.  Blocks beyond it are released.

    Returns
    -------
    int
        The limit in force.

    Examples
    --------
    >>> from dualad import _memory
    >>> old = _memory.cache_limit()
    >>> _memory.cache_limit(0)
    0
    >>> _memory.cache_limit(old) == old
    True
    """
    global dd_cap
    if limit is not None:
        limit = int(limit)
        if limit < 0:
            raise ValueError(f"the cache limit must be >= 0 bytes, got {limit}")
        dd_release()
        dd_cap = limit
    return dd_cap


def cache_info():
    """``{"blocks", "bytes", "limit", "hits", "misses"}`` of the cache.

    Examples
    --------
    >>> from dualad import _memory
    >>> sorted(_memory.cache_info())
    ['blocks', 'bytes', 'hits', 'limit', 'misses']
    """
    return {"blocks": dd_count, "bytes": dd_total, "limit": dd_cap, "hits": dd_hits,
            "misses": dd_misses}


def release():
    """Free every cached block (memory goes back to the system).

    Examples
    --------
    >>> from dualad import _memory
    >>> _memory.release()
    >>> _memory.cache_info()["blocks"]
    0
    """
    dd_release()
