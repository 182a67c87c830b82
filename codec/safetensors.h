// A reader of the safetensors format (https://github.com/huggingface/safetensors): a u64
// little-endian header length, a JSON header {name: {dtype, shape, data_offsets},
// "__metadata__": {string: string}}, then the raw little-endian tensor data.
//
// The reader only parses and checks; tensors are views into the caller's bytes.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tok1d/status.h"

namespace tok1d {

struct SafetensorsTensor {
  std::string name;
  std::string dtype;  // "F16", "F32", "I32", "U8", … (unknown types are kept)
  std::vector<uint64_t> shape;
  std::span<const uint8_t> data;  // exactly element_count() * element size bytes for known types

  uint64_t element_count() const;
};

struct SafetensorsFile {
  std::vector<SafetensorsTensor> tensors;  // sorted by name
  std::map<std::string, std::string> metadata;

  // nullptr when there is no tensor of that name.
  const SafetensorsTensor* Find(std::string_view name) const;
};

// Bytes per element of a dtype, 0 for a dtype this reader does not know.
size_t SafetensorsDtypeSize(std::string_view dtype);

// Parses the header and checks every tensor's extent against the data (kCorrupt or kTruncated
// with a message saying what is wrong). The returned views point into `bytes`.
StatusOr<SafetensorsFile> ParseSafetensors(std::span<const uint8_t> bytes);

// Converts a floating-point tensor (F16, BF16 or F32) to float32; kUnsupported otherwise.
Status TensorToFloat(const SafetensorsTensor& tensor, std::span<float> out);

// IEEE 754 binary16 → binary32, exact (subnormals, infinities and NaN included).
float HalfToFloat(uint16_t half);

}  // namespace tok1d
