// Fused kernels for the Style-based Recalibration Module (SRM; Lee, Kim and
// Nam, ICCV 2019, in the form of the official PyTorch code), float32, NCHW,
// and for the end of a residual block in training mode, the block tail
// out = ReLU(SRM(BN(x)) + short) (and ReLU(BN(x) + short) without SRM).
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
// The block tail. x is the block's last convolution's output; bn its
// BatchNorm (gamma_c, beta_c, eps, momentum); SRM as above (CFC weights
// w0_c, w1_c; its BatchNorm gamma2_c, beta2_c, eps2, momentum2), applied to
// y = BN(x), which is never written: BN's batch statistics follow from the
// plane moments of x, SRM's style from those of y = a x + b, so the whole
// tail is the passes of SRM's training kernels with other per-plane and
// per-channel arithmetic.
//
// Forward
//   per plane (one pass over x):  m_p = (1/L) sum_i x_pi,  q_p = sum_i (x_pi - m_p)^2
//   per channel (bn's batch statistics from the plane moments, exact):
//     mu_c  = (1/N) sum_n m_nc
//     var_c = ( sum_n q_nc + L sum_n (m_nc - mu_c)^2 ) / (N L)          biased
//     running_mean <- (1-mom) running_mean + mom mu_c
//     running_var  <- (1-mom) running_var  + mom var_c N L / (N L - 1)
//     r_c = 1/sqrt(var_c + eps),  a_c = gamma_c r_c,  b_c = beta_c - a_c mu_c   (BN(x) = a x + b)
//   per plane, the style of y = a x + b:
//     u_p = a_c m_p + b_c                                  mean of y
//     s_p = sqrt( a_c^2 q_p / (L-1) + 1e-5 )               unbiased std of y (official)
//     z_p = w0_c u_p + w1_c s_p                            CFC
//   per channel, SRM's BatchNorm over the batch:
//     mz_c = (1/N) sum_n z_nc,  vz_c = (1/N) sum_n (z_nc - mz_c)^2,  rz_c = 1/sqrt(vz_c + eps2)
//     running stats of SRM's BN as usual (vz N/(N-1) into running_var)
//     zh_p = (z_p - mz_c) rz_c,  g_p = sigmoid(gamma2_c zh_p + beta2_c)      the gate
//   per plane:  S_p = a_c g_p,  B_p = b_c g_p
//   out_pi = max(S_p x_pi + B_p + short_pi, 0)          (one pass: read x, short, write out)
//     computed as S_p (x_pi - m_p) + g_p u_p, centred on the plane mean (the same value:
//     S m + B = g (a m + b) = g u), so that a mean large against the spread does not cancel
//
// Backward, given D = dout
//   per plane (one pass): dr_pi = D_pi [out_pi > 0]  (written: it is short's gradient),
//                         P_p = sum_i dr_pi,  Qc_p = sum_i dr_pi (x_pi - m_p)
//     Qc is centred on the plane mean: Q_p = sum_i dr_pi x_pi = Qc_p + m_p P_p, and every use of Q
//     below is written with Qc and (m_p - mu_c), so that a mean large against the spread does not
//     cancel away the sums (the same reason BatchNorm's own statistics are shifted).
//   per channel c (sums over n):
//     dg_p  = a_c Q_p + b_c P_p = a_c Qc_p + u_p P_p
//     da_c  = sum_n g_p Q_p,   db_c = sum_n g_p P_p          (through S and B)
//     dh_p  = dg_p g_p (1 - g_p)
//     dgamma2_c = sum_n dh_p zh_p,  dbeta2_c = sum_n dh_p
//     dz_p  = gamma2_c rz_c ( dh_p - (1/N) sum_n dh_nc - zh_p (1/N) sum_n dh_nc zh_nc )
//     dw0_c = sum_n dz_p u_p,  dw1_c = sum_n dz_p s_p
//     du_p  = w0_c dz_p,  ds_p = w1_c dz_p
//     da_c += sum_n du_p m_p + sum_n ds_p a_c q_p / ((L-1) s_p)
//     db_c += sum_n du_p
//     dm_p  = a_c du_p                                   (direct, through u)
//     dq_p  = ds_p a_c^2 / (2 (L-1) s_p)                 (direct, through s)
//     through a = gamma r, b = beta - a mu:
//       dbeta_c = db_c,  dA_c = da_c - db_c mu_c,  dmu_c = -a_c db_c
//         (so dA_c = sum_n g_p (Qc_p + P_p (m_p - mu_c)) + sum_n du_p (m_p - mu_c) + sum_n ds_p a_c q_p / ((L-1) s_p))
//       dgamma_c = dA_c r_c,  dvar_c = -(1/2) dA_c gamma_c r_c^3
//     through mu and var (sum_n (m - mu) = 0 removes mu's own path from var):
//       dm_p += dmu_c / N + dvar_c 2 (m_p - mu_c) / N
//       dq_p += dvar_c / (N L)
//   per plane (one pass): dx_pi = S_p dr_pi + 2 dq_p (x_pi - m_p) + dm_p / L
//     (m's own dependence on x drops out of q since sum_i (x_pi - m_p) = 0)
// Without a gate (a plain block's BN + shortcut + ReLU) the same passes hold with g = 1 and no
// SRM: S_p = a_c, B_p = b_c, da_c = sum_n Q_p, db_c = sum_n P_p, dm_p = dq_p = 0 before the
// "through mu and var" step.
//
// The tail's passes are SRM's training passes with other arithmetic, and
// share their code: statistics (srm_tail_stats: m and q rather than mean
// and std), the per-channel kernel (srm_tail_fwd), the apply pass
// (srm_tail_apply: SRM's scaling with a bias, the shortcut and the ReLU),
// then backward the sums (srm_tail_bwd_sums: SRM's dot product with the
// ReLU's mask, the plain sum and dr written out), the per-channel kernel
// (srm_tail_bwd) and the dx pass (srm_tail_dx: SRM's, reading dr, or
// masking D again when dr was added into an existing gradient). Forward
// moves 4 maps (read x twice and short once, write out), backward 7
// (read D, out, x; write dr; read dr, x; write dx), the same for the SRM
// and the plain tail. The per-channel kernels recompute the channel's
// statistics from the plane moments (a loop over N in double), so nothing
// per channel is saved between the passes.
//
// Every plane kernel comes in three shapes, chosen on the host by L
// (cuda/srm.go, geometryFor):
//   *_gGfR, *_gGvR : a group of G lanes per plane (G a power of two, 2 to
//              32; 256/G planes per block), lane j holding values (f) or
//              float4s (v, L % 4 == 0) j + G k, k < R: planes of up to
//              G R values or float4s (256 at most), such as 7x7 (g16f4),
//              14x14 (g16v4), 28x28 and 32x32 (g32v8, forward passes). The
//              sums are shuffles within the group; g32fR is one warp per
//              plane.
//   *_blockR : one block per plane, float4 accesses (L % 4 == 0), each
//              thread holding up to R float4s (56x56: block4).
//   *_loop   : one block per plane, any L, looping over memory.
// In the group and block shapes a thread issues all its loads before using
// any (R independent loads in flight, the latency paid once), and keeps the
// values in registers: the eval forward reads x exactly once, and the
// variance is computed from the mean over the registers (two passes, no
// cancellation; a one-pass sum of squares loses the variance when
// |mean| >> std). The loop shape reads x twice for the statistics. The
// bandwidth a pass reaches is the bytes in flight over the memory's
// latency (Little's law), so geometryFor gives each lane 4 to 8 loads, as
// float4s where it can: a warp per 7x7 plane had 2 floats in flight a
// lane, a block per 28x28 plane one float4 a thread. The backward passes
// of 28x28 and 32x32 planes keep a block per plane: they hold two or
// three maps, and eight float4s of each a lane cost more occupancy than
// the loads in flight gain (measured on an H200, docs/gpu).
//
// The second passes (scaling/apply, dx) take rev: when set, the threads
// that would work on plane p work on plane P-1-p, so the first blocks,
// which start first, take the last planes: the pass starts on the data the
// first pass read last, which may still be in L2 (60 MB on an H200, a good
// part of a 28x28 or 56x56 map). The order changes which thread computes a
// plane, not how: the results are the same bits.
//
// Each pass is one device function with every input the SRM and the tail
// variants need; an SRM entry point passes constants (null pointers, 0
// flags) for the tail's, and, the function being inlined, the compiler
// drops the work they switch off: SRM's kernels carry none of the tail's.

