/* libtok1d's C API: opaque handles, plain structs, error codes. For bindings and C programs;
 * it wraps the C++ API (tok1d.h), with the same rules for threads: a model may be shared by
 * any number of threads, a session is used by one thread at a time.
 *
 * Every function that can fail returns a tok1d_status (TOK1D_OK = 0); the message of the last
 * failure on the calling thread is tok1d_last_error(). Buffers the library returns are freed
 * with tok1d_free. */
#ifndef TOK1D_TOK1D_C_H_
#define TOK1D_TOK1D_C_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum tok1d_status {
  TOK1D_OK = 0,
  TOK1D_INVALID_ARGUMENT = 1,
  TOK1D_NOT_FOUND = 2,
  TOK1D_IO_ERROR = 3,
  TOK1D_CORRUPT = 4,
  TOK1D_UNSUPPORTED = 5,
  TOK1D_TOO_LARGE = 6,
  TOK1D_TRUNCATED = 7,
  TOK1D_MODEL_MISMATCH = 8,
  TOK1D_INTERNAL = 9
} tok1d_status;

typedef struct tok1d_model tok1d_model;     /* a loaded model */
typedef struct tok1d_session tok1d_session; /* a model on a device */

/* "0.1.0" */
const char* tok1d_version(void);
/* The message of the last error on this thread ("" if none). Valid until the next call. */
const char* tok1d_last_error(void);
void tok1d_free(void* buffer);

/* path NULL or "": the default model. */
tok1d_status tok1d_model_load(const char* path, tok1d_model** model);
void tok1d_model_release(tok1d_model* model);
/* K, tokens per tile, and the tile side in pixels. */
uint32_t tok1d_model_max_tokens(const tok1d_model* model);
uint32_t tok1d_model_tile_size(const tok1d_model* model);

typedef struct tok1d_session_options {
  const char* device; /* "cpu" (NULL too), "auto", "cuda", "hip" */
  unsigned threads;   /* 0: all cores */
  int deblock;        /* 1: smooth tile seams (the default) */
} tok1d_session_options;
void tok1d_session_options_init(tok1d_session_options* options);

/* The session keeps its own reference to the model. */
tok1d_status tok1d_session_create(tok1d_model* model, const tok1d_session_options* options,
                                  tok1d_session** session);
void tok1d_session_release(tok1d_session* session);

typedef enum tok1d_allocation {
  TOK1D_ALLOCATION_DEFAULT = 0,
  TOK1D_ALLOCATION_UNIFORM = 1,
  TOK1D_ALLOCATION_ADAPTIVE = 2
} tok1d_allocation;

typedef struct tok1d_encode_options {
  /* The rate target: exactly one non-zero. */
  uint32_t tokens; /* tokens per tile */
  uint64_t bytes;  /* largest file size */
  double bpp;      /* largest size in bits per pixel */
  double psnr;     /* smallest file reaching this PSNR (dB) */
  tok1d_allocation allocation;
  uint32_t effort; /* 0 (default): the encoder's tokens; 1-9: searched through the decoder */
} tok1d_encode_options;
void tok1d_encode_options_init(tok1d_encode_options* options);

/* Interleaved 8-bit sRGB, width*height*3 bytes, rows top to bottom. On success *t1d is a
 * buffer of *t1d_size bytes for tok1d_free. */
tok1d_status tok1d_encode(tok1d_session* session, const uint8_t* rgb, uint32_t width,
                          uint32_t height, const tok1d_encode_options* options, uint8_t** t1d,
                          size_t* t1d_size);

/* max_tokens 0: all. A truncated file decodes its complete layers. On success *rgb holds
 * (*width)*(*height)*3 bytes for tok1d_free. */
tok1d_status tok1d_decode(tok1d_session* session, const uint8_t* t1d, size_t t1d_size,
                          uint32_t max_tokens, uint8_t** rgb, uint32_t* width, uint32_t* height);

typedef struct tok1d_file_info {
  uint32_t width;
  uint32_t height;
  uint32_t tile_size;
  uint64_t tiles;
  uint32_t max_tokens; /* the model's K */
  uint32_t min_tokens; /* tokens kept per tile, least and most */
  uint32_t most_tokens;
  int truncated;
} tok1d_file_info;

/* The structure of a .t1d file; needs no model. */
tok1d_status tok1d_inspect(const uint8_t* t1d, size_t t1d_size, tok1d_file_info* info);
/* The file cut to its first `tokens` tokens per tile; needs no model. */
tok1d_status tok1d_trim(const uint8_t* t1d, size_t t1d_size, uint32_t tokens, uint8_t** out,
                        size_t* out_size);

#ifdef __cplusplus
}
#endif

#endif /* TOK1D_TOK1D_C_H_ */
