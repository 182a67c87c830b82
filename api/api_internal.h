// What the API's handles hold: the internal model and codec behind tok1d.h's classes. Used by
// api/*.cpp only (and by tests that reach below the API).
#pragma once

#include <memory>

#include "codec/codec.h"
#include "codec/model.h"
#include "tok1d/tok1d.h"

namespace tok1d {

class ModelImpl {
 public:
  explicit ModelImpl(Model m) : model(std::move(m)) {}
  static std::shared_ptr<const LoadedModel> Wrap(Model model);

  Model model;  // shares its weights with every copy
};

class SessionImpl {
 public:
  std::shared_ptr<const LoadedModel> model;
  std::unique_ptr<Codec> codec;
  bool restore = true;  // SessionOptions::restore: encoders fit the colour restoration
};

}  // namespace tok1d
