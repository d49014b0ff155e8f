/*
 * store.c — Ollama model names to the GGUF blobs in Ollama's own store,
 * read-only: manifests/<host>/<namespace>/<model>/<tag> names the weights
 * layer by digest, blobs/sha256-<hex> holds it.
 */
#include "infer/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "common/err.h"
#include "common/fs.h"
#include "common/str.h"
#include "infer/gguf.h"

#define STORE_DEFAULT_HOST "registry.ollama.ai"
#define STORE_DEFAULT_NAMESPACE "library"
#define STORE_DEFAULT_TAG "latest"
#define STORE_MODEL_MEDIA_TYPE "application/vnd.ollama.image.model"
#define STORE_MANIFEST_MAX (1u << 20)

int store_manifest_model_digest(const void *buf, size_t len, char *digest, size_t size, char *err)
{
    json_error_t je;
    json_t *root = json_loadb(buf, len, 0, &je);
    if (!root)
        return err_setf(err, JB_ERR_FORMAT, "line %d, column %d: %s", je.line, je.column, je.text);
    int rc = 0;
    json_t *layers = json_object_get(root, "layers");
    if (!json_is_object(root) || !json_is_array(layers)) {
        rc = err_setf(err, JB_ERR_FORMAT,
                      "not an image manifest: no \"layers\" array at the top level");
        goto out;
    }
    const char *hex = NULL;
    size_t i;
    json_t *layer;
    json_array_foreach(layers, i, layer)
    {
        const char *mt = json_string_value(json_object_get(layer, "mediaType"));
        if (!mt || strcmp(mt, STORE_MODEL_MEDIA_TYPE) != 0)
            continue;
        const char *d = json_string_value(json_object_get(layer, "digest"));
        if (!d) {
            rc = err_setf(err, JB_ERR_FORMAT, "layer %zu (the model) has no \"digest\" string", i);
            goto out;
        }
        if (!str_has_prefix(d, "sha256:") || strlen(d) != 7 + 64 ||
            strspn(d + 7, "0123456789abcdef") != 64) {
            rc = err_setf(err, JB_ERR_FORMAT,
                          "layer %zu: digest \"%.80s\" is not \"sha256:\" and 64 hex digits", i, d);
            goto out;
        }
        hex = d + 7;
        break;
    }
    if (!hex) {
        rc = err_setf(err, JB_ERR_FORMAT, "no layer has mediaType \"%s\"; is this a model?",
                      STORE_MODEL_MEDIA_TYPE);
        goto out;
    }
    if (snprintf(digest, size, "sha256:%s", hex) >= (int)size)
        rc = err_setf(err, JB_ERR_NOMEM, "digest buffer too small");
out:
    json_decref(root);
    return rc;
}

int store_is_path(const char *s)
{
    if (!s || !*s)
        return 0;
    if (s[0] == '/' || str_has_prefix(s, "./") || str_has_prefix(s, "../") ||
        str_has_prefix(s, "~/") || str_has_suffix(s, ".gguf") || str_has_suffix(s, ".GGUF"))
        return 1;
    struct stat st;
    return stat(s, &st) == 0 && S_ISREG(st.st_mode);
}

/* One part of a name: letters, digits, '.', '_', '-' (and ':' for a host
 * with a port), not empty, not "." or "..". */
static int part_ok(const char *p, size_t n, int host)
{
    if (n == 0 || n > 255 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '_' || c == '-' || (host && c == ':');
        if (!ok)
            return 0;
    }
    return 1;
}

struct model_name {
    char host[256], ns[256], model[256], tag[256];
};

/* "model", "model:tag", "ns/model:tag", "host/ns/model:tag" (the tag
 * follows the last ':' after the last '/'). */
static int parse_name(const char *name, struct model_name *mn, char *err)
{
    const char *slash = strrchr(name, '/');
    const char *colon = strrchr(slash ? slash : name, ':');
    size_t base_len = colon ? (size_t)(colon - name) : strlen(name);
    const char *tag = colon ? colon + 1 : STORE_DEFAULT_TAG;
    const char *parts[3];
    size_t lens[3];
    int n = 0;
    const char *p = name, *end = name + base_len;
    while (p <= end) {
        const char *q = memchr(p, '/', (size_t)(end - p));
        if (!q)
            q = end;
        if (n == 3)
            return err_setf(err, JB_ERR_USAGE,
                            "'%s' is not a model name: use model[:tag], namespace/model[:tag] "
                            "or host/namespace/model[:tag]",
                            name);
        parts[n] = p;
        lens[n] = (size_t)(q - p);
        n++;
        p = q + 1;
    }
    const char *host = STORE_DEFAULT_HOST, *ns = STORE_DEFAULT_NAMESPACE;
    size_t host_len = strlen(host), ns_len = strlen(ns);
    if (n == 3) {
        host = parts[0], host_len = lens[0];
        ns = parts[1], ns_len = lens[1];
    } else if (n == 2) {
        ns = parts[0], ns_len = lens[0];
    }
    const char *model = parts[n - 1];
    size_t model_len = lens[n - 1];
    if (!part_ok(host, host_len, 1) || !part_ok(ns, ns_len, 0) || !part_ok(model, model_len, 0) ||
        !part_ok(tag, strlen(tag), 0))
        return err_setf(err, JB_ERR_USAGE,
                        "'%s' is not a model name: each part must be letters, digits, '.', '_' "
                        "or '-' (for example qwen2.5-coder:7b)",
                        name);
    snprintf(mn->host, sizeof mn->host, "%.*s", (int)host_len, host);
    snprintf(mn->ns, sizeof mn->ns, "%.*s", (int)ns_len, ns);
    snprintf(mn->model, sizeof mn->model, "%.*s", (int)model_len, model);
    snprintf(mn->tag, sizeof mn->tag, "%s", tag);
    return 0;
}

