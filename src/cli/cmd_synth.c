/*
 * joulebench synth — writes a synthetic GGUF model: real architecture,
 * shapes and tensor types, seeded random weights, a small trained
 * vocabulary. Its text is meaningless; its compute and energy are real.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "cli/cli.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/sig.h"
#include "common/str.h"
#include "common/timeutil.h"
#include "infer/quant.h"
#include "infer/synth.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: joulebench synth [-o FILE] [--preset tiny|small|0.5b] [--arch qwen2|llama]\n"
            "                        [--type TYPE] [--layers N] [--dim N] [--heads N]\n"
            "                        [--kv-heads N] [--ffn N] [--vocab N] [--ctx N] [--seed N]\n\n"
            "Writes a valid GGUF model with seeded random weights, the tensor names and\n"
            "metadata of a real qwen2 or llama model and a small byte-level BPE vocabulary,\n"
            "for tests and benchmarks. Its text is meaningless; its compute and energy are\n"
            "those of a real model of its shape.\n\n"
            "  -o FILE        where to write (default synthetic-PRESET-ARCH-TYPE.gguf)\n"
            "  --preset NAME  tiny (~1.4 M parameters), small (~27 M, the default) or\n"
            "                 0.5b (the shape of Qwen2.5-0.5B, 494 M)\n"
            "  --arch NAME    qwen2 (tied embeddings, q/k/v biases; default) or llama\n"
            "  --type TYPE    matrix type: F32 F16 BF16 Q8_0 (default) Q4_0 Q5_0 Q4_K Q6_K,\n"
            "                 or Q4_K_M: llama.cpp's mix of Q4_K and Q6_K (Q6_K for the\n"
            "                 output and for attn_v and ffn_down in some layers);\n"
            "                 K-quant rows not a multiple of 256 fall back to Q5_0 / Q8_0\n"
            "  --layers --dim --heads --kv-heads --ffn --vocab --ctx N   change the shape\n"
            "  --seed N       random seed (default 42): the same seed writes the same file\n");
}

static int parse_type(const char *s, enum ggml_type *out)
{
    static const enum ggml_type types[] = {GGML_TYPE_F32,  GGML_TYPE_F16,  GGML_TYPE_BF16,
                                           GGML_TYPE_Q8_0, GGML_TYPE_Q4_0, GGML_TYPE_Q5_0,
                                           GGML_TYPE_Q4_K, GGML_TYPE_Q6_K};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        if (strcasecmp(s, ggml_type_name(types[i])) == 0) {
            *out = types[i];
            return 0;
        }
    }
    return -1;
}

/* Checks -o before a byte is written: a file name, in a folder that
 * exists, not a folder or a link, device or pipe (which the finished file
 * would replace), and room for the model on that disk. */
static int check_output(const char *cmd, const char *path, const struct synth_options *o)
{
    if (!path[0])
        return cli_usage_error(cmd, "-o needs a file name");
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode))
            return cli_usage_error(cmd, "-o %s is a folder: give a file name in it", path);
        if (!S_ISREG(st.st_mode))
            return cli_usage_error(cmd,
                                   "-o %s exists and is not a regular file (a link, device or "
                                   "pipe), which the model would replace: choose another name",
                                   path);
    }
    char dir[4096];
    str_lcpy(dir, path, sizeof dir);
    char *slash = strrchr(dir, '/');
    if (!slash)
        str_lcpy(dir, ".", sizeof dir);
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    if (!fs_is_dir(dir))
        return cli_usage_error(cmd, "-o %s: the folder %s does not exist", path, dir);
    size_t be, bb;
    struct statvfs vfs;
    if (quant_block_size(o->type, &be, &bb) == 0 && statvfs(dir, &vfs) == 0) {
        double need = (double)synth_param_count(o) * (double)bb / (double)be;
        double room = (double)vfs.f_bavail * (double)vfs.f_frsize;
        if (need > room)
            return cli_usage_error(cmd,
                                   "the model needs about %.1f GB and %s has %.1f GB free: "
                                   "choose a smaller shape or another -o",
                                   need / 1e9, dir, room / 1e9);
    }
    return 0;
}

