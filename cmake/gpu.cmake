# GPU decoding backends (kernels/gpu/, docs/gpu.md): one CUDA C++ source, compiled by nvcc for
# NVIDIA (TOK1D_CUDA) and by hipcc for AMD (TOK1D_HIP), linked into both libtok1d libraries
# (tok1d_add_gpu_objects) and registered in kernels/backend.cpp. Included from the top-level
# CMakeLists.txt after the layers.

set(gpu_backend_source "${PROJECT_SOURCE_DIR}/kernels/gpu/gpu_backend.cu")

if(TOK1D_CUDA)
  # The toolkit's usual home is not always on PATH.
  if(NOT CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX} AND EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
  endif()
  include(CheckLanguage)
  check_language(CUDA)
  if(NOT CMAKE_CUDA_COMPILER)
    message(FATAL_ERROR "TOK1D_CUDA=ON, but no CUDA compiler was found: install the CUDA "
                        "toolkit, pass -DCMAKE_CUDA_COMPILER=/path/to/nvcc, or configure with "
                        "-DTOK1D_CUDA=OFF")
  endif()
  # Machine code for Hopper (H100/H200) plus PTX that the driver compiles for any other GPU
  # from Turing on; a build for one card: -DCMAKE_CUDA_ARCHITECTURES=86 (or native).
  if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
    set(CMAKE_CUDA_ARCHITECTURES 90-real 75-virtual)
  endif()
  enable_language(CUDA)
  # CUDA code takes CMAKE_CXX_STANDARD (20), but CMake 3.25 predates nvcc 13 and does not
  # know that it supports C++20.
  if(NOT CMAKE_CUDA20_STANDARD_COMPILE_OPTION)
    set(CMAKE_CUDA20_STANDARD_COMPILE_OPTION -std=c++20)
    set(CMAKE_CUDA20_EXTENSION_COMPILE_OPTION -std=c++20)
    set(CMAKE_CUDA20_COMPILE_FEATURES cuda_std_20)
    list(APPEND CMAKE_CUDA_COMPILE_FEATURES cuda_std_20)
  endif()
  find_package(CUDAToolkit REQUIRED)
  message(STATUS "tok1d: CUDA backend for ${CMAKE_CUDA_ARCHITECTURES} (nvcc ${CMAKE_CUDA_COMPILER_VERSION})")

  add_library(tok1d_cuda OBJECT ${gpu_backend_source})
  target_include_directories(tok1d_cuda PRIVATE ${PROJECT_SOURCE_DIR} ${PROJECT_SOURCE_DIR}/include)
  target_compile_definitions(tok1d_cuda PRIVATE TOK1D_GPU_CUDA)
  target_compile_options(tok1d_cuda PRIVATE
    -Xcompiler=-Wall,-Wextra $<$<BOOL:${TOK1D_WERROR}>:--Werror=all-warnings>)
  target_compile_definitions(tok1d_kernels PRIVATE TOK1D_WITH_CUDA)
endif()

if(TOK1D_HIP)
  # hipcc is driven directly rather than through CMake's HIP language: CMake 3.25 looks for
  # the HIP runtime's CMake package under ROCm's /opt/rocm layout and rejects Debian's
  # multiarch one (/usr/lib/x86_64-linux-gnu/cmake/hip-lang).
  find_program(TOK1D_HIPCC hipcc)
  find_library(TOK1D_AMDHIP64 amdhip64)
  if(NOT TOK1D_HIPCC OR NOT TOK1D_AMDHIP64)
    message(FATAL_ERROR "TOK1D_HIP=ON, but hipcc or the HIP runtime (libamdhip64) was not found: "
                        "install them (Debian: apt-get install hipcc libamdhip64-dev; "
                        "scripts/install-deps does), or configure with -DTOK1D_HIP=OFF")
  endif()
  # Targets ROCm 5.2 (Debian 12) knows, e.g. gfx90a (MI200), gfx1030 (RX 6800-6900); gfx942
  # (MI300) needs a newer ROCm. A build for one card: -DCMAKE_HIP_ARCHITECTURES=gfx1030.
  set(CMAKE_HIP_ARCHITECTURES gfx90a CACHE STRING "AMD GPU targets for the HIP backend (;-separated)")
  message(STATUS "tok1d: HIP backend for ${CMAKE_HIP_ARCHITECTURES} (${TOK1D_HIPCC})")

  set(hip_object "${CMAKE_CURRENT_BINARY_DIR}/gpu_backend.hip.o")
  set(hip_flags -x hip -std=c++20 -O3 -fPIC -DTOK1D_GPU_HIP -I${PROJECT_SOURCE_DIR} -I${PROJECT_SOURCE_DIR}/include -Wall -Wextra)
  if(TOK1D_WERROR)
    list(APPEND hip_flags -Werror)
  endif()
  foreach(arch IN LISTS CMAKE_HIP_ARCHITECTURES)
    list(APPEND hip_flags --offload-arch=${arch})
  endforeach()
  file(GLOB gpu_headers "${PROJECT_SOURCE_DIR}/kernels/gpu/*.h" "${PROJECT_SOURCE_DIR}/kernels/gpu/*.cuh")
  add_custom_command(
    OUTPUT "${hip_object}"
    COMMAND "${TOK1D_HIPCC}" ${hip_flags} -c "${gpu_backend_source}" -o "${hip_object}"
    DEPENDS "${gpu_backend_source}" ${gpu_headers}
            "${PROJECT_SOURCE_DIR}/kernels/backend.h" "${PROJECT_SOURCE_DIR}/kernels/fsq_table.h"
            "${PROJECT_SOURCE_DIR}/common/fsq_codebook.h"
            "${PROJECT_SOURCE_DIR}/include/tok1d/status.h"
    COMMENT "Compiling kernels/gpu/gpu_backend.cu for HIP (${CMAKE_HIP_ARCHITECTURES})"
    VERBATIM)
  add_custom_target(tok1d_hip_object DEPENDS "${hip_object}")
  target_compile_definitions(tok1d_kernels PRIVATE TOK1D_WITH_HIP)
endif()

# Adds the compiled GPU backends to a libtok1d target (static or shared).
function(tok1d_add_gpu_objects target)
  if(TOK1D_CUDA)
    target_link_libraries(${target} PRIVATE tok1d_cuda PUBLIC CUDA::cudart)
    set_target_properties(${target} PROPERTIES CUDA_ARCHITECTURES "${CMAKE_CUDA_ARCHITECTURES}")
  endif()
  if(TOK1D_HIP)
    target_sources(${target} PRIVATE "${CMAKE_BINARY_DIR}/gpu_backend.hip.o")
    set_source_files_properties("${CMAKE_BINARY_DIR}/gpu_backend.hip.o" PROPERTIES
      EXTERNAL_OBJECT TRUE GENERATED TRUE)
    add_dependencies(${target} tok1d_hip_object)
    target_link_libraries(${target} PUBLIC "${TOK1D_AMDHIP64}")
  endif()
endfunction()
