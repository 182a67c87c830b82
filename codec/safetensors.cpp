#include "codec/safetensors.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>

namespace tok1d {
namespace {

// A header larger than this is not a model file (the reference implementation uses 100 MB).
constexpr uint64_t kMaxHeaderBytes = uint64_t{100} << 20;
constexpr size_t kMaxRank = 8;

uint64_t ReadU64Le(std::span<const uint8_t> bytes) {
  uint64_t value = 0;
  for (size_t i = 0; i < 8; ++i) value |= uint64_t{bytes[i]} << (8 * i);
  return value;
}

// Reads a JSON unsigned integer; false when `value` is not one.
bool GetUnsigned(const nlohmann::json& value, uint64_t* out) {
  if (!value.is_number_unsigned()) return false;
  *out = value.get<uint64_t>();
  return true;
}

StatusOr<SafetensorsTensor> ParseTensorEntry(const std::string& name, const nlohmann::json& entry,
                                             std::span<const uint8_t> data) {
  auto corrupt = [&name](const std::string& what) {
    return CorruptError("tensor '" + name + "': " + what);
  };
  if (!entry.is_object()) return corrupt("header entry is not an object");
  auto dtype = entry.find("dtype");
  auto shape = entry.find("shape");
  auto offsets = entry.find("data_offsets");
  if (dtype == entry.end() || !dtype->is_string()) return corrupt("missing dtype");
  if (shape == entry.end() || !shape->is_array()) return corrupt("missing shape");
  if (offsets == entry.end() || !offsets->is_array() || offsets->size() != 2) {
    return corrupt("missing data_offsets [begin, end]");
  }
  if (shape->size() > kMaxRank) return corrupt("more than 8 dimensions");

  SafetensorsTensor tensor;
  tensor.name = name;
  tensor.dtype = dtype->get<std::string>();
  uint64_t elements = 1;
  for (const nlohmann::json& dim : *shape) {
    uint64_t extent = 0;
    if (!GetUnsigned(dim, &extent)) return corrupt("shape has a non-integer dimension");
    if (extent != 0 && elements > std::numeric_limits<uint64_t>::max() / extent) {
      return corrupt("shape overflows");
    }
    elements *= extent;
    tensor.shape.push_back(extent);
  }
  uint64_t begin = 0, end = 0;
  if (!GetUnsigned((*offsets)[0], &begin) || !GetUnsigned((*offsets)[1], &end) || begin > end) {
    return corrupt("data_offsets are not an increasing pair of integers");
  }
  if (end > data.size()) {
    return TruncatedError("tensor '" + name + "' ends at byte " + std::to_string(end) +
                          " of the data, which has only " + std::to_string(data.size()));
  }
  const size_t element_size = SafetensorsDtypeSize(tensor.dtype);
  if (element_size != 0 &&
      (elements > (end - begin) / element_size || elements * element_size != end - begin)) {
    return corrupt("holds " + std::to_string(end - begin) + " bytes, but its shape and dtype " +
                   tensor.dtype + " need " + std::to_string(elements) + " elements of " +
                   std::to_string(element_size) + " bytes");
  }
  tensor.data = data.subspan(begin, end - begin);
  return tensor;
}

}  // namespace

uint64_t SafetensorsTensor::element_count() const {
  uint64_t count = 1;
  for (uint64_t extent : shape) count *= extent;  // bounded by the data size when parsed
  return count;
}

const SafetensorsTensor* SafetensorsFile::Find(std::string_view name) const {
  auto it =
      std::lower_bound(tensors.begin(), tensors.end(), name,
                       [](const SafetensorsTensor& t, std::string_view n) { return t.name < n; });
  return it != tensors.end() && it->name == name ? &*it : nullptr;
}

size_t SafetensorsDtypeSize(std::string_view dtype) {
  if (dtype == "F64" || dtype == "I64" || dtype == "U64") return 8;
  if (dtype == "F32" || dtype == "I32" || dtype == "U32") return 4;
  if (dtype == "F16" || dtype == "BF16" || dtype == "I16" || dtype == "U16") return 2;
  if (dtype == "I8" || dtype == "U8" || dtype == "BOOL") return 1;
  return 0;
}

StatusOr<SafetensorsFile> ParseSafetensors(std::span<const uint8_t> bytes) {
  if (bytes.size() < 8) {
    return TruncatedError("file is " + std::to_string(bytes.size()) +
                          " bytes, too short for a safetensors header");
  }
  const uint64_t header_size = ReadU64Le(bytes);
  if (header_size > kMaxHeaderBytes) {
    return CorruptError("header length " + std::to_string(header_size) +
                        " is implausible (not a safetensors file?)");
  }
  if (header_size > bytes.size() - 8) {
    return TruncatedError("header of " + std::to_string(header_size) + " bytes, but only " +
                          std::to_string(bytes.size() - 8) + " bytes follow");
  }
  const auto header_bytes = bytes.subspan(8, header_size);
  const auto data = bytes.subspan(8 + header_size);

  nlohmann::json header = nlohmann::json::parse(header_bytes.begin(), header_bytes.end(),
                                                /*cb=*/nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded()) return CorruptError("header is not valid JSON");
  if (!header.is_object()) return CorruptError("header is not a JSON object");

  SafetensorsFile file;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) return CorruptError("__metadata__ is not an object");
      for (const auto& [key, value] : entry.items()) {
        if (!value.is_string()) return CorruptError("metadata '" + key + "' is not a string");
        file.metadata[key] = value.get<std::string>();
      }
      continue;
    }
    TOK1D_ASSIGN_OR_RETURN(SafetensorsTensor tensor, ParseTensorEntry(name, entry, data));
    file.tensors.push_back(std::move(tensor));
  }
  // nlohmann::json objects iterate in key order; keep the invariant Find() relies on explicit.
  std::sort(file.tensors.begin(), file.tensors.end(),
            [](const SafetensorsTensor& a, const SafetensorsTensor& b) { return a.name < b.name; });
  return file;
}

