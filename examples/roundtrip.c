/* Round trip through libtok1d's C API: a synthetic image -> .t1d bytes -> inspect -> trim ->
 * decode, with the PSNR of each decode. Exits 1 on any failure.
 *   roundtrip [MODEL.safetensors]     (default: the model built into libtok1d) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <tok1d/tok1d_c.h>

static int Check(tok1d_status status, const char* what) {
  if (status == TOK1D_OK) return 1;
  fprintf(stderr, "roundtrip: %s: %s (code %d)\n", what, tok1d_last_error(), (int)status);
  return 0;
}

static double Psnr(const uint8_t* a, const uint8_t* b, size_t n) {
  double sum = 0;
  for (size_t i = 0; i < n; ++i) sum += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
  return sum == 0 ? INFINITY : 10 * log10(255.0 * 255.0 * (double)n / sum);
}

int main(int argc, char** argv) {
  const uint32_t width = 300, height = 200; /* not a multiple of the tile: border tiles too */
  uint8_t* rgb = malloc((size_t)width * height * 3);
  for (uint32_t y = 0; y < height; ++y) {
    for (uint32_t x = 0; x < width; ++x) {
      uint8_t* p = rgb + ((size_t)y * width + x) * 3;
      p[0] = (uint8_t)(x * 255 / width);
      p[1] = (uint8_t)(y * 255 / height);
      p[2] = (uint8_t)(((x / 25) + (y / 25)) % 2 ? 200 : 60);
    }
  }
  printf("libtok1d %s\n", tok1d_version());

  tok1d_model* model = NULL;
  tok1d_session* session = NULL;
  uint8_t *t1d = NULL, *trimmed = NULL, *decoded = NULL;
  size_t t1d_size = 0, trimmed_size = 0;
  uint32_t out_width = 0, out_height = 0;
  int ok = Check(tok1d_model_load(argc > 1 ? argv[1] : NULL, &model), "load model");

  tok1d_session_options session_options;
  tok1d_session_options_init(&session_options);
  session_options.threads = 1;
  ok = ok && Check(tok1d_session_create(model, &session_options, &session), "session");

  tok1d_encode_options options;
  tok1d_encode_options_init(&options);
  options.tokens = 32;
  ok = ok && Check(tok1d_encode(session, rgb, width, height, &options, &t1d, &t1d_size), "encode");

  tok1d_file_info info;
  ok = ok && Check(tok1d_inspect(t1d, t1d_size, &info), "inspect");
  if (ok && (info.width != width || info.height != height || info.most_tokens != 32)) {
    fprintf(stderr, "roundtrip: inspect gave %ux%u, %u tokens\n", info.width, info.height,
            info.most_tokens);
    ok = 0;
  }
  ok = ok &&
       Check(tok1d_decode(session, t1d, t1d_size, 0, &decoded, &out_width, &out_height), "decode");
  if (ok) {
    printf("32 tokens: %zu bytes, %.2f dB\n", t1d_size,
           Psnr(rgb, decoded, (size_t)width * height * 3));
    tok1d_free(decoded);
    decoded = NULL;
  }

  ok = ok && Check(tok1d_trim(t1d, t1d_size, 8, &trimmed, &trimmed_size), "trim");
  ok = ok &&
       Check(tok1d_decode(session, trimmed, trimmed_size, 0, &decoded, &out_width, &out_height),
             "decode trimmed");
  if (ok) {
    printf(" 8 tokens: %zu bytes, %.2f dB\n", trimmed_size,
           Psnr(rgb, decoded, (size_t)width * height * 3));
    if (out_width != width || out_height != height || trimmed_size >= t1d_size) ok = 0;
  }

  /* A damaged file is an error, not a crash. */
  if (ok) {
    uint8_t garbage[16] = {0};
    tok1d_file_info unused;
    if (tok1d_inspect(garbage, sizeof garbage, &unused) == TOK1D_OK) ok = 0;
  }

  tok1d_free(decoded);
  tok1d_free(trimmed);
  tok1d_free(t1d);
  tok1d_session_release(session);
  tok1d_model_release(model);
  free(rgb);
  printf(ok ? "roundtrip: ok\n" : "roundtrip: FAILED\n");
  return ok ? 0 : 1;
}
