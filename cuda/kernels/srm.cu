// Fused kernels for the Style-based Recalibration Module (SRM; Lee, Kim and
// Nam, ICCV 2019, in the form of the official PyTorch code), float32, NCHW.
//
// Compiled at run time by NVRTC (cuda/kernels.go), which provides the CUDA
// built-ins without any #include; cuda/ptxcheck.sh compiles this file with
// clang and cuda/testdata/cudashim.h standing in for them, and the tests run
// it on the CPU through cuda/testdata/emu. Keep to the built-ins those two
// headers define: threadIdx/blockIdx/blockDim, __syncthreads,
// __shfl_xor_sync (float, double), float4, expf/exp, sqrtf/sqrt.
//
// The maths. x is N x C x H x W; a plane p = n*C + c is the L = H*W
// contiguous values x[p, i].
//
// Forward
//   mu_p  = (1/L) sum_i x_pi
//   s_p   = sqrt( sum_i (x_pi - mu_p)^2 / (L-1) + 1e-5 )     unbiased variance
//   z_p   = a_c mu_p + b_c s_p                               CFC: a = cfc[c,0], b = cfc[c,1]
//   training: m_c = (1/N) sum_n z_nc,  v_c = (1/N) sum_n (z_nc - m_c)^2,
//             running_mean <- (1-mom) running_mean + mom m_c
//             running_var  <- (1-mom) running_var  + mom v_c N/(N-1)
//   eval:     m_c = running_mean_c, v_c = running_var_c
//   r_c   = 1 / sqrt(v_c + eps)
//   zh_p  = (z_p - m_c) r_c,   g_p = sigmoid(gamma_c zh_p + beta_c)
//   out_pi = x_pi g_p
//
// Backward (training-mode BN), given G = dout
//   S_p    = sum_i G_pi x_pi                                  dloss/dg_p
//   dy_p   = S_p g_p (1 - g_p)
//   dbeta_c  = sum_n dy_nc,   dgamma_c = sum_n dy_nc zh_nc
//   dz_p   = gamma_c r_c ( dy_p - (1/N) sum_n dy_nc - zh_p (1/N) sum_n dy_nc zh_nc )
//   da_c   = sum_n dz_nc mu_nc,   db_c = sum_n dz_nc s_nc    (dcfc)
//   dmu_p  = a_c dz_p,   ds_p = b_c dz_p
//   dmu/dx_pi = 1/L,  ds/dx_pi = (x_pi - mu_p) / ((L-1) s_p)  (the mean's own
//   dependence on x drops out of ds because sum_i (x_pi - mu_p) = 0)
//   dx_pi  = G_pi g_p + k2_p (x_pi - mu_p) + k0_p,
//            k2_p = ds_p / ((L-1) s_p),  k0_p = dmu_p / L
//
// Passes over the N*C*L values: eval forward reads x once and writes once;
// training forward reads x twice (statistics, then scaling: the batch
// statistics of z sit between the two) and writes once; backward reads x
// and G twice (S, then dx: the batch sums of dy sit between) and writes dx
// once. The per-channel steps in between are one warp per channel over N.
//
// Plane kernels come in three shapes, chosen on the host by L
// (cuda/srm.go, planeGeometry):
//   *_warpR  : one warp per plane, 8 planes per block, each lane keeping up
//              to R values in registers (L <= 32 R); for small planes such
//              as 7x7, where a block per plane would leave most threads idle.
//   *_blockR : one block per plane, float4 accesses (L % 4 == 0), each
//              thread keeping up to R float4s in registers, so the eval
//              forward reads x exactly once and the variance is computed
//              from the mean (two passes over registers, no cancellation).
//   *_loop   : one block per plane, any L, re-reading x from memory.
// The statistics always go through registers or memory twice: a one-pass
// sum of squares loses the variance to cancellation when |mean| >> std.

#define SRM_STD_EPS 1e-5f
#define FULL_MASK 0xffffffffu

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(FULL_MASK, v, o);
  return v;
}

__device__ __forceinline__ double warp_sum_d(double v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(FULL_MASK, v, o);
  return v;
}