#define SRM_STD_EPS 1e-5f

// pdl_enter opens every kernel of this file. Under programmatic dependent
// launch (sm_90; Device.SetPDL) the host lets such a kernel start while the
// one before it in the stream drains: it first lets the kernel after it do
// the same (launch_dependents, once every block has started), then waits
// until the one before it has finished and its writes are visible (wait),
// before it touches memory. Launched the ordinary way, both instructions
// do nothing.
__device__ __forceinline__ void pdl_enter() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

// SRM_ENTRY defines a kernel of this file, with the parameters after body:
// each opens with pdl_enter, as the host's programmatic dependent launches
// need (ptxcheck.sh checks every entry point). body is one statement; put
// one with a comma outside parentheses (a template's arguments) in
// parentheses.
#define SRM_ENTRY(name, body, ...)                                          \
  extern "C" __global__ void __launch_bounds__(256) name(__VA_ARGS__) { \
    pdl_enter();                                                            \
    body;                                                                   \
  }
#define FULL_MASK 0xffffffffu

// group_sum returns the sum of v over an aligned group of G lanes (G a
// power of two up to 32) to each of them: the butterfly's partners lie
// within the group. Every lane of the warp must take part (FULL_MASK).
template <int G, class F>
__device__ __forceinline__ F group_sum(F v) {
#pragma unroll
  for (int o = G / 2; o > 0; o >>= 1) v += __shfl_xor_sync(FULL_MASK, v, o);
  return v;
}

__device__ __forceinline__ float warp_sum(float v) { return group_sum<32>(v); }
__device__ __forceinline__ double warp_sum_d(double v) { return group_sum<32>(v); }

// block_sum returns the sum of v over the block to every thread, in float
// or in double (the backward pass's plane sums). blockDim.x is a multiple
// of 32 (the host guarantees it). Each warp reduces the per-warp partials
// itself, in the same order, so all threads get the same bits without a
// third barrier; the first barrier keeps a previous call's readers ahead of
// this call's writers.
template <class F>
__device__ __forceinline__ F block_sum(F v, F* sh) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = group_sum<32>(v);
  __syncthreads();
  if (lane == 0) sh[warp] = v;
  __syncthreads();
  v = lane < (int)(blockDim.x >> 5) ? sh[lane] : F(0);
  return group_sum<32>(v);
}

__device__ __forceinline__ float sigmoid(float y) { return 1.f / (1.f + expf(-y)); }
__device__ __forceinline__ double sigmoid_d(double y) { return 1.0 / (1.0 + exp(-y)); }

// spread is a plane's std from its sum of squared deviations q.
__device__ __forceinline__ float spread(float q, int L) { return sqrtf(q / (float)(L - 1) + SRM_STD_EPS); }

// ---- element helpers, for a float or a float4 ------------------------------

