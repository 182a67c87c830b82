# The tokenizer runtime inside tok1d_lib: model loading (SHA-256 through OpenSSL's libcrypto),
# the forward pass, the CPU backend (matrix products through OpenBLAS) and the default model
# embedded in the binary. Included from the top-level CMakeLists.txt after tok1d_lib exists.

find_package(Threads REQUIRED)
pkg_check_modules(OPENBLAS REQUIRED IMPORTED_TARGET openblas)
pkg_check_modules(CRYPTO REQUIRED IMPORTED_TARGET libcrypto)

target_sources(tok1d_lib PRIVATE
  codec/safetensors.cpp
  codec/model.cpp
  codec/tokenizer.cpp
  codec/tiling.cpp
  codec/codec.cpp
  codec/deblock.cpp
  kernels/backend.cpp
  kernels/cpu/cpu_backend.cpp
  kernels/cpu/thread_pool.cpp)
target_link_libraries(tok1d_lib PRIVATE
  PkgConfig::OPENBLAS PkgConfig::CRYPTO nlohmann_json::nlohmann_json Threads::Threads)

# The CPU kernels are plain loops written for the auto-vectorizer: -fopenmp-simd honours their
# `#pragma omp simd` reductions (no OpenMP runtime), and -fno-trapping-math lets GCC turn the
# clamps in exp/erf into vector min/max (results are unchanged; tok1d never enables FP traps).
set_source_files_properties(kernels/cpu/cpu_backend.cpp PROPERTIES
  COMPILE_OPTIONS "-fopenmp-simd;-fno-trapping-math")

# The default model: embedded with .incbin (the assembler copies the file; no generated
# C++ array) when the file exists at configure time.
set(TOK1D_DEFAULT_MODEL "${CMAKE_CURRENT_SOURCE_DIR}/models/tok1d-default.safetensors"
    CACHE FILEPATH "Model file embedded in tok1d as its default model (empty or missing: none)")
if(TOK1D_DEFAULT_MODEL AND EXISTS "${TOK1D_DEFAULT_MODEL}")
  enable_language(ASM)
  set(TOK1D_EMBEDDED_MODEL_FILE "${TOK1D_DEFAULT_MODEL}")
  set(embedded_model_asm "${CMAKE_CURRENT_BINARY_DIR}/generated/embedded_model.S")
  configure_file(codec/embedded_model.S.in "${embedded_model_asm}" @ONLY)
  target_sources(tok1d_lib PRIVATE "${embedded_model_asm}")
  # Re-assemble when the model file changes.
  set_source_files_properties("${embedded_model_asm}" PROPERTIES OBJECT_DEPENDS "${TOK1D_DEFAULT_MODEL}")
  set_source_files_properties(codec/model.cpp PROPERTIES COMPILE_DEFINITIONS TOK1D_EMBEDDED_MODEL=1)
  message(STATUS "tok1d: embedding the default model ${TOK1D_DEFAULT_MODEL}")
else()
  message(STATUS "tok1d: no default model embedded (TOK1D_DEFAULT_MODEL='${TOK1D_DEFAULT_MODEL}' "
                 "does not exist); tok1d looks next to its binary or needs --model")
endif()

# The CPU speed benchmark (a program that prints numbers, not a test; scripts/bench-cpu runs it
# beside PyTorch).
add_executable(tok1d_cpu_bench bench/bench_tokenizer.cpp)
target_link_libraries(tok1d_cpu_bench PRIVATE tok1d_lib CLI11::CLI11)
set_target_properties(tok1d_cpu_bench PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bench)