// block_sum returns the sum of v over the block to every thread. blockDim.x
// is a multiple of 32 (the host guarantees it). Each warp reduces the
// per-warp partials itself, in the same order, so all threads get the same
// bits without a third barrier; the first barrier keeps a previous call's
// readers ahead of this call's writers.
__device__ __forceinline__ float block_sum(float v, float* sh) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warp_sum(v);
  __syncthreads();
  if (lane == 0) sh[warp] = v;
  __syncthreads();
  v = lane < (int)(blockDim.x >> 5) ? sh[lane] : 0.f;
  return warp_sum(v);
}

__device__ __forceinline__ float sigmoid(float y) { return 1.f / (1.f + expf(-y)); }

__device__ __forceinline__ float eval_gate(int c, float mu, float sd, const float* __restrict__ cfc,
                                           const float* __restrict__ gamma, const float* __restrict__ beta,
                                           const float* __restrict__ rmean, const float* __restrict__ rvar,
                                           float eps) {
  const float z = cfc[2 * c] * mu + cfc[2 * c + 1] * sd;
  return sigmoid(gamma[c] * (z - rmean[c]) / sqrtf(rvar[c] + eps) + beta[c]);
}

// ---- plane statistics ------------------------------------------------------

// warp_stats: lane l keeps x[l + 32k], k < R.
template <int R>
__device__ __forceinline__ void warp_stats(const float* __restrict__ xp, int L, float (&v)[R], float& mu,
                                           float& sd) {
  const int lane = threadIdx.x & 31;
  float s = 0.f;
#pragma unroll
  for (int k = 0; k < R; k++) {
    const int i = lane + 32 * k;
    v[k] = i < L ? xp[i] : 0.f;
    s += v[k];
  }
  mu = warp_sum(s) / (float)L;
  float q = 0.f;
#pragma unroll
  for (int k = 0; k < R; k++) {
    const float d = v[k] - mu;
    q += lane + 32 * k < L ? d * d : 0.f;
  }
  sd = sqrtf(warp_sum(q) / (float)(L - 1) + SRM_STD_EPS);
}

// block_stats: thread t keeps float4 number t + k*blockDim.x, k < R.
template <int R>
__device__ __forceinline__ void block_stats(const float4* __restrict__ xp, int L, float4 (&v)[R], float* sh,
                                            float& mu, float& sd) {
  const int t = threadIdx.x, T = blockDim.x, nv = L >> 2;
  float s = 0.f;
#pragma unroll
  for (int k = 0; k < R; k++) {
    if (t + k * T < nv) {
      v[k] = xp[t + k * T];
    } else {
      v[k].x = v[k].y = v[k].z = v[k].w = 0.f;
    }
    s += (v[k].x + v[k].y) + (v[k].z + v[k].w);
  }
  mu = block_sum(s, sh) / (float)L;
  float q = 0.f;
#pragma unroll
  for (int k = 0; k < R; k++) {
    if (t + k * T < nv) {
      const float a = v[k].x - mu, b = v[k].y - mu, c = v[k].z - mu, d = v[k].w - mu;
      q += (a * a + b * b) + (c * c + d * d);
    }
  }
  sd = sqrtf(block_sum(q, sh) / (float)(L - 1) + SRM_STD_EPS);
}

__device__ __forceinline__ void loop_stats(const float* __restrict__ xp, int L, float* sh, float& mu, float& sd) {
  const int t = threadIdx.x, T = blockDim.x;
  float s = 0.f;
  for (int i = t; i < L; i += T) s += xp[i];
  mu = block_sum(s, sh) / (float)L;
  float q = 0.f;
  for (int i = t; i < L; i += T) {
    const float d = xp[i] - mu;
    q += d * d;
  }
  sd = sqrtf(block_sum(q, sh) / (float)(L - 1) + SRM_STD_EPS);
}

// ---- eval forward: statistics, gate and scaling in one read of x ------------

#define EVAL_PARAMS                                                                                          \
  const float *__restrict__ x, float *__restrict__ out, const float *__restrict__ cfc,                     \
      const float *__restrict__ gamma, const float *__restrict__ beta, const float *__restrict__ rmean,    \
      const float *__restrict__ rvar, float eps, int C, int L, int P
#define EVAL_ARGS x, out, cfc, gamma, beta, rmean, rvar, eps, C, L, P

