# Entropy coding of token layers inside tok1d_lib: the range coder and the "range" LayerCoder
# whose probability tables live in the model file. Included after cmake/runtime.cmake (the
# tables are read from the model's safetensors file with nlohmann_json).
target_sources(tok1d_lib PRIVATE
  codec/range_coder.cpp
  codec/entropy_coder.cpp)
