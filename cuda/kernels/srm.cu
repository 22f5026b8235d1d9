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
// Every plane kernel comes in three shapes, chosen on the host by L
// (cuda/srm.go, geometryFor):
//   *_warpR  : one warp per plane, 8 planes per block, each lane holding up
//              to R values (L <= 32 R); for small planes such as 7x7, where
//              a block per plane would leave most threads idle.
//   *_blockR : one block per plane, float4 accesses (L % 4 == 0), each
//              thread holding up to R float4s.
//   *_loop   : one block per plane, any L, looping over memory.
// In the warp and block shapes a thread issues all its loads before using
// any (R independent loads in flight, the latency paid once), and keeps the
// values in registers: the eval forward reads x exactly once, and the
// variance is computed from the mean over the registers (two passes, no
// cancellation; a one-pass sum of squares loses the variance when
// |mean| >> std). The loop shape reads x twice for the statistics.

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

// ---- element helpers, for a float or a float4 ------------------------------

__device__ __forceinline__ float hsum(float v) { return v; }
__device__ __forceinline__ float hsum(float4 v) { return (v.x + v.y) + (v.z + v.w); }
__device__ __forceinline__ float sqdev(float v, float m) { return (v - m) * (v - m); }
__device__ __forceinline__ float sqdev(float4 v, float m) {
  return (sqdev(v.x, m) + sqdev(v.y, m)) + (sqdev(v.z, m) + sqdev(v.w, m));
}
__device__ __forceinline__ float dotp(float a, float b) { return a * b; }
__device__ __forceinline__ float dotp(float4 a, float4 b) { return (a.x * b.x + a.y * b.y) + (a.z * b.z + a.w * b.w); }
__device__ __forceinline__ void zero(float& v) { v = 0.f; }
__device__ __forceinline__ void zero(float4& v) { v.x = v.y = v.z = v.w = 0.f; }
__device__ __forceinline__ float scale(float v, float g) { return v * g; }
__device__ __forceinline__ float4 scale(float4 v, float g) {
  v.x *= g;
  v.y *= g;
  v.z *= g;
  v.w *= g;
  return v;
}
// dx = G g + k2 (x - mu) + k0
__device__ __forceinline__ float dxval(float x, float G, float g, float mu, float k0, float k2) {
  return G * g + k2 * (x - mu) + k0;
}
__device__ __forceinline__ float4 dxval(float4 x, float4 G, float g, float mu, float k0, float k2) {
  float4 r;
  r.x = dxval(x.x, G.x, g, mu, k0, k2);
  r.y = dxval(x.y, G.y, g, mu, k0, k2);
  r.z = dxval(x.z, G.z, g, mu, k0, k2);
  r.w = dxval(x.w, G.w, g, mu, k0, k2);
  return r;
}

// ---- layouts: how the threads of a plane share it --------------------------

// WarpLayout: a warp per plane; lane l holds values l + 32k.
struct WarpLayout {
  typedef float T;
  __device__ static int plane() { return blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5); }
  __device__ static int slot(int k) { return (threadIdx.x & 31) + 32 * k; }
  __device__ static int slots(int L) { return L; }
  __device__ static float sum(float v, float*) { return warp_sum(v); }
  __device__ static bool leader() { return (threadIdx.x & 31) == 0; }
};

// BlockLayout: a block per plane; thread t holds float4s t + k*blockDim.x.
struct BlockLayout {
  typedef float4 T;
  __device__ static int plane() { return blockIdx.x; }
  __device__ static int slot(int k) { return threadIdx.x + k * blockDim.x; }
  __device__ static int slots(int L) { return L >> 2; }
  __device__ static float sum(float v, float* sh) { return block_sum(v, sh); }
  __device__ static bool leader() { return threadIdx.x == 0; }
};

// load issues the R loads of this thread's share of a plane (zeros past
// its end) before anything uses them.
template <class Lay, int R>
__device__ __forceinline__ void load(const typename Lay::T* __restrict__ src, int L, typename Lay::T (&v)[R]) {
#pragma unroll
  for (int k = 0; k < R; k++) {
    if (Lay::slot(k) < Lay::slots(L)) {
      v[k] = src[Lay::slot(k)];
    } else {
      zero(v[k]);
    }
  }
}