__device__ __forceinline__ float hsum(float v) { return v; }
__device__ __forceinline__ float hsum(float4 v) { return (v.x + v.y) + (v.z + v.w); }
__device__ __forceinline__ float sqdev(float v, float m) { return (v - m) * (v - m); }
__device__ __forceinline__ float sqdev(float4 v, float m) {
  return (sqdev(v.x, m) + sqdev(v.y, m)) + (sqdev(v.z, m) + sqdev(v.w, m));
}
// The backward pass's plane sums, Σ dout and Σ (x − m)·dout (SRM's dot
// product is m = 0), in double:
// they cancel (a gate's gradient is the dot product of a feature map with
// its gradient), and SRM's BatchNorm over a small batch magnifies what is
// left, so float sums lost digits the CPU engine, summing in double, keeps.
__device__ __forceinline__ double hsum_d(float v) { return v; }
__device__ __forceinline__ double hsum_d(float4 v) { return ((double)v.x + v.y) + ((double)v.z + v.w); }
__device__ __forceinline__ double dotc_d(float a, float b, double m) { return ((double)a - m) * b; }
__device__ __forceinline__ double dotc_d(float4 a, float4 b, double m) {
  return (dotc_d(a.x, b.x, m) + dotc_d(a.y, b.y, m)) + (dotc_d(a.z, b.z, m) + dotc_d(a.w, b.w, m));
}
__device__ __forceinline__ void zero(float& v) { v = 0.f; }
__device__ __forceinline__ void zero(float4& v) { v.x = v.y = v.z = v.w = 0.f; }
__device__ __forceinline__ float add(float a, float b) { return a + b; }
__device__ __forceinline__ float4 add(float4 a, float4 b) {
  a.x += b.x;
  a.y += b.y;
  a.z += b.z;
  a.w += b.w;
  return a;
}
// The gradient a ReLU lets through: g where its output o passed (o > 0),
// exactly 0 elsewhere.
__device__ __forceinline__ float passed(float g, float o) { return o > 0.f ? g : 0.f; }
__device__ __forceinline__ float4 passed(float4 g, float4 o) {
  g.x = passed(g.x, o.x);
  g.y = passed(g.y, o.y);
  g.z = passed(g.z, o.z);
  g.w = passed(g.w, o.w);
  return g;
}
__device__ __forceinline__ float scale(float v, float g) { return v * g; }
__device__ __forceinline__ float4 scale(float4 v, float g) {
  v.x *= g;
  v.y *= g;
  v.z *= g;
  v.w *= g;
  return v;
}
// v g (SRM), or the tail's max((v - m) g + b + r, 0).
__device__ __forceinline__ float affine(float v, float g, float m, float b, float r, bool tail) {
  if (!tail) return scale(v, g);
  const float o = (v - m) * g + b + r;
  return o > 0.f ? o : 0.f;
}
__device__ __forceinline__ float4 affine(float4 v, float g, float m, float b, float4 r, bool tail) {
  v.x = affine(v.x, g, m, b, r.x, tail);
  v.y = affine(v.y, g, m, b, r.y, tail);
  v.z = affine(v.z, g, m, b, r.z, tail);
  v.w = affine(v.w, g, m, b, r.w, tail);
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

// at views plane memory from offset off as T; opt keeps a null pointer
// (an optional input or output) null.
template <class T>
__device__ __forceinline__ const T* at(const float* b, long long off) {
  return (const T*)(b + off);
}
template <class T>
__device__ __forceinline__ T* at(float* b, long long off) {
  return (T*)(b + off);
}
template <class T>
__device__ __forceinline__ const T* opt(const float* b, long long off) {
  return b ? at<T>(b, off) : nullptr;
}
template <class T>
__device__ __forceinline__ T* opt(float* b, long long off) {
  return b ? at<T>(b, off) : nullptr;
}

// ---- layouts: how the threads of a plane share it --------------------------

// GroupLayout: G lanes per plane (G a power of two, 2 to 32: a group lies
// within a warp, and its sums are shuffles within the group), 32/G planes
// per warp, 256/G per block; lane j of a group holds values (V = float) or
// float4s (V = float4, L % 4 == 0) j + G k. G = 32 with floats is one warp
// per plane.
template <int G, class V>
struct GroupLayout {
  typedef V T;
  __device__ static int plane() { return blockIdx.x * (blockDim.x / G) + threadIdx.x / G; }
  __device__ static int slot(int k) { return (threadIdx.x & (G - 1)) + G * k; }
  __device__ static int slots(int L) { return L / (int)(sizeof(V) / sizeof(float)); }
  __device__ static float sum(float v, float*) { return group_sum<G>(v); }
  __device__ static double sum(double v, double*) { return group_sum<G>(v); }
  __device__ static bool leader() { return (threadIdx.x & (G - 1)) == 0; }
};
template <int G>
using GroupF = GroupLayout<G, float>;
template <int G>
using GroupV = GroupLayout<G, float4>;

// BlockLayout: a block per plane; thread t holds float4s t + k*blockDim.x.
struct BlockLayout {
  typedef float4 T;
  __device__ static int plane() { return blockIdx.x; }
  __device__ static int slot(int k) { return threadIdx.x + k * blockDim.x; }
  __device__ static int slots(int L) { return L >> 2; }
  __device__ static float sum(float v, float* sh) { return block_sum(v, sh); }
  __device__ static double sum(double v, double* sh) { return block_sum(v, sh); }
  __device__ static bool leader() { return threadIdx.x == 0; }
};

// Work is the plane a thread works on and whether it owns it (writes its
// results); rev walks the planes from the last (see the top). The grid's
// last warp can hold groups past the last plane next to live ones, whose
// shuffles need every lane of the warp: such a group cannot return, so it
// works on the walk's last plane again, reading valid memory, and writes
// nothing.
struct Work {
  int p;
  bool live;
};
template <class Lay>
__device__ __forceinline__ Work work(int P, int rev) {
  const int q = Lay::plane();
  const bool live = q < P;
  const int i = live ? q : P - 1;
  return Work{rev ? P - 1 - i : i, live};
}

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

// load_opt is load for an optional input: zeros where src is null.
template <class Lay, int R>
__device__ __forceinline__ void load_opt(const typename Lay::T* __restrict__ src, int L, typename Lay::T (&v)[R]) {
  if (src) {
    load<Lay, R>(src, L, v);
  } else {
#pragma unroll
    for (int k = 0; k < R; k++) zero(v[k]);
  }
}

// store writes this thread's share of a plane, the slots load reads;
// nothing unless live.
template <class Lay, int R>
__device__ __forceinline__ void store(typename Lay::T* __restrict__ dst, int L, bool live,
                                      const typename Lay::T (&v)[R]) {
  if (!live) return;
#pragma unroll
  for (int k = 0; k < R; k++)
    if (Lay::slot(k) < Lay::slots(L)) dst[Lay::slot(k)] = v[k];
}

// moments computes a plane's mean and sum of squared deviations from the
// values load fetched.
template <class Lay, int R>
__device__ __forceinline__ void moments(const typename Lay::T (&v)[R], int L, float* sh, float& mu, float& q) {
  float s = 0.f;
#pragma unroll
  for (int k = 0; k < R; k++) s += hsum(v[k]);
  mu = Lay::sum(s, sh) / (float)L;
  float d = 0.f;
#pragma unroll
  for (int k = 0; k < R; k++) d += Lay::slot(k) < Lay::slots(L) ? sqdev(v[k], mu) : 0.f;
  q = Lay::sum(d, sh);
}

__device__ __forceinline__ void loop_moments(const float* __restrict__ xp, int L, float* sh, float& mu, float& q) {
  const int t = threadIdx.x, T = blockDim.x;
  float s = 0.f;
  for (int i = t; i < L; i += T) s += xp[i];
  mu = block_sum(s, sh) / (float)L;
  float d = 0.f;
  for (int i = t; i < L; i += T) d += sqdev(xp[i], mu);
  q = block_sum(d, sh);
}

// ---- eval forward: statistics, gate and scaling in one read of x ------------

#define EVAL_BODY                                                                                         \
  const float *__restrict__ x, float *__restrict__ out, float *__restrict__ gates,                      \
      const float *__restrict__ cfc,                                                                    \
      const float *__restrict__ gamma, const float *__restrict__ beta, const float *__restrict__ rmean, \
      const float *__restrict__ rvar, float eps, int C, int L
#define EVAL_PARAMS EVAL_BODY, int P
#define EVAL_ARGS x, out, gates, cfc, gamma, beta, rmean, rvar, eps, C, L

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
__device__ __forceinline__ void eval_plane(Work w, EVAL_BODY) {
  typedef typename Lay::T T;
  __shared__ float sh[32];
  const int p = w.p;
  const EvalGate gate(p % C, cfc, gamma, beta, rmean, rvar, eps);
  const long long off = (long long)p * L;
  T v[R];
  load<Lay, R>(at<T>(x, off), L, v);
  float mu, q;
  moments<Lay, R>(v, L, sh, mu, q);
  const float g = gate(mu, spread(q, L));
  if (gates && w.live && Lay::leader()) gates[p] = g;  // optional: analyses read them
#pragma unroll
  for (int k = 0; k < R; k++) v[k] = scale(v[k], g);
  store<Lay, R>(at<T>(out, off), L, w.live, v);
}

__device__ __forceinline__ void eval_loop(EVAL_PARAMS) {
  __shared__ float sh[32];
  const int p = blockIdx.x;
  if (p >= P) return;
  const EvalGate gate(p % C, cfc, gamma, beta, rmean, rvar, eps);
  const long long off = (long long)p * L;
  float mu, q;
  loop_moments(x + off, L, sh, mu, q);
  const float g = gate(mu, spread(q, L));
  if (gates && threadIdx.x == 0) gates[p] = g;
  for (int i = threadIdx.x; i < L; i += blockDim.x) out[off + i] = x[off + i] * g;
}

// ---- training forward, pass 1: per-plane mean, and std or q ----------------
// The second statistic is SRM's std (as_std), or the tail's sum of squared
// deviations q, from which its per-channel kernel derives the variances of
// x and y exactly.

#define STATS_PARAMS const float *__restrict__ x, float *__restrict__ mean, float *__restrict__ second, int L, int P
#define STATS_ARGS(as_std) x, mean, second, as_std, L

template <class Lay, int R>
__device__ __forceinline__ void stats_plane(Work w, const float* __restrict__ x, float* __restrict__ mean,
                                            float* __restrict__ second, bool as_std, int L) {
  typedef typename Lay::T T;
  __shared__ float sh[32];
  const int p = w.p;
  T v[R];
  load<Lay, R>(at<T>(x, (long long)p * L), L, v);
  float mu, q;
  moments<Lay, R>(v, L, sh, mu, q);
  if (w.live && Lay::leader()) {
    mean[p] = mu;
    second[p] = as_std ? spread(q, L) : q;
  }
}

__device__ __forceinline__ void stats_loop(const float* __restrict__ x, float* __restrict__ mean,
                                           float* __restrict__ second, bool as_std, int L, int P) {
  __shared__ float sh[32];
  const int p = blockIdx.x;
  if (p >= P) return;
  float mu, q;
  loop_moments(x + (long long)p * L, L, sh, mu, q);
  if (threadIdx.x == 0) {
    mean[p] = mu;
    second[p] = as_std ? spread(q, L) : q;
  }
}

// ---- per channel: batch statistics, gates and their gradients ---------------
// One warp per channel, lanes striding over the batch, in double: the batch
// variances subtract nearly equal numbers, and these steps are tiny. Each
// step is a device function (int c, PARAMS) of its channel c, which the
// per-channel kernel (below) runs on the grid's warp c (warp_channel).

// warp_channel is the channel of this warp in a per-channel kernel.
__device__ __forceinline__ int warp_channel() { return blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5); }

