/* The index reader's exact hamming scan: XOR and popcount fused into one pass over the hashes.
 *
 * Why C: numpy's scan makes four passes (XOR, bitwise_count, <=, nonzero), each a separate
 * call; one fused loop reads each hash once. A plain extension module costs a process almost
 * nothing to load, so every kind can be scanned this way, however small (bench_index.py).
 *
 * One entry point, scan(), answers within a radius or the k nearest, in (distance, position)
 * order, the reader's (distance, id) order, into buffers the caller owns
 * (services/indexer/popscan.py), and returns how many answers.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define MAX_DISTANCE 64
#define PAD (MAX_DISTANCE + 1) /* a distance no radius accepts: fills the last word's spare bytes */
#define ONES 0x0101010101010101ULL
#define HIGH 0x8080808080808080ULL
/* Releasing the GIL costs ~0.1 us: worth it only when the scan is long. */
#define RELEASE_GIL_FROM 65536

/* The loops the time goes into, each built three ways and picked once at load time (the
 * module is built without -march flags so one build runs on every x86-64): with AVX-512's
 * vector popcount the compiler vectorizes them, 8 words per instruction; with POPCNT it is
 * one instruction per word; elsewhere the portable bit trick.
 *
 * count: the distances, one byte each.
 * count_within: how many of the padded distances are <= radius. A distance d <= radius is a
 *   byte whose high bit stays clear after adding 127 - radius (no carry into the next byte:
 *   d + 127 <= 191), so one popcount tells eight distances at once. */
#define HOT_LOOPS(suffix, attributes)                                                        \
    attributes static void count_##suffix(const uint64_t *restrict values, Py_ssize_t n,     \
                                          uint64_t query, uint8_t *restrict counts)          \
    {                                                                                        \
        for (Py_ssize_t i = 0; i < n; i++)                                                   \
            counts[i] = (uint8_t)__builtin_popcountll(values[i] ^ query);                    \
    }                                                                                        \
    attributes static Py_ssize_t count_within_##suffix(const uint64_t *restrict words,       \
                                                       Py_ssize_t nwords, int radius)        \
    {                                                                                        \
        uint64_t add = ONES * (uint64_t)(127 - radius);                                      \
        Py_ssize_t c = 0;                                                                    \
        for (Py_ssize_t w = 0; w < nwords; w++)                                              \
            c += __builtin_popcountll(~(words[w] + add) & HIGH);                             \
        return c;                                                                            \
    }

#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__)
#define X86_DISPATCH 1
HOT_LOOPS(avx512, __attribute__((target("avx512f,avx512bw,avx512vl,avx512vpopcntdq"))))
HOT_LOOPS(popcnt, __attribute__((target("popcnt"))))
#endif
HOT_LOOPS(portable, )

static void (*count_distances)(const uint64_t *, Py_ssize_t, uint64_t,
                               uint8_t *) = count_portable;
static Py_ssize_t (*count_within)(const uint64_t *, Py_ssize_t, int) = count_within_portable;
static const char *popcount_name = "portable";

