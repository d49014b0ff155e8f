#include "bench/suite.h"

#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/embed.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/str.h"

extern const struct embedded_file suite_files[]; /* generated from the files in suites/ */

static const char *const builtin_names[] = {"default", "coding", "math", "systems", NULL};

const char *const *suite_builtin_names(void)
{
    return builtin_names;
}

void suite_free(struct suite *s)
{
    if (!s)
        return;
    if (s->root)
        json_decref(s->root);
    free(s->prompts);
    free(s);
}

static int bad_prompt(char *err, const char *source, size_t i, const char *id, const char *what)
{
    if (id)
        return err_setf(err, JB_ERR_FORMAT, "%s: prompts[%zu] (id \"%s\"): %s", source, i, id,
                        what);
    return err_setf(err, JB_ERR_FORMAT, "%s: prompts[%zu]: %s", source, i, what);
}

static const char *opt_string(json_t *obj, const char *key, int *bad)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return NULL;
    if (!json_is_string(v)) {
        *bad = 1;
        return NULL;
    }
    return json_string_value(v);
}

/* Checks one prompt object and fills p; ids are checked for uniqueness by
 * the caller. */
static int parse_prompt(json_t *o, size_t i, const char *source, const char *def_system,
                        int def_max_tokens, struct suite_prompt *p, char *err)
{
    if (!json_is_object(o))
        return bad_prompt(err, source, i, NULL, "must be an object");
    int bad = 0;
    const char *id = opt_string(o, "id", &bad);
    if (bad || (id && !*id))
        return bad_prompt(err, source, i, NULL, "\"id\" must be a non-empty string");
    const char *text = opt_string(o, "prompt", &bad);
    if (bad || !text || !*text)
        return bad_prompt(err, source, i, id, "\"prompt\" must be a non-empty string");
    const char *system = opt_string(o, "system", &bad);
    if (bad)
        return bad_prompt(err, source, i, id, "\"system\" must be a string or null");
    json_t *tags = json_object_get(o, "tags");
    if (tags && !json_is_null(tags)) {
        if (!json_is_array(tags))
            return bad_prompt(err, source, i, id, "\"tags\" must be an array of strings");
        size_t k;
        json_t *t;
        json_array_foreach(tags, k, t) if (!json_is_string(t)) return bad_prompt(
            err, source, i, id, "\"tags\" must be an array of strings");
    } else {
        tags = json_array();
        if (!tags || json_object_set_new(o, "tags", tags))
            return err_setf(err, JB_ERR_NOMEM, "out of memory");
    }
    int max_tokens = def_max_tokens;
    json_t *mt = json_object_get(o, "max_tokens");
    if (mt && !json_is_null(mt)) {
        if (!json_is_integer(mt) || json_integer_value(mt) < 1 || json_integer_value(mt) > 1000000)
            return bad_prompt(err, source, i, id,
                              "\"max_tokens\" must be a whole number from 1 to 1000000");
        max_tokens = (int)json_integer_value(mt);
    }
    json_t *grader = json_object_get(o, "grader");
    if (grader && json_is_null(grader))
        grader = NULL;
    if (grader) {
        json_t *type = json_object_get(grader, "type");
        if (!json_is_object(grader) || !json_is_string(type))
            return bad_prompt(err, source, i, id,
                              "\"grader\" must be an object with a \"type\" string");
    }
    p->id = id;
    p->prompt = text;
    p->system = system ? system : def_system;
    p->tags = tags;
    p->max_tokens = max_tokens;
    p->grader = grader;
    return 0;
}