// batch_moments sets m and v to the mean and biased variance of f(p) over
// channel c's N planes p, two passes over the batch.
template <class F>
__device__ __forceinline__ void batch_moments(const F& f, int c, int N, int C, double& m, double& v) {
  const int lane = threadIdx.x & 31;
  double s = 0.0;
  for (int n = lane; n < N; n += 32) s += f(n * C + c);
  m = warp_sum_d(s) / N;
  double q = 0.0;
  for (int n = lane; n < N; n += 32) {
    const double d = f(n * C + c) - m;
    q += d * d;
  }
  v = warp_sum_d(q) / N;
}

// update_running moves a BatchNorm's running statistics toward the batch's
// mean m and biased variance v over count values; the variance goes in
// unbiased, as PyTorch's.
__device__ __forceinline__ void update_running(float* rmean, float* rvar, int c, float momentum, double m, double v,
                                               double count) {
  const double mo = momentum;
  rmean[c] = (float)((1.0 - mo) * rmean[c] + mo * m);
  rvar[c] = (float)((1.0 - mo) * rvar[c] + mo * v * count / (count - 1));
}

// put writes a parameter gradient, or adds it to the one there when acc.
__device__ __forceinline__ void put(float* d, int i, double v, int acc) {
  d[i] = acc ? (float)(d[i] + v) : (float)v;
}

// StyleZ is SRM's CFC output of a plane from its style statistics.
struct StyleZ {
  double a, b;
  const float *mean, *sdev;
  __device__ double operator()(int p) const { return a * mean[p] + b * sdev[p]; }
};

// Saves zh (per plane) and r (per channel) for the backward pass.
#define TRAIN_GATE_PARAMS                                                                         \
  const float *__restrict__ mean, const float *__restrict__ sdev, const float *__restrict__ cfc,  \
      const float *__restrict__ gamma, const float *__restrict__ beta, float *__restrict__ rmean, \
      float *__restrict__ rvar, float *__restrict__ gate, float *__restrict__ zhat,               \
      float *__restrict__ rstd, float eps, float momentum, int N, int C
#define TRAIN_GATE_ARGS mean, sdev, cfc, gamma, beta, rmean, rvar, gate, zhat, rstd, eps, momentum, N, C

__device__ __forceinline__ void train_gate_channel(int c, TRAIN_GATE_PARAMS) {
  const int lane = threadIdx.x & 31;
  const StyleZ z = {cfc[2 * c], cfc[2 * c + 1], mean, sdev};
  double m, v;
  batch_moments(z, c, N, C, m, v);
  const double r = 1.0 / sqrt(v + (double)eps);
  const double gm = gamma[c], bt = beta[c];
  for (int n = lane; n < N; n += 32) {
    const int p = n * C + c;
    const double zh = (z(p) - m) * r;
    zhat[p] = (float)zh;
    gate[p] = (float)sigmoid_d(gm * zh + bt);
  }
  if (lane == 0) {
    update_running(rmean, rvar, c, momentum, m, v, N);
    rstd[c] = (float)r;
  }
}

// Writes dcfc, dgamma and dbeta (overwrites, never accumulates), and the
// dx pass's k0 and k2.
#define BWD_GATE_PARAMS                                                                               \
  const float *__restrict__ dot, const float *__restrict__ mean, const float *__restrict__ sdev,      \
      const float *__restrict__ gate, const float *__restrict__ zhat, const float *__restrict__ rstd, \
      const float *__restrict__ cfc, const float *__restrict__ gamma, float *__restrict__ k0,         \
      float *__restrict__ k2, float *__restrict__ dcfc, float *__restrict__ dgamma,                   \
      float *__restrict__ dbeta, int N, int C, int L
