/* The Ollama manifest reader: store_manifest_model_digest() over any
 * bytes. What it returns on success must be "sha256:" and 64 hex digits,
 * since it becomes part of a path under the store's blobs folder. */
#include "fuzz.h"

#include "common/err.h"
#include "infer/store.h"

int fuzz_manifest(const uint8_t *data, size_t size)
{
    char digest[80] = "", err[ERR_LEN] = "";
    int rc = store_manifest_model_digest(data, size, digest, sizeof digest, err);
    if (!fuzz_rc_known(rc))
        fuzz_fail("unknown result %d", rc);
    if (rc == 0) {
        if (strlen(digest) != 71 || memcmp(digest, "sha256:", 7) != 0 ||
            strspn(digest + 7, "0123456789abcdef") != 64)
            fuzz_fail("digest \"%s\" is not sha256: and 64 hex digits", digest);
    } else if (!err[0]) {
        fuzz_fail("error %d without a message", rc);
    }
    /* A buffer too small for the digest is an error, not a cut digest. */
    char small[16];
    int rc2 = store_manifest_model_digest(data, size, small, sizeof small, err);
    if (rc == 0 && rc2 == 0)
        fuzz_fail("a 71-byte digest fitted in 16 bytes");
    return rc;
}
