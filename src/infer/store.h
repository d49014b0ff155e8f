/*
 * store.h — models straight from Ollama's store, so `-e builtin -m
 * qwen2.5-coder:7b` computes with the very file Ollama would.
 *
 * $OLLAMA_MODELS (default ~/.ollama/models) holds
 * manifests/<host>/<namespace>/<model>/<tag> (JSON; the layer whose
 * mediaType is "application/vnd.ollama.image.model" names the weights'
 * digest "sha256:<hex>") and blobs/sha256-<hex>. A bare name means host
 * registry.ollama.ai, namespace library, tag latest.
 */
#ifndef JB_INFER_STORE_H
#define JB_INFER_STORE_H

#include <stddef.h>

/* Pure: finds the model layer's digest ("sha256:<64 hex>") in a manifest. */
int store_manifest_model_digest(const void *buf, size_t len, char *digest, size_t size, char *err);
/* Resolves an Ollama model name to the blob path (checked: exists, GGUF
 * magic). models_dir NULL: $OLLAMA_MODELS or ~/.ollama/models. digest (may
 * be NULL) receives "sha256:<hex>". */
int store_resolve(const char *models_dir, const char *name, char *path, size_t path_size,
                  char *digest, size_t digest_size, char *err);
/* Lists the models in the store as the names store_resolve() takes
 * ("qwen2.5-coder:7b", "user/model:tag", "host/ns/model:tag"), sorted.
 * *names is a heap array of heap strings: free each, then the array.
 * A store that does not exist is an empty list, not an error. */
int store_list(const char *models_dir, char ***names, size_t *n, char *err);
/* The store's folder: $OLLAMA_MODELS, else ~/.ollama/models (into dst). */
int store_default_dir(char *dst, size_t size, char *err);
/* 1 if s looks like a path to a file rather than a model name. */
int store_is_path(const char *s);

#endif