#define BWD_GATE_ARGS dot, mean, sdev, gate, zhat, rstd, cfc, gamma, k0, k2, dcfc, dgamma, dbeta, N, C, L

// GateGrad is a channel's gradient through its gates' BatchNorm: dz of a
// plane, from the sums over the batch of dy and dy ẑ.
struct GateGrad {
  double gr, sdy, sdyz;
  int N;
  const float *dot, *gate, *zhat;
  __device__ double dy(int p) const {
    const double g = gate[p];
    return dot[p] * g * (1.0 - g);
  }
  __device__ double dz(int p) const { return gr * (dy(p) - sdy / N - zhat[p] * sdyz / N); }
};

__device__ __forceinline__ void bwd_gate_channel(int c, BWD_GATE_PARAMS) {
  const int lane = threadIdx.x & 31;
  GateGrad gg = {(double)gamma[c] * rstd[c], 0.0, 0.0, N, dot, gate, zhat};
  double sdy = 0.0, sdyz = 0.0;
  for (int n = lane; n < N; n += 32) {
    const int p = n * C + c;
    const double dy = gg.dy(p);
    sdy += dy;
    sdyz += dy * zhat[p];
  }
  gg.sdy = warp_sum_d(sdy);
  gg.sdyz = warp_sum_d(sdyz);
  const double a = cfc[2 * c], b = cfc[2 * c + 1];
  double da = 0.0, db = 0.0;
  for (int n = lane; n < N; n += 32) {
    const int p = n * C + c;
    const double dz = gg.dz(p);
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
    dgamma[c] = (float)gg.sdyz;
    dbeta[c] = (float)gg.sdy;
  }
}

// Values reads a per-plane array, for batch_moments.
struct Values {
  const float* v;
  __device__ double operator()(int p) const { return v[p]; }
};

// TailChannel is channel c of the block tail as both of its per-channel
// kernels derive it (see the maths at the top), in double, on every lane of
// the warp: from the plane moments m (mean) and q (m2), bn's statistics and
// its map BN(x) = a x + b; gated, SRM's CFC on the style of y and its
// BatchNorm's batch statistics; backward, from the sums of pass 1 (psum,
// dot), the gradient at the gates. Per-plane values are recomputed where
// needed rather than kept: N planes per lane at most, against a warp.
struct TailChannel {
  int N, L;
  const float *mean, *m2, *psum, *dot;
  double mu, var, r, a, b;                   // bn: batch mean, biased variance, 1/sqrt(var + eps)
  bool gated;                                // an SRM follows bn
  double w0, w1, gamma2, beta2, mz, vz, rz;  // SRM: CFC, BN weight and bias, batch statistics of z
  double sdh, sdhz;                          // backward: sum_n dh, sum_n dh zh

  __device__ double u(int p) const { return a * mean[p] + b; }
  __device__ double s(int p) const { return sqrt(a * a * m2[p] / (L - 1) + 1e-5); }
  __device__ double z(int p) const { return w0 * u(p) + w1 * s(p); }
  __device__ double operator()(int p) const { return z(p); }  // for batch_moments
  __device__ double zh(int p) const { return (z(p) - mz) * rz; }
  __device__ double gate(int p) const { return gated ? sigmoid_d(gamma2 * zh(p) + beta2) : 1.0; }
  // dh is the gradient at the gate's pre-activation, a Qc + u P through S and B.
  __device__ double dh(int p) const {
    const double g = gate(p);
    return (a * dot[p] + u(p) * psum[p]) * g * (1.0 - g);
  }
  __device__ double dz(int p) const { return gamma2 * rz * (dh(p) - sdh / N - zh(p) * sdhz / N); }
};

__device__ __forceinline__ TailChannel tail_channel(int c, const float* mean, const float* m2, const float* gamma,
                                                    const float* beta, const float* cfc, const float* gamma2,
                                                    const float* beta2, float eps, float eps2, int N, int C, int L) {
  TailChannel t{};
  t.N = N;
  t.L = L;
  t.mean = mean;
  t.m2 = m2;
  // var = sum q / (N L) + the batch variance of m: the plane moments' sum.
  double vm, q = 0.0;
  batch_moments(Values{mean}, c, N, C, t.mu, vm);
  for (int n = threadIdx.x & 31; n < N; n += 32) q += m2[n * C + c];
  t.var = vm + warp_sum_d(q) / ((double)N * L);
  t.r = 1.0 / sqrt(t.var + (double)eps);
  t.a = gamma[c] * t.r;
  t.b = beta[c] - t.a * t.mu;
  t.gated = cfc != nullptr;
  if (t.gated) {
    t.w0 = cfc[2 * c];
    t.w1 = cfc[2 * c + 1];
    t.gamma2 = gamma2[c];
    t.beta2 = beta2[c];
    batch_moments(t, c, N, C, t.mz, t.vz);
    t.rz = 1.0 / sqrt(t.vz + (double)eps2);
  }
  return t;
}

#define TAIL_CHANNEL_PARAMS                                                                                 \
  const float *__restrict__ mean, const float *__restrict__ m2, const float *__restrict__ gamma,          \
      const float *__restrict__ beta, const float *__restrict__ cfc, const float *__restrict__ gamma2,    \
      const float *__restrict__ beta2, float eps, float eps2
#define TAIL_CHANNEL_ARGS mean, m2, gamma, beta, cfc, gamma2, beta2, eps, eps2

// srm_tail_fwd: bn's batch statistics and running-statistics update, with
// cfc the gates and SRM's BatchNorm update (without, the gate is 1 and
// the SRM pointers are null), and the apply pass's per-plane gain S and
// bias g u. The apply pass centres x on the plane mean m, S (x - m) + g u
// being S x + B: a mean large against the plane's spread then does not
// cancel in float. gate, optional, keeps the gates for analyses.
#define TAIL_FWD_PARAMS                                                                                 \
  TAIL_CHANNEL_PARAMS, float *__restrict__ rmean, float *__restrict__ rvar, float *__restrict__ rmean2, \
      float *__restrict__ rvar2, float *__restrict__ gain, float *__restrict__ bias,                    \
      float *__restrict__ gate, float momentum, float momentum2, int N, int C, int L
#define TAIL_FWD_ARGS TAIL_CHANNEL_ARGS, rmean, rvar, rmean2, rvar2, gain, bias, gate, momentum, momentum2, N, C, L