template <int R>
__device__ __forceinline__ void eval_warp(EVAL_PARAMS) {
  const int p = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
  if (p >= P) return;  // the whole warp leaves together
  const long long off = (long long)p * L;
  float v[R];
  float mu, sd;
  warp_stats<R>(x + off, L, v, mu, sd);
  const float g = eval_gate(p % C, mu, sd, cfc, gamma, beta, rmean, rvar, eps);
  const int lane = threadIdx.x & 31;
#pragma unroll
  for (int k = 0; k < R; k++) {
    const int i = lane + 32 * k;
    if (i < L) out[off + i] = v[k] * g;
  }
}

template <int R>
__device__ __forceinline__ void eval_block(EVAL_PARAMS) {
  __shared__ float sh[32];
  const int p = blockIdx.x;
  if (p >= P) return;  // the whole block leaves together
  const long long off = (long long)p * L;
  float4 v[R];
  float mu, sd;
  block_stats<R>((const float4*)(x + off), L, v, sh, mu, sd);
  const float g = eval_gate(p % C, mu, sd, cfc, gamma, beta, rmean, rvar, eps);
  float4* o = (float4*)(out + off);
  const int t = threadIdx.x, T = blockDim.x, nv = L >> 2;
#pragma unroll
  for (int k = 0; k < R; k++) {
    if (t + k * T < nv) {
      float4 w = v[k];
      w.x *= g;
      w.y *= g;
      w.z *= g;
      w.w *= g;
      o[t + k * T] = w;
    }
  }
}

extern "C" __global__ void __launch_bounds__(256) srm_eval_loop(EVAL_PARAMS) {
  __shared__ float sh[32];
  const int p = blockIdx.x;
  if (p >= P) return;
  const long long off = (long long)p * L;
  float mu, sd;
  loop_stats(x + off, L, sh, mu, sd);
  const float g = eval_gate(p % C, mu, sd, cfc, gamma, beta, rmean, rvar, eps);
  for (int i = threadIdx.x; i < L; i += blockDim.x) out[off + i] = x[off + i] * g;
}

// ---- training forward, pass 1: per-plane mean and std ----------------------

#define STATS_PARAMS const float *__restrict__ x, float *__restrict__ mean, float *__restrict__ std, int L, int P
#define STATS_ARGS x, mean, std, L, P

template <int R>
__device__ __forceinline__ void stats_warp(STATS_PARAMS) {
  const int p = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
  if (p >= P) return;
  float v[R];
  float mu, sd;
  warp_stats<R>(x + (long long)p * L, L, v, mu, sd);
  if ((threadIdx.x & 31) == 0) {
    mean[p] = mu;
    std[p] = sd;
  }
}

template <int R>
__device__ __forceinline__ void stats_block(STATS_PARAMS) {
  __shared__ float sh[32];
  const int p = blockIdx.x;
  if (p >= P) return;
  float4 v[R];
  float mu, sd;
  block_stats<R>((const float4*)(x + (long long)p * L), L, v, sh, mu, sd);
  if (threadIdx.x == 0) {
    mean[p] = mu;
    std[p] = sd;
  }
}

extern "C" __global__ void __launch_bounds__(256) srm_stats_loop(STATS_PARAMS) {
  __shared__ float sh[32];
  const int p = blockIdx.x;
  if (p >= P) return;
  float mu, sd;
  loop_stats(x + (long long)p * L, L, sh, mu, sd);
  if (threadIdx.x == 0) {
    mean[p] = mu;
    std[p] = sd;
  }
}

#define SRM_PLANE_KERNELS(R)                                                                                        \
  extern "C" __global__ void __launch_bounds__(256) srm_eval_warp##R(EVAL_PARAMS) { eval_warp<R>(EVAL_ARGS); }    \
  extern "C" __global__ void __launch_bounds__(256) srm_eval_block##R(EVAL_PARAMS) { eval_block<R>(EVAL_ARGS); }  \
  extern "C" __global__ void __launch_bounds__(256) srm_stats_warp##R(STATS_PARAMS) { stats_warp<R>(STATS_ARGS); } \
  extern "C" __global__ void __launch_bounds__(256) srm_stats_block##R(STATS_PARAMS) { stats_block<R>(STATS_ARGS); }

SRM_PLANE_KERNELS(1)
SRM_PLANE_KERNELS(2)
SRM_PLANE_KERNELS(4)
SRM_PLANE_KERNELS(8)

// ---- training forward, per channel: CFC, batch BN, gate ---------------------
// One warp per channel, lanes striding over the batch, in double: the batch
// variance of z subtracts nearly equal numbers, and this step is tiny.
// Saves zh (per plane) and r (per channel) for the backward pass.

