// The list of codecs. Adding one: its file (defining MakeXxxCodec) and one line in TOK1D_CODECS.
#include <utility>

#include "eval/codecs/image_codec.h"

// X(Name) for each codec, in the order AllCodecs() lists them: Name names MakeNameCodec().
#define TOK1D_CODECS(X) \
  X(Jpeg)               \
  X(Webp)               \
  X(Avif)               \
  X(Jxl)

namespace tok1d {

#define TOK1D_DECLARE_CODEC(Name) std::unique_ptr<ImageCodec> Make##Name##Codec();
TOK1D_CODECS(TOK1D_DECLARE_CODEC)
#undef TOK1D_DECLARE_CODEC

std::vector<std::unique_ptr<ImageCodec>> AllCodecs() {
  std::vector<std::unique_ptr<ImageCodec>> codecs;
#define TOK1D_ADD_CODEC(Name) codecs.push_back(Make##Name##Codec());
  TOK1D_CODECS(TOK1D_ADD_CODEC)
#undef TOK1D_ADD_CODEC
  return codecs;
}

std::vector<std::string> CodecNames() {
  std::vector<std::string> names;
  for (const std::unique_ptr<ImageCodec>& codec : AllCodecs()) names.emplace_back(codec->name());
  return names;
}

StatusOr<std::unique_ptr<ImageCodec>> FindCodec(std::string_view name) {
  std::string known;
  for (std::unique_ptr<ImageCodec>& codec : AllCodecs()) {
    if (codec->name() == name) return std::move(codec);
    known += (known.empty() ? "" : ", ") + std::string(codec->name());
  }
  return NotFoundError("no codec '" + std::string(name) + "' (codecs: " + known + ")");
}

StatusOr<Image> DecodeWithAnyCodec(std::span<const uint8_t> bytes) {
  std::string known;
  for (const std::unique_ptr<ImageCodec>& codec : AllCodecs()) {
    if (codec->Recognizes(bytes)) return codec->Decode(bytes);
    known += (known.empty() ? "" : ", ") + std::string(codec->name());
  }
  return UnsupportedError("not a file of any codec (" + known + ")");
}

}  // namespace tok1d