int store_default_dir(char *dst, size_t size, char *err)
{
    const char *env = fs_env_or("OLLAMA_MODELS", NULL);
    if (env) {
        if (str_lcpy(dst, env, size) >= size)
            return err_setf(err, JB_ERR_USAGE, "OLLAMA_MODELS is too long");
        return 0;
    }
    const char *home = fs_env_or("HOME", NULL);
    if (!home)
        return err_setf(err, JB_ERR_NOTFOUND,
                        "cannot find Ollama's store: HOME is not set; set OLLAMA_MODELS");
    if (fs_path_join(dst, size, home, ".ollama/models"))
        return err_setf(err, JB_ERR_USAGE, "HOME is too long");
    return 0;
}

/* Reads the first bytes of path and checks the GGUF magic. */
static int check_magic(const char *path, const char *name, char *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT)
            return err_setf(err, JB_ERR_NOTFOUND,
                            "model '%s': its weights %s are missing from the store; run: "
                            "ollama pull %s",
                            name, path, name);
        return err_setf(err, fs_errno_code(e), "%s: %s", path, strerror(e));
    }
    unsigned char magic[4];
    ssize_t n = read(fd, magic, sizeof magic);
    close(fd);
    if (n != 4 || memcmp(magic, "GGUF", 4) != 0)
        return err_setf(err, JB_ERR_FORMAT, "%s: model '%s': the weights blob is not a GGUF file",
                        path, name);
    return 0;
}

/* dir/part, or the entry of dir whose name equals part but for case
 * (Ollama's names are case-insensitive, and the case on disk is the one
 * the model was pulled with). 0, or JB_ERR_NOTFOUND. */
static int join_ci(char *out, size_t size, const char *dir, const char *part)
{
    if (fs_path_join(out, size, dir, part))
        return JB_ERR_NOTFOUND;
    if (fs_exists(out))
        return 0;
    DIR *d = opendir(dir);
    if (!d)
        return JB_ERR_NOTFOUND;
    int rc = JB_ERR_NOTFOUND;
    for (struct dirent *de; rc && (de = readdir(d));)
        if (de->d_name[0] != '.' && strcasecmp(de->d_name, part) == 0 &&
            fs_path_join(out, size, dir, de->d_name) == 0)
            rc = 0;
    closedir(d);
    return rc;
}

/* The manifest of the parsed name under dir/manifests, matching each
 * part's case as join_ci does. */
static int find_manifest(const char *dir, const struct model_name *mn, char *out, size_t size)
{
    char a[FS_PATH_MAX], b[FS_PATH_MAX];
    if (fs_path_join(a, sizeof a, dir, "manifests"))
        return JB_ERR_NOTFOUND;
    const char *parts[4] = {mn->host, mn->ns, mn->model, mn->tag};
    for (int i = 0; i < 4; i++) {
        if (join_ci(b, sizeof b, a, parts[i]))
            return JB_ERR_NOTFOUND;
        memcpy(a, b, sizeof a);
    }
    if (fs_is_dir(a) || strlen(a) >= size)
        return JB_ERR_NOTFOUND;
    memcpy(out, a, strlen(a) + 1);
    return 0;
}