__device__ __forceinline__ void tail_fwd_channel(int c, TAIL_FWD_PARAMS) {
  const int lane = threadIdx.x & 31;
  const TailChannel t = tail_channel(c, TAIL_CHANNEL_ARGS, N, C, L);
  for (int n = lane; n < N; n += 32) {
    const int p = n * C + c;
    const double g = t.gate(p);
    gain[p] = (float)(t.a * g);
    bias[p] = (float)(t.u(p) * g);
    if (gate) gate[p] = (float)g;
  }
  if (lane == 0) {
    update_running(rmean, rvar, c, momentum, t.mu, t.var, (double)N * L);
    if (t.gated) update_running(rmean2, rvar2, c, momentum2, t.mz, t.vz, N);
  }
}

// srm_tail_bwd: the parameter gradients (written, or added when acc) and
// the dx pass's per-plane k0 = dm/L and k2 = 2 dq, from pass 1's sums.
#define TAIL_BWD_PARAMS                                                                 \
  TAIL_CHANNEL_PARAMS, const float *__restrict__ psum, const float *__restrict__ dot,   \
      float *__restrict__ k0, float *__restrict__ k2, float *__restrict__ dgamma,       \
      float *__restrict__ dbeta, float *__restrict__ dcfc, float *__restrict__ dgamma2, \
      float *__restrict__ dbeta2, int acc, int N, int C, int L
#define TAIL_BWD_ARGS TAIL_CHANNEL_ARGS, psum, dot, k0, k2, dgamma, dbeta, dcfc, dgamma2, dbeta2, acc, N, C, L

__device__ __forceinline__ void tail_bwd_channel(int c, TAIL_BWD_PARAMS) {
  const int lane = threadIdx.x & 31;
  TailChannel t = tail_channel(c, TAIL_CHANNEL_ARGS, N, C, L);
  t.psum = psum;
  t.dot = dot;
  // Through S and B, and the gates' BatchNorm.
  double dA = 0.0, db = 0.0, sdh = 0.0, sdhz = 0.0;
  for (int n = lane; n < N; n += 32) {
    const int p = n * C + c;
    const double g = t.gate(p);
    dA += g * (dot[p] + psum[p] * (mean[p] - t.mu));
    db += g * psum[p];
    if (t.gated) {
      const double dh = t.dh(p);
      sdh += dh;
      sdhz += dh * t.zh(p);
    }
  }
  dA = warp_sum_d(dA);
  db = warp_sum_d(db);
  t.sdh = warp_sum_d(sdh);
  t.sdhz = warp_sum_d(sdhz);
  // Through the CFC into the style of y, u and s.
  double dw0 = 0.0, dw1 = 0.0;
  if (t.gated) {
    double dAs = 0.0, dbs = 0.0;
    for (int n = lane; n < N; n += 32) {
      const int p = n * C + c;
      const double dz = t.dz(p), du = t.w0 * dz, ds = t.w1 * dz;
      dw0 += dz * t.u(p);
      dw1 += dz * t.s(p);
      dAs += du * (mean[p] - t.mu) + ds * t.a * m2[p] / ((L - 1) * t.s(p));
      dbs += du;
    }
    dA += warp_sum_d(dAs);
    db += warp_sum_d(dbs);
    dw0 = warp_sum_d(dw0);
    dw1 = warp_sum_d(dw1);
  }
  // Through a = gamma r and b = beta - a mu into mu and var, then the plane moments.
  const double dvar = -0.5 * dA * gamma[c] * t.r * t.r * t.r, dmu = -t.a * db;
  for (int n = lane; n < N; n += 32) {
    const int p = n * C + c;
    double dm = (dmu + 2.0 * dvar * (mean[p] - t.mu)) / N, dq = dvar / ((double)N * L);
    if (t.gated) {
      const double dz = t.dz(p);
      dm += t.a * t.w0 * dz;
      dq += t.w1 * dz * t.a * t.a / (2.0 * (L - 1) * t.s(p));
    }
    k0[p] = (float)(dm / L);
    k2[p] = (float)(2.0 * dq);
  }
  if (lane == 0) {
    put(dgamma, c, dA * t.r, acc);
    put(dbeta, c, db, acc);
    if (t.gated) {
      put(dcfc, 2 * c, dw0, acc);
      put(dcfc, 2 * c + 1, dw1, acc);
      put(dgamma2, c, t.sdhz, acc);
      put(dbeta2, c, t.sdh, acc);
    }
  }
}

// ---- training forward, pass 2: out = x g, or the tail's output --------------
// SRM scales by its gates (gain; bias, mean and res null); the tail writes
// max(S (x - m) + B + short, 0) with S = gain, m the plane mean, B = bias
// = g u and short = res (see srm_tail_fwd).

#define SCALE_PARAMS \
  const float *__restrict__ x, const float *__restrict__ gate, float *__restrict__ out, int L, int P, int rev
#define SCALE_ARGS x, gate, nullptr, nullptr, nullptr, out, L
#define APPLY_BODY                                                                                  \
  const float *__restrict__ x, const float *__restrict__ gain, const float *__restrict__ bias,    \
      const float *__restrict__ mean, const float *__restrict__ res, float *__restrict__ out, int L
#define APPLY_PARAMS APPLY_BODY, int P, int rev
#define APPLY_ARGS x, gain, bias, mean, res, out, L

template <class Lay, int R>
__device__ __forceinline__ void apply_plane(Work w, APPLY_BODY) {
  typedef typename Lay::T T;
  const int p = w.p;
  const long long off = (long long)p * L;
  T v[R], r[R];
  load<Lay, R>(at<T>(x, off), L, v);
  load_opt<Lay, R>(opt<T>(res, off), L, r);
  const float g = gain[p], m = mean ? mean[p] : 0.f, b = bias ? bias[p] : 0.f;
#pragma unroll
  for (int k = 0; k < R; k++) v[k] = affine(v[k], g, m, b, r[k], res != nullptr);
  store<Lay, R>(at<T>(out, off), L, w.live, v);
}

// apply_run is the loop shape's pass over a plane. The loop shape's passes
// (*_run) take n floats or float4s, unrolled 4 times: a literal, the one
// form of #pragma unroll's argument that NVRTC and clang both take.
template <class T>
__device__ __forceinline__ void apply_run(const T* __restrict__ x, const T* __restrict__ res, T* __restrict__ out,
                                          int n, float g, float m, float b) {
  T none;
  zero(none);
#pragma unroll 4
  for (int i = threadIdx.x; i < n; i += blockDim.x) out[i] = affine(x[i], g, m, b, res ? res[i] : none, res != nullptr);
}