extern "C" __global__ void __launch_bounds__(256)
    srm_train_gate(const float* __restrict__ mean, const float* __restrict__ std, const float* __restrict__ cfc,
                   const float* __restrict__ gamma, const float* __restrict__ beta, float* __restrict__ rmean,
                   float* __restrict__ rvar, float* __restrict__ gate, float* __restrict__ zhat,
                   float* __restrict__ rstd, float eps, float momentum, int N, int C) {
  const int c = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
  if (c >= C) return;
  const int lane = threadIdx.x & 31;
  const double a = cfc[2 * c], b = cfc[2 * c + 1];
  double s = 0.0;
  for (int n = lane; n < N; n += 32) s += a * mean[n * C + c] + b * std[n * C + c];
  const double m = warp_sum_d(s) / N;
  double q = 0.0;
  for (int n = lane; n < N; n += 32) {
    const double d = a * mean[n * C + c] + b * std[n * C + c] - m;
    q += d * d;
  }
  const double v = warp_sum_d(q) / N;
  const double r = 1.0 / sqrt(v + (double)eps);
  const double gm = gamma[c], bt = beta[c];
  for (int n = lane; n < N; n += 32) {
    const int p = n * C + c;
    const double zh = (a * mean[p] + b * std[p] - m) * r;
    zhat[p] = (float)zh;
    gate[p] = (float)(1.0 / (1.0 + exp(-(gm * zh + bt))));
  }
  if (lane == 0) {
    const double mo = momentum;
    rmean[c] = (float)((1.0 - mo) * rmean[c] + mo * m);
    rvar[c] = (float)((1.0 - mo) * rvar[c] + mo * v * N / (N - 1));
    rstd[c] = (float)r;
  }
}

// ---- training forward, pass 2: out = x * g ----------------------------------

extern "C" __global__ void __launch_bounds__(256)
    srm_scale_warp(const float* __restrict__ x, const float* __restrict__ gate, float* __restrict__ out, int L, int P) {
  const int p = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
  if (p >= P) return;
  const long long off = (long long)p * L;
  const float g = gate[p];
  for (int i = threadIdx.x & 31; i < L; i += 32) out[off + i] = x[off + i] * g;
}

extern "C" __global__ void __launch_bounds__(256)
    srm_scale_block(const float* __restrict__ x, const float* __restrict__ gate, float* __restrict__ out, int L, int P) {
  const int p = blockIdx.x;
  if (p >= P) return;
  const long long off = (long long)p * L;
  const float g = gate[p];
  if ((L & 3) == 0) {
    const float4* xv = (const float4*)(x + off);
    float4* ov = (float4*)(out + off);
#pragma unroll 4
    for (int i = threadIdx.x; i < (L >> 2); i += blockDim.x) {
      float4 w = xv[i];
      w.x *= g;
      w.y *= g;
      w.z *= g;
      w.w *= g;
      ov[i] = w;
    }
  } else {
    for (int i = threadIdx.x; i < L; i += blockDim.x) out[off + i] = x[off + i] * g;
  }
}

// ---- backward, pass 1: S_p = sum_i G_pi x_pi ---------------------------------

extern "C" __global__ void __launch_bounds__(256)
    srm_bwd_dot_warp(const float* __restrict__ x, const float* __restrict__ dout, float* __restrict__ dot, int L, int P) {
  const int p = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
  if (p >= P) return;
  const long long off = (long long)p * L;
  float s = 0.f;
  for (int i = threadIdx.x & 31; i < L; i += 32) s += dout[off + i] * x[off + i];
  s = warp_sum(s);
  if ((threadIdx.x & 31) == 0) dot[p] = s;
}

extern "C" __global__ void __launch_bounds__(256)
    srm_bwd_dot_block(const float* __restrict__ x, const float* __restrict__ dout, float* __restrict__ dot, int L, int P) {
  __shared__ float sh[32];
  const int p = blockIdx.x;
  if (p >= P) return;
  const long long off = (long long)p * L;
  float s = 0.f;
  if ((L & 3) == 0) {
    const float4* xv = (const float4*)(x + off);
    const float4* gv = (const float4*)(dout + off);
#pragma unroll 4
    for (int i = threadIdx.x; i < (L >> 2); i += blockDim.x) {
      const float4 a = xv[i], g = gv[i];
      s += (a.x * g.x + a.y * g.y) + (a.z * g.z + a.w * g.w);
    }
  } else {
    for (int i = threadIdx.x; i < L; i += blockDim.x) s += dout[off + i] * x[off + i];
  }
  s = block_sum(s, sh);
  if (threadIdx.x == 0) dot[p] = s;
}

