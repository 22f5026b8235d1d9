// Stands in for the CUDA built-ins that NVRTC provides implicitly, so that
// clang can compile cuda/kernels/*.cu to PTX without a CUDA installation
// (cuda/ptxcheck.sh). Only what the kernels use; see the list in srm.cu.
#pragma once
#include <__clang_cuda_builtin_vars.h>

#define __global__ __attribute__((global))
#define __device__ __attribute__((device))
#define __shared__ __attribute__((shared))
#define __forceinline__ __inline__ __attribute__((always_inline))
#define __launch_bounds__(n) __attribute__((launch_bounds(n)))

struct __attribute__((aligned(16))) float4 {
  float x, y, z, w;
};

// libdevice's names: left unresolved in the PTX, as NVRTC would link them.
extern "C" __device__ float __nv_expf(float);
extern "C" __device__ double __nv_exp(double);
__device__ __forceinline__ float expf(float x) { return __nv_expf(x); }
__device__ __forceinline__ double exp(double x) { return __nv_exp(x); }
extern "C" __device__ double __nv_log(double);
__device__ __forceinline__ double log(double x) { return __nv_log(x); }
__device__ __forceinline__ float sqrtf(float x) { return __builtin_sqrtf(x); }
__device__ __forceinline__ double sqrt(double x) { return __builtin_sqrt(x); }

__device__ __forceinline__ float __shfl_xor_sync(unsigned mask, float v, int lane) {
  return __nvvm_shfl_sync_bfly_f32(mask, v, lane, 0x1f);
}
__device__ __forceinline__ double __shfl_xor_sync(unsigned mask, double v, int lane) {
  long long b = __builtin_bit_cast(long long, v);
  int lo = __nvvm_shfl_sync_bfly_i32(mask, (int)b, lane, 0x1f);
  int hi = __nvvm_shfl_sync_bfly_i32(mask, (int)(b >> 32), lane, 0x1f);
  return __builtin_bit_cast(double, ((long long)hi << 32) | (unsigned)lo);
}

__device__ __forceinline__ float atomicAdd(float* p, float v) { return __nvvm_atom_add_gen_f(p, v); }