__device__ __forceinline__ void apply_loop(APPLY_PARAMS) {
  const Work w = work<BlockLayout>(P, rev);
  if (!w.live) return;
  const int p = w.p;
  const long long off = (long long)p * L;
  const float g = gain[p], b = bias ? bias[p] : 0.f, m = mean ? mean[p] : 0.f;
  if ((L & 3) == 0) {
    apply_run(at<float4>(x, off), opt<float4>(res, off), at<float4>(out, off), L >> 2, g, m, b);
  } else {
    apply_run(x + off, opt<float>(res, off), out + off, L, g, m, b);
  }
}

// ---- backward, pass 1: per-plane sums of the incoming gradient -------------
// SRM: dot_p = sum_i G_pi x_pi (out, mean, dr and psum null). The tail:
// dr = G [out > 0], written to dr (added to it when acc) unless that is
// null, psum_p = sum_i dr_pi and dot_p = sum_i dr_pi (x_pi - mean_p).

#define DOT_PARAMS const float *__restrict__ x, const float *__restrict__ dout, float *__restrict__ dot, int L, int P
#define DOT_ARGS x, dout, nullptr, nullptr, nullptr, 0, nullptr, dot, L
#define SUMS_BODY                                                                                        \
  const float *__restrict__ x, const float *__restrict__ dout, const float *__restrict__ out,           \
      const float *__restrict__ mean, float *__restrict__ dr, int acc, float *__restrict__ psum,       \
      float *__restrict__ dot, int L
#define SUMS_PARAMS SUMS_BODY, int P
#define SUMS_ARGS x, dout, out, mean, dr, acc, psum, dot, L

template <class Lay, int R>
__device__ __forceinline__ void sums_plane(Work w, SUMS_BODY) {
  typedef typename Lay::T T;
  __shared__ double sh[32];
  const int p = w.p;
  const float m = mean ? mean[p] : 0.f;
  const long long off = (long long)p * L;
  T a[R], d[R];
  load<Lay, R>(at<T>(x, off), L, a);
  load<Lay, R>(at<T>(dout, off), L, d);
  if (out) {
    T o[R];
    load<Lay, R>(at<T>(out, off), L, o);
#pragma unroll
    for (int k = 0; k < R; k++) d[k] = passed(d[k], o[k]);
    if (dr) {
      T* dst = at<T>(dr, off);
      if (acc) load<Lay, R>(dst, L, o);
#pragma unroll
      for (int k = 0; k < R; k++) o[k] = acc ? add(d[k], o[k]) : d[k];
      store<Lay, R>(dst, L, w.live, o);
    }
  }
  double s = 0, t = 0;
#pragma unroll
  for (int k = 0; k < R; k++) {
    s += hsum_d(d[k]);
    t += dotc_d(a[k], d[k], m);
  }
  if (psum) s = Lay::sum(s, sh);
  t = Lay::sum(t, sh);
  if (w.live && Lay::leader()) {
    if (psum) psum[p] = (float)s;
    dot[p] = (float)t;
  }
}

template <class T>
__device__ __forceinline__ void sums_run(const T* __restrict__ x, const T* __restrict__ dout, const T* __restrict__ out,
                                         T* __restrict__ dr, int acc, int n, double m, double& s, double& t) {
#pragma unroll 4
  for (int i = threadIdx.x; i < n; i += blockDim.x) {
    T d = dout[i];
    if (out) {
      d = passed(d, out[i]);
      if (dr) dr[i] = acc ? add(d, dr[i]) : d;
    }
    s += hsum_d(d);
    t += dotc_d(x[i], d, m);
  }
}

__device__ __forceinline__ void sums_loop(SUMS_PARAMS) {
  __shared__ double sh[32];
  const Work w = work<BlockLayout>(P, 0);
  if (!w.live) return;
  const int p = w.p;
  const float m = mean ? mean[p] : 0.f;
  const long long off = (long long)p * L;
  double s = 0, t = 0;
  if ((L & 3) == 0) {
    sums_run(at<float4>(x, off), at<float4>(dout, off), opt<float4>(out, off), opt<float4>(dr, off), acc, L >> 2, m, s,
             t);
  } else {
    sums_run(x + off, dout + off, opt<float>(out, off), opt<float>(dr, off), acc, L, m, s, t);
  }
  if (psum) s = block_sum(s, sh);
  t = block_sum(t, sh);
  if (threadIdx.x == 0) {
    if (psum) psum[p] = (float)s;
    dot[p] = (float)t;
  }
}

// ---- backward, pass 2: dx = G g + k2 (x - mu) + k0 --------------------------
// SRM: G = dout, g its gate. The tail: g = S, mean = m, and G = dr, read
// from dout when pass 1 wrote dr there, or masked again from dout by out
// when out is not null (dr went into an existing gradient); dx is added
// to when acc.

#define DX_PARAMS                                                                                   \
  const float *__restrict__ x, const float *__restrict__ dout, const float *__restrict__ gate,    \
      const float *__restrict__ mean, const float *__restrict__ k0, const float *__restrict__ k2, \
      float *__restrict__ dx, int L, int P, int rev
#define DX_ARGS x, dout, nullptr, gate, mean, k0, k2, dx, 0, L
#define TAIL_DX_BODY                                                                                      \
  const float *__restrict__ x, const float *__restrict__ dout, const float *__restrict__ out,           \
      const float *__restrict__ gate, const float *__restrict__ mean, const float *__restrict__ k0,     \
      const float *__restrict__ k2, float *__restrict__ dx, int acc, int L
#define TAIL_DX_PARAMS TAIL_DX_BODY, int P, int rev
#define TAIL_DX_ARGS x, dout, out, gate, mean, k0, k2, dx, acc, L

template <class Lay, int R>
__device__ __forceinline__ void dx_plane(Work w, TAIL_DX_BODY) {
  typedef typename Lay::T T;
  const int p = w.p;
  const long long off = (long long)p * L;
  T a[R], d[R], o[R];
  load<Lay, R>(at<T>(x, off), L, a);
  load<Lay, R>(at<T>(dout, off), L, d);
  if (out) {
    load<Lay, R>(at<T>(out, off), L, o);
#pragma unroll
    for (int k = 0; k < R; k++) d[k] = passed(d[k], o[k]);
  }
  if (acc) load<Lay, R>(at<T>(dx, off), L, o);
  const float g = gate[p], mu = mean[p], c0 = k0[p], c2 = k2[p];
#pragma unroll
  for (int k = 0; k < R; k++) {
    const T v = dxval(a[k], d[k], g, mu, c0, c2);
    a[k] = acc ? add(v, o[k]) : v;
  }
  store<Lay, R>(at<T>(dx, off), L, w.live, a);
}