// ---- backward, per channel: BN and CFC backward, dx coefficients ------------
// Writes (not accumulates) dcfc, dgamma and dbeta.

extern "C" __global__ void __launch_bounds__(256)
    srm_bwd_gate(const float* __restrict__ dot, const float* __restrict__ mean, const float* __restrict__ std,
                 const float* __restrict__ gate, const float* __restrict__ zhat, const float* __restrict__ rstd,
                 const float* __restrict__ cfc, const float* __restrict__ gamma, float* __restrict__ k0,
                 float* __restrict__ k2, float* __restrict__ dcfc, float* __restrict__ dgamma,
                 float* __restrict__ dbeta, int N, int C, int L) {
  const int c = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
  if (c >= C) return;
  const int lane = threadIdx.x & 31;
  double sdy = 0.0, sdyz = 0.0;
  for (int n = lane; n < N; n += 32) {
    const int p = n * C + c;
    const double g = gate[p];
    const double dy = dot[p] * g * (1.0 - g);
    sdy += dy;
    sdyz += dy * zhat[p];
  }
  sdy = warp_sum_d(sdy);
  sdyz = warp_sum_d(sdyz);
  const double gr = (double)gamma[c] * rstd[c];
  const double a = cfc[2 * c], b = cfc[2 * c + 1];
  double da = 0.0, db = 0.0;
  for (int n = lane; n < N; n += 32) {
    const int p = n * C + c;
    const double g = gate[p];
    const double dy = dot[p] * g * (1.0 - g);
    const double dz = gr * (dy - sdy / N - zhat[p] * sdyz / N);
    da += dz * mean[p];
    db += dz * std[p];
    k2[p] = (float)(b * dz / ((double)(L - 1) * std[p]));
    k0[p] = (float)(a * dz / L);
  }
  da = warp_sum_d(da);
  db = warp_sum_d(db);
  if (lane == 0) {
    dcfc[2 * c] = (float)da;
    dcfc[2 * c + 1] = (float)db;
    dgamma[c] = (float)sdyz;
    dbeta[c] = (float)sdy;
  }
}

// ---- backward, pass 2: dx = G g + k2 (x - mu) + k0 --------------------------

#define DX_PARAMS                                                                                       \
  const float *__restrict__ x, const float *__restrict__ dout, const float *__restrict__ gate,        \
      const float *__restrict__ mean, const float *__restrict__ k0, const float *__restrict__ k2,     \
      float *__restrict__ dx, int L, int P

extern "C" __global__ void __launch_bounds__(256) srm_bwd_dx_warp(DX_PARAMS) {
  const int p = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
  if (p >= P) return;
  const long long off = (long long)p * L;
  const float g = gate[p], mu = mean[p], c0 = k0[p], c2 = k2[p];
  for (int i = threadIdx.x & 31; i < L; i += 32) dx[off + i] = dout[off + i] * g + c2 * (x[off + i] - mu) + c0;
}

extern "C" __global__ void __launch_bounds__(256) srm_bwd_dx_block(DX_PARAMS) {
  const int p = blockIdx.x;
  if (p >= P) return;
  const long long off = (long long)p * L;
  const float g = gate[p], mu = mean[p], c0 = k0[p], c2 = k2[p];
  if ((L & 3) == 0) {
    const float4* xv = (const float4*)(x + off);
    const float4* gv = (const float4*)(dout + off);
    float4* dv = (float4*)(dx + off);
#pragma unroll 4
    for (int i = threadIdx.x; i < (L >> 2); i += blockDim.x) {
      const float4 a = xv[i], d = gv[i];
      float4 w;
      w.x = d.x * g + c2 * (a.x - mu) + c0;
      w.y = d.y * g + c2 * (a.y - mu) + c0;
      w.z = d.z * g + c2 * (a.z - mu) + c0;
      w.w = d.w * g + c2 * (a.w - mu) + c0;
      dv[i] = w;
    }
  } else {
    for (int i = threadIdx.x; i < L; i += blockDim.x) dx[off + i] = dout[off + i] * g + c2 * (x[off + i] - mu) + c0;
  }
}
