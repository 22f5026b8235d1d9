// The excitation of Squeeze-and-Excitation (Hu et al.) as one kernel per
// pass, float32 with double sums. For each sample n, from its pooled
// channel means p (C values) and the bottleneck Linear(C, H) -> ReLU ->
// Linear(H, C):
//   h_n = relu(W1 p_n + b1),  g_n = sigmoid(W2 h_n + b2)
// Backward, given dg:
//   s = dg g (1 - g),  dh = (W2^T s) [h > 0],  dp = W1^T dh
//   dW2 += s h^T, db2 += s, dW1 += dh p^T, db1 += dh (summed over n)
// The unfused form is six launches forward and about a dozen backward, each
// on a tiny N x C matrix: on a GPU their launch gaps, not their arithmetic,
// are the cost. Kept to the built-ins cuda/testdata/cudashim.h and emu.h
// define (see srm.cu).

#define SE_MAX_HIDDEN 1024
#define SE_MAX_CHANNELS 4096

namespace sek {
__device__ __forceinline__ double warp_sum(double v) {
  for (int m = 16; m > 0; m >>= 1) v += __shfl_xor_sync(0xffffffffu, v, m);
  return v;
}
// max(v, 0) that lets NaN through, as the CPU engine's ReLU does.
__device__ __forceinline__ double relu(double v) { return (v > 0.0 || v != v) ? v : 0.0; }
}  // namespace sek

// One block per sample: a warp per hidden unit for W1 p (a dot product over
// C), then a thread per channel for W2 h.
extern "C" __global__ void __launch_bounds__(256)
    se_gate_fwd(const float* p, const float* w1, const float* b1, const float* w2, const float* b2, float* hidden,
                float* gate, int C, int H) {
  __shared__ float hs[SE_MAX_HIDDEN];
  const int n = blockIdx.x, lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  const float* pn = p + (long long)n * C;
  for (int j = warp; j < H; j += warps) {
    const float* wj = w1 + (long long)j * C;
    double s = 0.0;
    for (int c = lane; c < C; c += 32) s += (double)wj[c] * pn[c];
    s = sek::warp_sum(s);
    if (lane == 0) {
      const float h = (float)sek::relu(s + b1[j]);
      hs[j] = h;
      hidden[(long long)n * H + j] = h;
    }
  }
  __syncthreads();
  for (int c = threadIdx.x; c < C; c += blockDim.x) {
    const float* wc = w2 + (long long)c * H;
    double s = b2[c];
    for (int j = 0; j < H; j++) s += (double)wc[j] * hs[j];
    gate[(long long)n * C + c] = (float)(1.0 / (1.0 + exp(-s)));
  }
}

// One block per sample: s, then dh (a warp per hidden unit), then dp when
// dp is not null. s and dh go to global memory for the parameter pass.
extern "C" __global__ void __launch_bounds__(256)
    se_gate_bwd(const float* w1, const float* w2, const float* hidden, const float* gate, const float* dgate,
                float* ds, float* dh, float* dp, int C, int H, int accP) {
  __shared__ float ss[SE_MAX_CHANNELS];
  __shared__ float hs[SE_MAX_HIDDEN];
  const int n = blockIdx.x, lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  const long long nc = (long long)n * C, nh = (long long)n * H;
  for (int c = threadIdx.x; c < C; c += blockDim.x) {
    const float g = gate[nc + c];
    const float v = (float)((double)dgate[nc + c] * g * (1.0 - g));
    ss[c] = v;
    ds[nc + c] = v;
  }
  __syncthreads();
  for (int j = warp; j < H; j += warps) {
    double s = 0.0;
    for (int c = lane; c < C; c += 32) s += (double)w2[(long long)c * H + j] * ss[c];
    s = sek::warp_sum(s);
    if (lane == 0) {
      const float v = hidden[nh + j] > 0.f ? (float)s : 0.f;
      hs[j] = v;
      dh[nh + j] = v;
    }
  }
  __syncthreads();
  if (!dp) return;
  for (int c = threadIdx.x; c < C; c += blockDim.x) {
    double s = 0.0;
    for (int j = 0; j < H; j++) s += (double)w1[(long long)j * C + c] * hs[j];
    dp[nc + c] = accP ? (float)(dp[nc + c] + s) : (float)s;
  }
}

// One thread per parameter value, in the order W1, b1, W2, b2, each summing
// its N terms.
extern "C" __global__ void __launch_bounds__(256)
    se_gate_bwd_params(const float* p, const float* hidden, const float* ds, const float* dh, float* dw1, float* db1,
                       float* dw2, float* db2, int N, int C, int H, int acc) {
  const long long hc = (long long)H * C, total = 2 * hc + H + C;
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
       i += (long long)gridDim.x * blockDim.x) {
    double s = 0.0;
    float* out;
    if (i < hc) {
      const long long j = i / C, c = i % C;
      for (int n = 0; n < N; n++) s += (double)dh[(long long)n * H + j] * p[(long long)n * C + c];
      out = dw1 + i;
    } else if (i < hc + H) {
      const long long j = i - hc;
      for (int n = 0; n < N; n++) s += dh[(long long)n * H + j];
      out = db1 + j;
    } else if (i < 2 * hc + H) {
      const long long k = i - hc - H, c = k / H, j = k % H;
      for (int n = 0; n < N; n++) s += (double)ds[(long long)n * C + c] * hidden[(long long)n * H + j];
      out = dw2 + k;
    } else {
      const long long c = i - 2 * hc - H;
      for (int n = 0; n < N; n++) s += ds[(long long)n * C + c];
      out = db2 + c;
    }
    *out = acc ? (float)(*out + s) : (float)s;
  }
}
