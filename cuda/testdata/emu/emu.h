// Lets cuda/kernels/*.cu compile as ordinary C++ so that the tests can run
// the kernels themselves on the CPU (emu.cc). Defines the same small set of
// built-ins as cudashim.h, with CPU meanings: __shared__ variables become
// function statics, shared by the threads of the block being run.
#pragma once
#include <math.h>
#include <stdint.h>

struct uint3 {
  unsigned x, y, z;
};
struct dim3 {
  unsigned x, y, z;
};
extern uint3 threadIdx, blockIdx;
extern dim3 blockDim, gridDim;

#define __global__
#define __device__
#define __shared__ static
#define __forceinline__ inline
#define __launch_bounds__(n)
#define __restrict__ __restrict

struct alignas(16) float4 {
  float x, y, z, w;
};

void __syncthreads();
float __shfl_xor_sync(unsigned mask, float v, int laneMask);
double __shfl_xor_sync(unsigned mask, double v, int laneMask);
// One thread runs at a time, so an atomic is a plain read-modify-write.
inline float atomicAdd(float* p, float v) {
  const float old = *p;
  *p = old + v;
  return old;
}