template <class T>
__device__ __forceinline__ void dx_run(const T* __restrict__ x, const T* __restrict__ dout, const T* __restrict__ out,
                                       T* __restrict__ dx, int acc, int n, float g, float mu, float c0, float c2) {
#pragma unroll 4
  for (int i = threadIdx.x; i < n; i += blockDim.x) {
    const T d = out ? passed(dout[i], out[i]) : dout[i];
    const T v = dxval(x[i], d, g, mu, c0, c2);
    dx[i] = acc ? add(v, dx[i]) : v;
  }
}

__device__ __forceinline__ void dx_loop(TAIL_DX_PARAMS) {
  const Work w = work<BlockLayout>(P, rev);
  if (!w.live) return;
  const int p = w.p;
  const long long off = (long long)p * L;
  const float g = gate[p], mu = mean[p], c0 = k0[p], c2 = k2[p];
  if ((L & 3) == 0) {
    dx_run(at<float4>(x, off), at<float4>(dout, off), opt<float4>(out, off), at<float4>(dx, off), acc, L >> 2, g, mu, c0,
           c2);
  } else {
    dx_run(x + off, dout + off, opt<float>(out, off), dx + off, acc, L, g, mu, c0, c2);
  }
}

// ---- the layouts the host launches -----------------------------------------

// SRM_LAYOUTS lists every layout the host launches, as X(tag, layout, R):
// geometryFor's choices (gGf4 and gGv4 for planes of up to 128 values,
// g32f8 and g32v8 up to 256, blockR), and the former warp-per-plane
// choice (g32fR), which cuda-check times against them. The tag is the
// kernel name's suffix: g, the lanes per plane, f (float) or v (float4),
// R. cuda/srm.go builds the names; the emulator and ptxcheck.sh read this
// list.
#define SRM_LAYOUTS(X)                                                                                  \
  X(block1, BlockLayout, 1) X(block2, BlockLayout, 2) X(block4, BlockLayout, 4) X(block8, BlockLayout, 8) \
  X(g32f1, GroupF<32>, 1) X(g32f2, GroupF<32>, 2) X(g32f4, GroupF<32>, 4) X(g32f8, GroupF<32>, 8)         \
  X(g2f4, GroupF<2>, 4) X(g4f4, GroupF<4>, 4) X(g8f4, GroupF<8>, 4) X(g16f4, GroupF<16>, 4)               \
  X(g2v4, GroupV<2>, 4) X(g4v4, GroupV<4>, 4) X(g8v4, GroupV<8>, 4) X(g16v4, GroupV<16>, 4)               \
  X(g32v4, GroupV<32>, 4) X(g32v8, GroupV<32>, 8)

// ---- the per-channel steps -------------------------------------------------

#define PER_CHANNEL_KERNEL(name, step, PARAMS, ARGS) \
  SRM_ENTRY(name, const int c = warp_channel(); if (c < C) step(c, ARGS), PARAMS)
PER_CHANNEL_KERNEL(srm_train_gate, train_gate_channel, TRAIN_GATE_PARAMS, TRAIN_GATE_ARGS)
PER_CHANNEL_KERNEL(srm_bwd_gate, bwd_gate_channel, BWD_GATE_PARAMS, BWD_GATE_ARGS)
PER_CHANNEL_KERNEL(srm_tail_fwd, tail_fwd_channel, TAIL_FWD_PARAMS, TAIL_FWD_ARGS)
PER_CHANNEL_KERNEL(srm_tail_bwd, tail_bwd_channel, TAIL_BWD_PARAMS, TAIL_BWD_ARGS)

// ---- planes of any size: a block a plane, looping ---------------------------

SRM_ENTRY(srm_eval_loop, eval_loop(EVAL_ARGS, P), EVAL_PARAMS)
SRM_ENTRY(srm_stats_loop, stats_loop(STATS_ARGS(true), P), STATS_PARAMS)
SRM_ENTRY(srm_tail_stats_loop, stats_loop(STATS_ARGS(false), P), STATS_PARAMS)
SRM_ENTRY(srm_scale_loop, apply_loop(SCALE_ARGS, P, rev), SCALE_PARAMS)
SRM_ENTRY(srm_tail_apply_loop, apply_loop(APPLY_ARGS, P, rev), APPLY_PARAMS)
SRM_ENTRY(srm_bwd_dot_loop, sums_loop(DOT_ARGS, P), DOT_PARAMS)
SRM_ENTRY(srm_tail_bwd_sums_loop, sums_loop(SUMS_ARGS, P), SUMS_PARAMS)
SRM_ENTRY(srm_bwd_dx_loop, dx_loop(DX_ARGS, P, rev), DX_PARAMS)
SRM_ENTRY(srm_tail_dx_loop, dx_loop(TAIL_DX_ARGS, P, rev), TAIL_DX_PARAMS)

// ---- the group and block layouts ---------------------------------------------

#define SRM_KERNEL(name, impl, PARAMS, ARGS, order, tag, Lay, R) \
  SRM_ENTRY(name##_##tag, (impl<Lay, R>(work<Lay>(P, order), ARGS)), PARAMS)
#define SRM_KERNELS(tag, Lay, R)                                                           \
  SRM_KERNEL(srm_eval, eval_plane, EVAL_PARAMS, EVAL_ARGS, 0, tag, Lay, R)                 \
  SRM_KERNEL(srm_stats, stats_plane, STATS_PARAMS, STATS_ARGS(true), 0, tag, Lay, R)       \
  SRM_KERNEL(srm_scale, apply_plane, SCALE_PARAMS, SCALE_ARGS, rev, tag, Lay, R)           \
  SRM_KERNEL(srm_bwd_dot, sums_plane, DOT_PARAMS, DOT_ARGS, 0, tag, Lay, R)                \
  SRM_KERNEL(srm_bwd_dx, dx_plane, DX_PARAMS, DX_ARGS, rev, tag, Lay, R)                   \
  SRM_KERNEL(srm_tail_stats, stats_plane, STATS_PARAMS, STATS_ARGS(false), 0, tag, Lay, R) \
  SRM_KERNEL(srm_tail_apply, apply_plane, APPLY_PARAMS, APPLY_ARGS, rev, tag, Lay, R)      \
  SRM_KERNEL(srm_tail_bwd_sums, sums_plane, SUMS_PARAMS, SUMS_ARGS, 0, tag, Lay, R)        \
  SRM_KERNEL(srm_tail_dx, dx_plane, TAIL_DX_PARAMS, TAIL_DX_ARGS, rev, tag, Lay, R)

SRM_LAYOUTS(SRM_KERNELS)
