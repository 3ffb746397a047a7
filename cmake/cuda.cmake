# CUDA is on by default. The architecture list is explicit so that a machine without a GPU (CI) builds
# the same binary a user gets: sm_80/86/89/90 machine code plus sm_90 PTX for newer GPUs. `native` is
# accepted only when a GPU is visible; otherwise configuration stops with a clear message.
if(NOT ADALLM_CUDA)
  message(STATUS "adallm: CUDA backend disabled (ADALLM_CUDA=OFF)")
  return()
endif()

if(NOT DEFINED CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX} AND EXISTS /usr/local/cuda/bin/nvcc)
  set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
endif()

set(ADALLM_DEFAULT_CUDA_ARCHITECTURES "80-real;86-real;89-real;90a-real;90-virtual")
if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES OR CMAKE_CUDA_ARCHITECTURES STREQUAL "")
  set(CMAKE_CUDA_ARCHITECTURES "${ADALLM_DEFAULT_CUDA_ARCHITECTURES}" CACHE STRING "CUDA architectures" FORCE)
endif()

if(CMAKE_CUDA_ARCHITECTURES MATCHES "native|all")
  if(CMAKE_CUDA_ARCHITECTURES MATCHES "all")
    message(FATAL_ERROR "adallm: CMAKE_CUDA_ARCHITECTURES=${CMAKE_CUDA_ARCHITECTURES} is not supported; "
                        "use 'native' on a machine with a GPU or an explicit list such as 89-real;90a-real")
  endif()
  find_program(ADALLM_NVIDIA_SMI nvidia-smi)
  set(gpu_seen FALSE)
  if(ADALLM_NVIDIA_SMI)
    execute_process(COMMAND ${ADALLM_NVIDIA_SMI} --query-gpu=compute_cap --format=csv,noheader
                    OUTPUT_VARIABLE gpu_caps RESULT_VARIABLE smi_rc ERROR_QUIET OUTPUT_STRIP_TRAILING_WHITESPACE)
    if(smi_rc EQUAL 0 AND gpu_caps MATCHES "[0-9]")
      set(gpu_seen TRUE)
    endif()
  endif()
  if(NOT gpu_seen)
    message(FATAL_ERROR "adallm: CMAKE_CUDA_ARCHITECTURES=native needs a visible GPU, and nvidia-smi found "
                        "none. Use the default list (leave CMAKE_CUDA_ARCHITECTURES unset), an explicit one "
                        "such as -DCMAKE_CUDA_ARCHITECTURES=89-real, or -DADALLM_CUDA=OFF.")
  endif()
  # The visible GPUs' architectures, Hopper as 90a: CMake's own `native` would build plain sm_90, which
  # lacks the wgmma instructions of the prefill GEMM.
  string(REPLACE "\n" ";" gpu_caps "${gpu_caps}")
  set(native_archs "")
  foreach(cap IN LISTS gpu_caps)
    string(STRIP "${cap}" cap)
    string(REPLACE "." "" arch "${cap}")
    if(arch STREQUAL "90")
      set(arch "90a")
    endif()
    list(APPEND native_archs "${arch}-real")
  endforeach()
  list(REMOVE_DUPLICATES native_archs)
  set(CMAKE_CUDA_ARCHITECTURES "${native_archs}" CACHE STRING "CUDA architectures" FORCE)
endif()

include(CheckLanguage)
check_language(CUDA)
if(NOT CMAKE_CUDA_COMPILER)
  message(FATAL_ERROR "adallm: no CUDA compiler found. Install the CUDA toolkit (nvcc at /usr/local/cuda/bin) "
                      "or configure with -DADALLM_CUDA=OFF for a CPU-only build.")
endif()
enable_language(CUDA)
# CMake 3.25 (Debian 12) knows no C++20 flag for nvcc; device code is C++17.
set(CMAKE_CUDA_STANDARD 17)
set(CMAKE_CUDA_STANDARD_REQUIRED ON)
find_package(CUDAToolkit REQUIRED)
message(STATUS "adallm: CUDA ${CMAKE_CUDA_COMPILER_VERSION}, architectures ${CMAKE_CUDA_ARCHITECTURES}")
