// The checks of a parsed safetensors header that need all of it (st_header.c calls them last):
// the tensors tile the data buffer, and nabla's checksum keys are complete and consistent.
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "base/base_impl.h"
#include "io/safetensors_impl.h"

static int cmp_offsets(const void *a, const void *b) {
    const nb__st_entry *x = *(const nb__st_entry *const *)a;
    const nb__st_entry *y = *(const nb__st_entry *const *)b;
    return x->begin != y->begin ? (x->begin < y->begin ? -1 : 1)
                                : (x->end != y->end ? (x->end < y->end ? -1 : 1) : 0);
}

// The reference implementation's rule: sorted by offset, the tensors tile the data buffer
// exactly, with no overlap (two names sharing bytes) and no gap or trailing bytes.
nb_status nb__st_check_tiling(const char *path, nb__st_entry *es, int m, int64_t data_size) {
    const nb__st_entry **by_off = nb__malloc((size_t)(m > 0 ? m : 1) * sizeof *by_off);
    if (!by_off)
        return nb__set_last_error(NB_ERR_NOMEM, "%s: out of memory reading the header", path);
    for (int k = 0; k < m; k++)
        by_off[k] = &es[k];
    qsort(by_off, (size_t)m, sizeof *by_off, cmp_offsets);
    nb_status st = NB_OK;
    int64_t at = 0;
    for (int k = 0; k < m && st == NB_OK; k++) {
        const nb__st_entry *e = by_off[k];
        if (e->begin < at)
            st = nb__set_last_error(
                NB_ERR_FORMAT, "%s: '%s' (bytes [%" PRId64 ", %" PRId64 ")) overlaps '%s'", path,
                SHOWN(e->name), e->begin, e->end, SHOWN(by_off[k - 1]->name));
        else if (e->begin > at)
            st = nb__set_last_error(NB_ERR_FORMAT,
                                    "%s: %" PRId64 " unused bytes before '%s' in the data buffer "
                                    "(offsets must tile it)",
                                    path, e->begin - at, SHOWN(e->name));
        at = e->end;
    }
    if (st == NB_OK && at != data_size)
        st = nb__set_last_error(NB_ERR_FORMAT,
                                "%s: %" PRId64 " bytes after the last tensor (the data buffer is "
                                "%" PRId64 " bytes, the tensors use %" PRId64 ")",
                                path, data_size - at, data_size, at);
    nb__free(by_off);
    return st;
}

static bool is_crc_key(const char *key) {
    return strncmp(key, NB_ST_CRC_PREFIX, strlen(NB_ST_CRC_PREFIX)) == 0;
}

// nabla's checksum keys: none (a foreign file), or exactly one per tensor plus the metadata's.
nb_status nb__st_check_checksums(const char *path, nb__st_header *h) {
    size_t plen = strlen(NB_ST_CRC_PREFIX);
    const char *meta_crc = NULL;
    for (int i = 0; i < h->n_meta; i++)
        h->checked = h->checked || is_crc_key(h->meta[i].key);
    if (!h->checked)
        return NB_OK;
    for (int i = 0; i < h->n_meta; i++) {
        const char *k = h->meta[i].key, *v = h->meta[i].value;
        if (!is_crc_key(k))
            continue;
        bool hex = strlen(v) == 8;
        for (int d = 0; hex && d < 8; d++)
            hex = (v[d] >= '0' && v[d] <= '9') || (v[d] >= 'a' && v[d] <= 'f');
        if (!hex)
            return nb__set_last_error(NB_ERR_FORMAT, "%s: checksum '%s' is not 8 hex digits", path,
                                      SHOWN(k));
        if (strcmp(k, NB_ST_CRC_META) == 0) {
            meta_crc = v;
            continue;
        }
        const nb__st_entry *found = nb__st_find(h, k + plen);
        nb__st_entry *e = found ? &h->es[found - h->es] : NULL; // writable: it is ours
        if (!e)
            return nb__set_last_error(NB_ERR_FORMAT,
                                      "%s: checksum for '%s', which is not in the file: "
                                      "corrupt header",
                                      path, SHOWN(k + plen));
        e->crc = (uint32_t)strtoul(v, NULL, 16);
        e->has_crc = true;
    }
    for (int k = 0; k < h->m; k++)
        if (!h->es[k].has_crc)
            return nb__set_last_error(NB_ERR_FORMAT,
                                      "%s: '%s' has no checksum while others do: corrupt header",
                                      path, SHOWN(h->es[k].name));
    if (!meta_crc)
        return nb__set_last_error(NB_ERR_FORMAT,
                                  "%s: the metadata checksum is missing: corrupt header", path);
    const char **mk = nb__malloc((size_t)h->n_meta * sizeof *mk);
    const char **mv = nb__malloc((size_t)h->n_meta * sizeof *mv);
    uint32_t crc = 0;
    bool ok = mk && mv;
    for (int i = 0; ok && i < h->n_meta; i++)
        mk[i] = h->meta[i].key, mv[i] = h->meta[i].value;
    ok = ok && nb__crc32c_meta(mk, mv, h->n_meta, &crc);
    nb__free(mk);
    nb__free(mv);
    if (!ok)
        return nb__set_last_error(NB_ERR_NOMEM, "%s: out of memory", path);
    if (strtoul(meta_crc, NULL, 16) != crc)
        return nb__set_last_error(NB_ERR_FORMAT,
                                  "%s: metadata checksum mismatch: the file is corrupt", path);
    return NB_OK;
}