float HalfToFloat(uint16_t half) {
  const uint32_t sign = uint32_t{half & 0x8000u} << 16;
  const uint32_t exponent = (half >> 10) & 0x1Fu;
  uint32_t mantissa = half & 0x3FFu;
  uint32_t bits;
  if (exponent == 0x1F) {  // infinity or NaN
    bits = sign | 0x7F800000u | (mantissa << 13);
  } else if (exponent != 0) {
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {
    bits = sign;
  } else {  // subnormal: normalise the mantissa
    uint32_t shift = 0;
    while ((mantissa & 0x400u) == 0) {
      mantissa <<= 1;
      ++shift;
    }
    bits = sign | ((113 - shift) << 23) | ((mantissa & 0x3FFu) << 13);
  }
  return std::bit_cast<float>(bits);
}

Status TensorToFloat(const SafetensorsTensor& tensor, std::span<float> out) {
  const uint64_t count = tensor.element_count();
  if (out.size() != count) {
    return InternalError("TensorToFloat: output has " + std::to_string(out.size()) +
                         " elements, tensor '" + tensor.name + "' has " + std::to_string(count));
  }
  const uint8_t* src = tensor.data.data();
  if (tensor.dtype == "F32") {
    for (size_t i = 0; i < count; ++i) {
      uint32_t bits = 0;
      for (size_t b = 0; b < 4; ++b) bits |= uint32_t{src[4 * i + b]} << (8 * b);
      out[i] = std::bit_cast<float>(bits);
    }
  } else if (tensor.dtype == "F16" || tensor.dtype == "BF16") {
    const bool brain = tensor.dtype == "BF16";
    for (size_t i = 0; i < count; ++i) {
      const auto bits = static_cast<uint16_t>(src[2 * i] | (src[2 * i + 1] << 8));
      out[i] = brain ? std::bit_cast<float>(uint32_t{bits} << 16) : HalfToFloat(bits);
    }
  } else {
    return UnsupportedError("tensor '" + tensor.name + "' has dtype " + tensor.dtype +
                            "; expected F16, BF16 or F32");
  }
  return OkStatus();
}

}  // namespace tok1d