/* The k-th smallest distance: a binary search of counting passes over the words. */
static int
kth_distance(const uint64_t *words, Py_ssize_t nwords, Py_ssize_t k)
{
    int lo = 0, hi = MAX_DISTANCE;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (count_within(words, nwords, mid) >= k)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

/* The words (eight padded distances each) that hold a distance <= radius, into hit_words;
 * returns how many. */
static Py_ssize_t
words_within(const uint64_t *words, Py_ssize_t nwords, int radius, int64_t *hit_words)
{
    uint64_t add = ONES * (uint64_t)(127 - radius);
    Py_ssize_t h = 0;
    for (Py_ssize_t w = 0; w < nwords; w++) {
        hit_words[h] = w; /* branch-free: always written, kept when the word holds a match */
        h += ((words[w] + add) & HIGH) != HIGH;
    }
    return h;
}

/* The distances into counts (padded to whole words) and the words within radius into
 * hit_words, in one pass where the CPU allows it; returns how many words. */
static Py_ssize_t
count_and_find(const uint64_t *values, Py_ssize_t n, uint64_t query, int radius,
               uint8_t *counts, int64_t *hit_words)
{
    Py_ssize_t nwords = (n + 7) / 8;
    count_distances(values, n, query, counts);
    for (Py_ssize_t i = n; i < 8 * nwords; i++)
        counts[i] = PAD;
    return words_within((const uint64_t *)counts, nwords, radius, hit_words);
}

#ifdef X86_DISPATCH
#include <immintrin.h>
/* The same in one pass with AVX-512: eight hashes' distances at once, narrowed to eight
 * bytes (one word of counts), and the word's index kept (compressed store) only when one of
 * them is within radius. */
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vpopcntdq"))) static Py_ssize_t
count_and_find_avx512(const uint64_t *values, Py_ssize_t n, uint64_t query, int radius,
                      uint8_t *counts, int64_t *hit_words)
{
    const __m512i q = _mm512_set1_epi64((long long)query);
    const __m512i r = _mm512_set1_epi64(radius);
    Py_ssize_t full = n / 8, h = 0;
    for (Py_ssize_t w = 0; w < full; w++) {
        __m512i d = _mm512_popcnt_epi64(_mm512_xor_si512(_mm512_loadu_si512(values + 8 * w), q));
        _mm_storel_epi64((__m128i *)(counts + 8 * w), _mm512_cvtepi64_epi8(d));
        hit_words[h] = w;
        h += _mm512_cmple_epu64_mask(d, r) != 0;
    }
    if (full * 8 < n) { /* the last, partial word */
        for (Py_ssize_t i = full * 8; i < n; i++)
            counts[i] = (uint8_t)__builtin_popcountll(values[i] ^ query);
        for (Py_ssize_t i = n; i < 8 * (full + 1); i++)
            counts[i] = PAD;
        uint64_t word;
        memcpy(&word, counts + 8 * full, sizeof word);
        hit_words[h] = full;
        h += ((word + ONES * (uint64_t)(127 - radius)) & HIGH) != HIGH;
    }
    return h;
}
#endif

static Py_ssize_t (*find_within)(const uint64_t *, Py_ssize_t, uint64_t, int, uint8_t *,
                                 int64_t *) = count_and_find;

/* Into pos and dist: the first ``limit`` of the distances within radius held by the h words
 * listed in hit_words, in (distance, position) order; returns how many. A counting sort:
 * distances are 0..64. */
static Py_ssize_t
order_hits(const uint8_t *counts, Py_ssize_t n, const int64_t *hit_words, Py_ssize_t h,
           int radius, Py_ssize_t limit, int64_t *pos, uint8_t *dist)
{
    Py_ssize_t starts[MAX_DISTANCE + 2];
    memset(starts, 0, sizeof starts);
    for (Py_ssize_t j = 0; j < h; j++) {
        Py_ssize_t end = 8 * hit_words[j] + 8 < n ? 8 * hit_words[j] + 8 : n;
        for (Py_ssize_t i = 8 * hit_words[j]; i < end; i++)
            if (counts[i] <= radius)
                starts[counts[i] + 1]++;
    }
    for (int d = 0; d <= MAX_DISTANCE; d++)
        starts[d + 1] += starts[d];
    for (Py_ssize_t j = 0; j < h; j++) {
        Py_ssize_t end = 8 * hit_words[j] + 8 < n ? 8 * hit_words[j] + 8 : n;
        for (Py_ssize_t i = 8 * hit_words[j]; i < end; i++) {
            int d = counts[i];
            if (d <= radius) {
                Py_ssize_t slot = starts[d]++;
                if (slot < limit) {
                    pos[slot] = i;
                    dist[slot] = (uint8_t)d;
                }
            }
        }
    }
    return starts[MAX_DISTANCE + 1] < limit ? starts[MAX_DISTANCE + 1] : limit;
}

/* Every value within radius of query (k == 0) or the k nearest (radius ignored). */
static Py_ssize_t
scan(const uint64_t *values, Py_ssize_t n, uint64_t query, int radius, Py_ssize_t k,
     uint8_t *counts, int64_t *hit_words, int64_t *pos, uint8_t *dist)
{
    if (k == 0) {
        Py_ssize_t h = find_within(values, n, query, radius, counts, hit_words);
        return order_hits(counts, n, hit_words, h, radius, n, pos, dist);
    }
    Py_ssize_t nwords = (n + 7) / 8;
    count_distances(values, n, query, counts);
    for (Py_ssize_t i = n; i < 8 * nwords; i++)
        counts[i] = PAD;
    const uint64_t *words = (const uint64_t *)counts;
    if (k > n)
        k = n;
    int limit = kth_distance(words, nwords, k);
    Py_ssize_t h = words_within(words, nwords, limit, hit_words);
    return order_hits(counts, n, hit_words, h, limit, k, pos, dist);
}

/* The loops for ``name`` when this CPU can run them; 0 when it cannot. */
static int
use_loops(const char *name)
{
    if (strcmp(name, "portable") == 0) {
        count_distances = count_portable;
        count_within = count_within_portable;
        find_within = count_and_find;
        popcount_name = "portable";
        return 1;
    }
#ifdef X86_DISPATCH
    __builtin_cpu_init();
    if (strcmp(name, "avx512-vpopcntdq") == 0 && __builtin_cpu_supports("avx512vpopcntdq") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl")) {
        count_distances = count_avx512;
        count_within = count_within_avx512;
        find_within = count_and_find_avx512;
        popcount_name = "avx512-vpopcntdq";
        return 1;
    }
    if (strcmp(name, "popcnt") == 0 && __builtin_cpu_supports("popcnt")) {
        count_distances = count_popcnt;
        count_within = count_within_popcnt;
        find_within = count_and_find;
        popcount_name = "popcnt";
        return 1;
    }
#endif
    return 0;
}

static void
choose_loops(void)
{
    if (!use_loops("avx512-vpopcntdq"))
        use_loops("popcnt");
}

/* use(name) -> bool: switch this process to other loops (the tests check each against
 * numpy); popcount() says which are in use. */
static PyObject *
use_entry(PyObject *module, PyObject *name)
{
    const char *text = PyUnicode_AsUTF8(name);
    if (text == NULL)
        return NULL;
    return PyBool_FromLong(use_loops(text));
}

static PyObject *
popcount_entry(PyObject *module, PyObject *unused)
{
    return PyUnicode_FromString(popcount_name);
}

typedef struct {
    Py_buffer view;
    int held;
} Buffer;

static int
get_buffer(PyObject *obj, Buffer *buf, Py_ssize_t itemsize, Py_ssize_t min_items, int writable,
           const char *name)
{
    if (PyObject_GetBuffer(obj, &buf->view, PyBUF_C_CONTIGUOUS | (writable ? PyBUF_WRITABLE : 0)) <
        0)
        return -1;
    buf->held = 1;
    if (buf->view.len < itemsize * min_items) {
        PyErr_Format(PyExc_ValueError, "%s holds %zd bytes, needs at least %zd", name,
                     buf->view.len, itemsize * min_items);
        return -1;
    }
    return 0;
}

static void
release(Buffer *bufs, int count)
{
    for (int i = 0; i < count; i++)
        if (bufs[i].held)
            PyBuffer_Release(&bufs[i].view);
}

/* scan(values, query, radius, k, counts, hit_words, pos, dist) -> m */
static PyObject *
scan_entry(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Buffer bufs[5];
    memset(bufs, 0, sizeof bufs);
    if (nargs != 8) {
        PyErr_Format(PyExc_TypeError, "scan() takes 8 arguments (%zd given)", nargs);
        return NULL;
    }
    uint64_t query = PyLong_AsUnsignedLongLongMask(args[1]);
    long radius = PyLong_AsLong(args[2]);
    long k = PyLong_AsLong(args[3]);
    if (PyErr_Occurred())
        return NULL;
    PyObject *result = NULL;
    if (get_buffer(args[0], &bufs[0], 8, 0, 0, "values") < 0)
        goto done;
    Py_ssize_t n = bufs[0].view.len / 8, padded = 8 * ((n + 7) / 8);
    if (get_buffer(args[4], &bufs[1], 1, padded, 1, "counts") < 0 ||
        get_buffer(args[5], &bufs[2], 8, (n + 7) / 8, 1, "hit_words") < 0 ||
        get_buffer(args[6], &bufs[3], 8, n, 1, "pos") < 0 ||
        get_buffer(args[7], &bufs[4], 1, n, 1, "dist") < 0)
        goto done;
    Py_ssize_t m = 0;
    if (n > 0 && radius >= 0 && k >= 0) {
        int r = radius > MAX_DISTANCE ? MAX_DISTANCE : (int)radius;
        const uint64_t *values = bufs[0].view.buf;
        uint8_t *counts = bufs[1].view.buf, *dist = bufs[4].view.buf;
        int64_t *hit_words = bufs[2].view.buf, *pos = bufs[3].view.buf;
        if (n >= RELEASE_GIL_FROM) {
            Py_BEGIN_ALLOW_THREADS
            m = scan(values, n, query, r, k, counts, hit_words, pos, dist);
            Py_END_ALLOW_THREADS
        }
        else {
            m = scan(values, n, query, r, k, counts, hit_words, pos, dist);
        }
    }
    result = PyLong_FromSsize_t(m);
done:
    release(bufs, 5);
    return result;
}

static PyMethodDef methods[] = {
    {"scan", (PyCFunction)(void (*)(void))scan_entry, METH_FASTCALL,
     "scan(values, query, radius, k, counts, hit_words, pos, dist) -> m: the positions "
     "within radius of query (k == 0) or the k nearest, nearest first (ties by position), "
     "in pos[:m] and dist[:m]. values: uint64[n]; counts: uint8[n rounded up to 8]; "
     "hit_words: int64[n / 8 rounded up]; pos: int64[n]; dist: uint8[n]."},
    {"use", use_entry, METH_O,
     "use(name) -> bool: compute with these loops (avx512-vpopcntdq, popcnt, portable) if "
     "this CPU can; False (and nothing changed) if it cannot."},
    {"popcount", popcount_entry, METH_NOARGS, "popcount() -> the loops in use."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    "_popscan",
    "The index reader's exact hamming scan (XOR and popcount in one pass), in C.",
    -1,
    methods,
};

PyMODINIT_FUNC
PyInit__popscan(void)
{
    choose_loops();
    return PyModule_Create(&module);
}