// stats computes a plane's mean and std from the values load fetched.
template <class Lay, int R>
__device__ __forceinline__ void stats(const typename Lay::T (&v)[R], int L, float* sh, float& mu, float& sd) {
  float s = 0.f;
#pragma unroll
  for (int k = 0; k < R; k++) s += hsum(v[k]);
  mu = Lay::sum(s, sh) / (float)L;
  float q = 0.f;
#pragma unroll
  for (int k = 0; k < R; k++) q += Lay::slot(k) < Lay::slots(L) ? sqdev(v[k], mu) : 0.f;
  sd = sqrtf(Lay::sum(q, sh) / (float)(L - 1) + SRM_STD_EPS);
}

__device__ __forceinline__ void loop_stats(const float* __restrict__ xp, int L, float* sh, float& mu, float& sd) {
  const int t = threadIdx.x, T = blockDim.x;
  float s = 0.f;
  for (int i = t; i < L; i += T) s += xp[i];
  mu = block_sum(s, sh) / (float)L;
  float q = 0.f;
  for (int i = t; i < L; i += T) q += sqdev(xp[i], mu);
  sd = sqrtf(block_sum(q, sh) / (float)(L - 1) + SRM_STD_EPS);
}

// ---- eval forward: statistics, gate and scaling in one read of x ------------

#define EVAL_PARAMS                                                                                       \
  const float *__restrict__ x, float *__restrict__ out, float *__restrict__ gates,                      \
      const float *__restrict__ cfc,                                                                    \
      const float *__restrict__ gamma, const float *__restrict__ beta, const float *__restrict__ rmean, \
      const float *__restrict__ rvar, float eps, int C, int L, int P
#define EVAL_ARGS x, out, gates, cfc, gamma, beta, rmean, rvar, eps, C, L, P

// EvalGate holds a channel's CFC and BN parameters, loaded when the kernel
// starts so that their latency hides behind the loads of x.
struct EvalGate {
  float a, b, gamma, beta, mean, var_eps;
  __device__ EvalGate(int c, const float* __restrict__ cfc, const float* __restrict__ gm,
                      const float* __restrict__ bt, const float* __restrict__ rmean,
                      const float* __restrict__ rvar, float eps)
      : a(cfc[2 * c]), b(cfc[2 * c + 1]), gamma(gm[c]), beta(bt[c]), mean(rmean[c]), var_eps(rvar[c] + eps) {}
  __device__ float operator()(float mu, float sd) const {
    return sigmoid(gamma * (a * mu + b * sd - mean) / sqrtf(var_eps) + beta);
  }
};

template <class Lay, int R>
__device__ __forceinline__ void eval_plane(EVAL_PARAMS) {
  __shared__ float sh[32];
  const int p = Lay::plane();
  if (p >= P) return;  // the whole warp (WarpLayout) or block leaves together
  const EvalGate gate(p % C, cfc, gamma, beta, rmean, rvar, eps);
  const long long off = (long long)p * L;
  typename Lay::T v[R];
  load<Lay, R>((const typename Lay::T*)(x + off), L, v);
  float mu, sd;
  stats<Lay, R>(v, L, sh, mu, sd);
  const float g = gate(mu, sd);
  if (gates && Lay::leader()) gates[p] = g;  // optional: analyses read them
  typename Lay::T* o = (typename Lay::T*)(out + off);
#pragma unroll
  for (int k = 0; k < R; k++)
    if (Lay::slot(k) < Lay::slots(L)) o[Lay::slot(k)] = scale(v[k], g);
}

extern "C" __global__ void __launch_bounds__(256) srm_eval_loop(EVAL_PARAMS) {
  __shared__ float sh[32];
  const int p = blockIdx.x;
  if (p >= P) return;
  const EvalGate gate(p % C, cfc, gamma, beta, rmean, rvar, eps);
  const long long off = (long long)p * L;
  float mu, sd;
  loop_stats(x + off, L, sh, mu, sd);
  const float g = gate(mu, sd);
  if (gates && threadIdx.x == 0) gates[p] = g;
  for (int i = threadIdx.x; i < L; i += blockDim.x) out[off + i] = x[off + i] * g;
}

// ---- training forward, pass 1: per-plane mean and std ----------------------

#define STATS_PARAMS const float *__restrict__ x, float *__restrict__ mean, float *__restrict__ sdev, int L, int P
#define STATS_ARGS x, mean, sdev, L, P