int suite_parse(const char *buf, size_t len, const char *source, struct suite **out, char *err)
{
    *out = NULL;
    if (len > SUITE_MAX_BYTES)
        return err_setf(err, JB_ERR_FORMAT, "%s: larger than %u bytes", source, SUITE_MAX_BYTES);
    json_error_t je;
    json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return err_setf(err, JB_ERR_FORMAT, "%s:%d:%d: %s", source, je.line, je.column, je.text);
    struct suite *s = calloc(1, sizeof *s);
    if (!s) {
        json_decref(root);
        return err_setf(err, JB_ERR_NOMEM, "out of memory");
    }
    s->root = root;
    int rc = 0;
    if (!json_is_object(root)) {
        rc = err_setf(err, JB_ERR_FORMAT, "%s: a suite is a JSON object with a \"prompts\" array",
                      source);
        goto out;
    }
    /* Keep the source name alive with the JSON that owns every string. */
    json_object_set_new(root, "__source", json_string(source));
    s->source = json_string_value(json_object_get(root, "__source"));
    int bad = 0;
    s->name = opt_string(root, "name", &bad);
    s->description = opt_string(root, "description", &bad);
    if (bad) {
        rc = err_setf(err, JB_ERR_FORMAT, "%s: \"name\" and \"description\" must be strings",
                      source);
        goto out;
    }
    const char *def_system = NULL;
    int def_max_tokens = 0;
    json_t *defs = json_object_get(root, "defaults");
    if (defs && !json_is_null(defs)) {
        if (!json_is_object(defs)) {
            rc = err_setf(err, JB_ERR_FORMAT, "%s: \"defaults\" must be an object", source);
            goto out;
        }
        def_system = opt_string(defs, "system", &bad);
        json_t *mt = json_object_get(defs, "max_tokens");
        if (mt && (!json_is_integer(mt) || json_integer_value(mt) < 1 ||
                   json_integer_value(mt) > 1000000))
            bad = 1;
        else if (mt)
            def_max_tokens = (int)json_integer_value(mt);
        if (bad) {
            rc = err_setf(err, JB_ERR_FORMAT,
                          "%s: defaults: \"system\" must be a string and \"max_tokens\" a "
                          "whole number from 1 to 1000000",
                          source);
            goto out;
        }
    }
    json_t *prompts = json_object_get(root, "prompts");
    if (!json_is_array(prompts) || json_array_size(prompts) == 0) {
        rc = err_setf(err, JB_ERR_FORMAT, "%s: \"prompts\" must be a non-empty array", source);
        goto out;
    }
    size_t n = json_array_size(prompts);
    if (n > SUITE_MAX_PROMPTS) {
        rc = err_setf(err, JB_ERR_FORMAT, "%s: more than %d prompts", source, SUITE_MAX_PROMPTS);
        goto out;
    }
    s->prompts = calloc(n, sizeof *s->prompts);
    if (!s->prompts) {
        rc = err_setf(err, JB_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_array_get(prompts, i);
        rc = parse_prompt(o, i, source, def_system, def_max_tokens, &s->prompts[i], err);
        if (rc)
            goto out;
        if (!s->prompts[i].id) {
            char id[32];
            snprintf(id, sizeof id, "p%zu", i + 1);
            json_object_set_new(o, "id", json_string(id));
            s->prompts[i].id = json_string_value(json_object_get(o, "id"));
        }
        for (size_t k = 0; k < i; k++)
            if (strcmp(s->prompts[k].id, s->prompts[i].id) == 0) {
                rc = bad_prompt(err, source, i, s->prompts[i].id,
                                "the id is used twice (ids must be unique)");
                goto out;
            }
    }
    s->n_prompts = n;
out:
    if (rc) {
        suite_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

int suite_load(const char *name_or_path, struct suite **out, char *err)
{
    int is_path = strchr(name_or_path, '/') || str_has_suffix(name_or_path, ".json") ||
                  fs_exists(name_or_path);
    if (!is_path) {
        char fname[128];
        snprintf(fname, sizeof fname, "%s.json", name_or_path);
        const struct embedded_file *f = embed_find(suite_files, fname);
        if (!f) {
            struct buf names = {0};
            for (const char *const *n = builtin_names; *n; n++)
                buf_printf(&names, "%s%s", n == builtin_names ? "" : ", ", *n);
            int rc = err_setf(err, JB_ERR_USAGE,
                              "no suite file or built-in suite named '%s' (built-in: %s)",
                              name_or_path, buf_str(&names));
            buf_free(&names);
            return rc;
        }
        char source[160];
        snprintf(source, sizeof source, "built-in:%s", name_or_path);
        return suite_parse((const char *)f->data, f->size, source, out, err);
    }
    struct buf b = {0};
    int rc = fs_read_file(name_or_path, SUITE_MAX_BYTES, &b, err);
    if (rc == JB_ERR_NOTFOUND)
        rc = JB_ERR_USAGE;
    if (!rc)
        rc = suite_parse(buf_str(&b), b.len, name_or_path, out, err);
    buf_free(&b);
    return rc;
}

int suite_from_texts(const char *const *texts, size_t n, const char *system, struct suite **out,
                     char *err)
{
    json_t *root = json_object();
    json_t *arr = json_array();
    if (!root || !arr) {
        json_decref(root);
        json_decref(arr);
        return err_setf(err, JB_ERR_NOMEM, "out of memory");
    }
    json_object_set_new(root, "name", json_string("prompts"));
    if (system)
        json_object_set_new(root, "defaults", json_pack("{s:s}", "system", system));
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, json_pack("{s:s}", "prompt", texts[i]));
    json_object_set_new(root, "prompts", arr);
    char *text = json_dumps(root, 0);
    json_decref(root);
    if (!text)
        return err_setf(err, JB_ERR_NOMEM, "out of memory");
    int rc = suite_parse(text, strlen(text), "--prompt", out, err);
    free(text);
    return rc;
}