int cmd_synth(int argc, char **argv)
{
    const char *cmd = "synth";
    struct synth_options o;
    synth_options_default(&o);
    const char *preset = "small", *out = NULL, *arch = NULL;
    enum ggml_type type = o.type;
    int type_set = 0, q4_k_m = 0;
    /* shape options apply after the preset, whatever their order */
    int layers = 0, dim = 0, heads = 0, kv = 0, ffn = 0, vocab = 0, ctx = 0;
    uint64_t seed = o.seed;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        int *shape = NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(a, "--layers") == 0)
            shape = &layers;
        else if (strcmp(a, "--dim") == 0)
            shape = &dim;
        else if (strcmp(a, "--heads") == 0)
            shape = &heads;
        else if (strcmp(a, "--kv-heads") == 0)
            shape = &kv;
        else if (strcmp(a, "--ffn") == 0)
            shape = &ffn;
        else if (strcmp(a, "--vocab") == 0)
            shape = &vocab;
        else if (strcmp(a, "--ctx") == 0)
            shape = &ctx;
        int takes_value = shape || strcmp(a, "-o") == 0 || strcmp(a, "--preset") == 0 ||
                          strcmp(a, "--arch") == 0 || strcmp(a, "--type") == 0 ||
                          strcmp(a, "--seed") == 0;
        if (!takes_value)
            return cli_usage_error(cmd, "unknown argument '%s'", a);
        if (!val)
            return cli_usage_error(cmd, "%s needs a value", a);
        i++;
        if (shape) {
            if (cli_int(cmd, a, val, 1, 1 << 20, shape)) /* ranges: synth_check */
                return 2;
        } else if (strcmp(a, "-o") == 0) {
            out = val;
        } else if (strcmp(a, "--preset") == 0) {
            struct synth_options probe;
            if (synth_preset(val, &probe))
                return cli_usage_error(cmd, "--preset is tiny, small or 0.5b, not '%s'", val);
            preset = val;
        } else if (strcmp(a, "--arch") == 0) {
            if (strcmp(val, "qwen2") != 0 && strcmp(val, "llama") != 0)
                return cli_usage_error(cmd, "--arch is qwen2 or llama, not '%s'", val);
            arch = val;
        } else if (strcmp(a, "--type") == 0) {
            q4_k_m = strcasecmp(val, "Q4_K_M") == 0;
            if (q4_k_m)
                type = GGML_TYPE_Q4_K;
            else if (parse_type(val, &type))
                return cli_usage_error(cmd,
                                       "--type is F32, F16, BF16, Q8_0, Q4_0, Q5_0, Q4_K, "
                                       "Q4_K_M or Q6_K, not '%s'",
                                       val);
            type_set = 1;
        } else if (strcmp(a, "--seed") == 0) {
            if (str_to_u64(val, (size_t)-1, &seed))
                return cli_usage_error(cmd, "--seed takes a whole number, not '%s'", val);
        }
    }
    synth_preset(preset, &o);
    if (arch)
        o.arch = arch;
    if (type_set) {
        o.type = type;
        o.q4_k_m = q4_k_m;
    }
    o.seed = seed;
    if (layers)
        o.n_layers = layers;
    if (dim)
        o.dim = dim;
    if (heads)
        o.n_heads = heads;
    if (kv)
        o.n_kv_heads = kv;
    if (ffn)
        o.ffn_dim = ffn;
    if (vocab)
        o.vocab_size = vocab;
    if (ctx)
        o.ctx_len = ctx;
    char def[128];
    if (!out) {
        char tname[16];
        str_lcpy(tname, synth_type_name(&o), sizeof tname);
        for (char *p = tname; *p; p++)
            *p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
        snprintf(def, sizeof def, "synthetic-%s-%s-%s.gguf", preset, o.arch, tname);
        out = def;
    }
    char err[ERR_LEN];
    int rc = synth_check(&o, err);
    if (rc)
        return cli_usage_error(cmd, "%s", err);
    if ((rc = check_output(cmd, out, &o)))
        return rc;
    sig_install(); /* Ctrl-C, and a file-size limit, remove the unfinished file */
    double t0 = jb_clock_s();
    rc = synth_write(out, &o, err);
    if (rc) {
        log_error("%s", err);
        return rc == JB_ERR_INTERRUPTED ? 130 : err_exit_code(rc);
    }
    double took = jb_clock_s() - t0;
    double params = (double)synth_param_count(&o);
    printf("wrote %s: synthetic model (random weights), %s, %d layers, dim %d, %d heads "
           "(%d kv), ffn %d, vocab %d, %s, %.1f M parameters, in %.1f s\n",
           out, o.arch, o.n_layers, o.dim, o.n_heads, o.n_kv_heads, o.ffn_dim, o.vocab_size,
           synth_type_name(&o), params / 1e6, took);
    return 0;
}