int store_resolve(const char *models_dir, const char *name, char *path, size_t path_size,
                  char *digest, size_t digest_size, char *err)
{
    struct model_name mn;
    int rc = parse_name(name, &mn, err);
    if (rc)
        return rc;
    char dir[FS_PATH_MAX];
    if (models_dir) {
        if (str_lcpy(dir, models_dir, sizeof dir) >= sizeof dir)
            return err_setf(err, JB_ERR_USAGE, "models folder path too long");
    } else if ((rc = store_default_dir(dir, sizeof dir, err))) {
        return rc;
    }
    char manifest[FS_PATH_MAX];
    if (snprintf(manifest, sizeof manifest, "%s/manifests/%s/%s/%s/%s", dir, mn.host, mn.ns,
                 mn.model, mn.tag) >= (int)sizeof manifest)
        return err_setf(err, JB_ERR_USAGE, "model path too long");
    if (!fs_is_dir(dir))
        return err_setf(err, JB_ERR_NOTFOUND,
                        "model '%s': there is no Ollama store at %s (set OLLAMA_MODELS to "
                        "another folder); run: ollama pull %s",
                        name, dir, name);
    if (!fs_exists(manifest) && find_manifest(dir, &mn, manifest, sizeof manifest))
        return err_setf(err, JB_ERR_NOTFOUND,
                        "model '%s' is not in the Ollama store at %s (no %s); run: ollama pull "
                        "%s",
                        name, dir, manifest, name);
    struct buf b;
    buf_init(&b, STORE_MANIFEST_MAX);
    rc = fs_read_file(manifest, STORE_MANIFEST_MAX, &b, err);
    char dg[80];
    if (!rc) {
        rc = store_manifest_model_digest(b.data ? b.data : "", b.len, dg, sizeof dg, err);
        if (rc)
            err_prefix(err, "%s", manifest);
    }
    buf_free(&b);
    if (rc)
        return rc;
    char blob[FS_PATH_MAX];
    if (snprintf(blob, sizeof blob, "%s/blobs/sha256-%s", dir, dg + 7) >= (int)sizeof blob)
        return err_setf(err, JB_ERR_USAGE, "blob path too long");
    if ((rc = check_magic(blob, name, err)))
        return rc;
    if (str_lcpy(path, blob, path_size) >= path_size)
        return err_setf(err, JB_ERR_USAGE, "blob path too long for the caller's buffer");
    if (digest && str_lcpy(digest, dg, digest_size) >= digest_size)
        return err_setf(err, JB_ERR_USAGE, "digest too long for the caller's buffer");
    return 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The entries of a folder that are not hidden; *out is a heap array of
 * heap names. A missing folder is empty. */
static int list_dir(const char *dir, char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    struct dirent *de;
    size_t cap = 0;
    int rc = 0;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            char **p = realloc(*out, cap * sizeof *p);
            if (!p) {
                rc = JB_ERR_NOMEM;
                break;
            }
            *out = p;
        }
        if (!((*out)[*n] = str_dup(de->d_name))) {
            rc = JB_ERR_NOMEM;
            break;
        }
        (*n)++;
    }
    closedir(d);
    return rc;
}

static void free_list(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

int store_list(const char *models_dir, char ***names, size_t *n, char *err)
{
    *names = NULL;
    *n = 0;
    char root[FS_PATH_MAX], manifests[FS_PATH_MAX];
    int rc = 0;
    if (models_dir)
        str_lcpy(root, models_dir, sizeof root);
    else if ((rc = store_default_dir(root, sizeof root, err)))
        return rc;
    if (fs_path_join(manifests, sizeof manifests, root, "manifests"))
        return err_setf(err, JB_ERR_USAGE, "%s: path too long", root);
    size_t cap = 0;
    char **hosts = NULL;
    size_t nh = 0;
    rc = list_dir(manifests, &hosts, &nh);
    /* manifests/<host>/<namespace>/<model>/<tag> */
    for (size_t h = 0; h < nh && !rc; h++) {
        char p1[FS_PATH_MAX];
        snprintf(p1, sizeof p1, "%s/%s", manifests, hosts[h]);
        char **nss = NULL;
        size_t nn = 0;
        rc = list_dir(p1, &nss, &nn);
        for (size_t a = 0; a < nn && !rc; a++) {
            char p2[FS_PATH_MAX];
            snprintf(p2, sizeof p2, "%s/%s", p1, nss[a]);
            char **models = NULL;
            size_t nm = 0;
            rc = list_dir(p2, &models, &nm);
            for (size_t m = 0; m < nm && !rc; m++) {
                char p3[FS_PATH_MAX];
                snprintf(p3, sizeof p3, "%s/%s", p2, models[m]);
                char **tags = NULL;
                size_t nt = 0;
                rc = list_dir(p3, &tags, &nt);
                for (size_t t = 0; t < nt && !rc; t++) {
                    char name[1024];
                    if (strcmp(hosts[h], STORE_DEFAULT_HOST) == 0 &&
                        strcmp(nss[a], STORE_DEFAULT_NAMESPACE) == 0)
                        snprintf(name, sizeof name, "%s:%s", models[m], tags[t]);
                    else if (strcmp(hosts[h], STORE_DEFAULT_HOST) == 0)
                        snprintf(name, sizeof name, "%s/%s:%s", nss[a], models[m], tags[t]);
                    else
                        snprintf(name, sizeof name, "%s/%s/%s:%s", hosts[h], nss[a], models[m],
                                 tags[t]);
                    if (*n == cap) {
                        cap = cap ? cap * 2 : 16;
                        char **p = realloc(*names, cap * sizeof *p);
                        if (!p) {
                            rc = JB_ERR_NOMEM;
                            break;
                        }
                        *names = p;
                    }
                    if (!((*names)[*n] = str_dup(name)))
                        rc = JB_ERR_NOMEM;
                    else
                        (*n)++;
                }
                free_list(tags, nt);
            }
            free_list(models, nm);
        }
        free_list(nss, nn);
    }
    free_list(hosts, nh);
    if (rc) {
        free_list(*names, *n);
        *names = NULL;
        *n = 0;
        return err_setf(err, rc, "out of memory listing %s", manifests);
    }
    if (*n)
        qsort(*names, *n, sizeof **names, cmp_names);
    return 0;
}
