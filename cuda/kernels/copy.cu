// Device-to-device copy through the SMs: the yardstick for what a
// memory-bound kernel can reach (bytes read + bytes written per second),
// measured beside cuMemcpyDtoD by srmlab cuda-check. Built-ins as in srm.cu.

extern "C" __global__ void __launch_bounds__(256)
    copy_f32x4(const float4* __restrict__ src, float4* __restrict__ dst, long long n4) {
  const long long stride = (long long)gridDim.x * blockDim.x;
#pragma unroll 4
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n4; i += stride) dst[i] = src[i];
}