template <class Lay, int R>
__device__ __forceinline__ void stats_plane(STATS_PARAMS) {
  __shared__ float sh[32];
  const int p = Lay::plane();
  if (p >= P) return;
  typename Lay::T v[R];
  load<Lay, R>((const typename Lay::T*)(x + (long long)p * L), L, v);
  float mu, sd;
  stats<Lay, R>(v, L, sh, mu, sd);
  if (Lay::leader()) {
    mean[p] = mu;
    sdev[p] = sd;
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
    sdev[p] = sd;
  }
}

// ---- training forward, per channel: CFC, batch BN, gate ---------------------
// One warp per channel, lanes striding over the batch, in double: the batch
// variance of z subtracts nearly equal numbers, and this step is tiny.
// Saves zh (per plane) and r (per channel) for the backward pass.

extern "C" __global__ void __launch_bounds__(256)
    srm_train_gate(const float* __restrict__ mean, const float* __restrict__ sdev, const float* __restrict__ cfc,
                   const float* __restrict__ gamma, const float* __restrict__ beta, float* __restrict__ rmean,
                   float* __restrict__ rvar, float* __restrict__ gate, float* __restrict__ zhat,
                   float* __restrict__ rstd, float eps, float momentum, int N, int C) {
  const int c = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
  if (c >= C) return;
  const int lane = threadIdx.x & 31;
  const double a = cfc[2 * c], b = cfc[2 * c + 1];
  double s = 0.0;
  for (int n = lane; n < N; n += 32) s += a * mean[n * C + c] + b * sdev[n * C + c];
  const double m = warp_sum_d(s) / N;
  double q = 0.0;
  for (int n = lane; n < N; n += 32) {
    const double d = a * mean[n * C + c] + b * sdev[n * C + c] - m;
    q += d * d;
  }
  const double v = warp_sum_d(q) / N;
  const double r = 1.0 / sqrt(v + (double)eps);
  const double gm = gamma[c], bt = beta[c];
  for (int n = lane; n < N; n += 32) {
    const int p = n * C + c;
    const double zh = (a * mean[p] + b * sdev[p] - m) * r;
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

#define SCALE_PARAMS const float *__restrict__ x, const float *__restrict__ gate, float *__restrict__ out, int L, int P
#define SCALE_ARGS x, gate, out, L, P

template <class Lay, int R>
__device__ __forceinline__ void scale_plane(SCALE_PARAMS) {
  const int p = Lay::plane();
  if (p >= P) return;
  const float g = gate[p];
  const long long off = (long long)p * L;
  typename Lay::T v[R];
  load<Lay, R>((const typename Lay::T*)(x + off), L, v);
  typename Lay::T* o = (typename Lay::T*)(out + off);
#pragma unroll
  for (int k = 0; k < R; k++)
    if (Lay::slot(k) < Lay::slots(L)) o[Lay::slot(k)] = scale(v[k], g);
}

extern "C" __global__ void __launch_bounds__(256) srm_scale_loop(SCALE_PARAMS) {
  const int p = blockIdx.x;
  if (p >= P) return;
  const long long off = (long long)p * L;
  const float g = gate[p];
  if ((L & 3) == 0) {
    const float4* xv = (const float4*)(x + off);
    float4* ov = (float4*)(out + off);
#pragma unroll 4
    for (int i = threadIdx.x; i < (L >> 2); i += blockDim.x) ov[i] = scale(xv[i], g);
  } else {
    for (int i = threadIdx.x; i < L; i += blockDim.x) out[off + i] = x[off + i] * g;
  }
}

// ---- backward, pass 1: S_p = sum_i G_pi x_pi ---------------------------------

#define DOT_PARAMS const float *__restrict__ x, const float *__restrict__ dout, float *__restrict__ dot, int L, int P
#define DOT_ARGS x, dout, dot, L, P

template <class Lay, int R>
__device__ __forceinline__ void dot_plane(DOT_PARAMS) {
  __shared__ float sh[32];
  const int p = Lay::plane();
  if (p >= P) return;
  const long long off = (long long)p * L;
  typename Lay::T a[R], d[R];
  load<Lay, R>((const typename Lay::T*)(x + off), L, a);
  load<Lay, R>((const typename Lay::T*)(dout + off), L, d);
  float s = 0.f;
#pragma unroll
  for (int k = 0; k < R; k++) s += dotp(a[k], d[k]);
  s = Lay::sum(s, sh);
  if (Lay::leader()) dot[p] = s;
}

extern "C" __global__ void __launch_bounds__(256) srm_bwd_dot_loop(DOT_PARAMS) {
  __shared__ float sh[32];
  const int p = blockIdx.x;
  if (p >= P) return;
  const long long off = (long long)p * L;
  float s = 0.f;
  if ((L & 3) == 0) {
    const float4* xv = (const float4*)(x + off);
    const float4* gv = (const float4*)(dout + off);
#pragma unroll 4
    for (int i = threadIdx.x; i < (L >> 2); i += blockDim.x) s += dotp(xv[i], gv[i]);
  } else {
    for (int i = threadIdx.x; i < L; i += blockDim.x) s += dout[off + i] * x[off + i];
  }
  s = block_sum(s, sh);
  if (threadIdx.x == 0) dot[p] = s;
}

// ---- backward, per channel: BN and CFC backward, dx coefficients ------------
// Writes (not accumulates) dcfc, dgamma and dbeta.

extern "C" __global__ void __launch_bounds__(256)
    srm_bwd_gate(const float* __restrict__ dot, const float* __restrict__ mean, const float* __restrict__ sdev,
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
    db += dz * sdev[p];
    k2[p] = (float)(b * dz / ((double)(L - 1) * sdev[p]));
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

#define DX_PARAMS                                                                                   \
  const float *__restrict__ x, const float *__restrict__ dout, const float *__restrict__ gate,    \
      const float *__restrict__ mean, const float *__restrict__ k0, const float *__restrict__ k2, \
      float *__restrict__ dx, int L, int P
#define DX_ARGS x, dout, gate, mean, k0, k2, dx, L, P

template <class Lay, int R>
__device__ __forceinline__ void dx_plane(DX_PARAMS) {
  const int p = Lay::plane();
  if (p >= P) return;
  const float g = gate[p], mu = mean[p], c0 = k0[p], c2 = k2[p];
  const long long off = (long long)p * L;
  typename Lay::T a[R], d[R];
  load<Lay, R>((const typename Lay::T*)(x + off), L, a);
  load<Lay, R>((const typename Lay::T*)(dout + off), L, d);
  typename Lay::T* o = (typename Lay::T*)(dx + off);
#pragma unroll
  for (int k = 0; k < R; k++)
    if (Lay::slot(k) < Lay::slots(L)) o[Lay::slot(k)] = dxval(a[k], d[k], g, mu, c0, c2);
}

extern "C" __global__ void __launch_bounds__(256) srm_bwd_dx_loop(DX_PARAMS) {
  const int p = blockIdx.x;
  if (p >= P) return;
  const long long off = (long long)p * L;
  const float g = gate[p], mu = mean[p], c0 = k0[p], c2 = k2[p];
  if ((L & 3) == 0) {
    const float4* xv = (const float4*)(x + off);
    const float4* gv = (const float4*)(dout + off);
    float4* dv = (float4*)(dx + off);
#pragma unroll 4
    for (int i = threadIdx.x; i < (L >> 2); i += blockDim.x) dv[i] = dxval(xv[i], gv[i], g, mu, c0, c2);
  } else {
    for (int i = threadIdx.x; i < L; i += blockDim.x) dx[off + i] = dxval(x[off + i], dout[off + i], g, mu, c0, c2);
  }
}

// ---- entry points for the warp and block shapes -----------------------------

#define SRM_KERNEL(name, impl, PARAMS, ARGS, R)                                                           \
  extern "C" __global__ void __launch_bounds__(256) name##_warp##R(PARAMS) { impl<WarpLayout, R>(ARGS); } \
  extern "C" __global__ void __launch_bounds__(256) name##_block##R(PARAMS) { impl<BlockLayout, R>(ARGS); }
#define SRM_KERNELS(R)                                              \
  SRM_KERNEL(srm_eval, eval_plane, EVAL_PARAMS, EVAL_ARGS, R)       \
  SRM_KERNEL(srm_stats, stats_plane, STATS_PARAMS, STATS_ARGS, R)   \
  SRM_KERNEL(srm_scale, scale_plane, SCALE_PARAMS, SCALE_ARGS, R)   \
  SRM_KERNEL(srm_bwd_dot, dot_plane, DOT_PARAMS, DOT_ARGS, R)       \
  SRM_KERNEL(srm_bwd_dx, dx_plane, DX_PARAMS, DX_ARGS, R)

SRM_KERNELS(1)
SRM_KERNELS(2)
SRM_KERNELS(4)
SRM_KERNELS(8)
