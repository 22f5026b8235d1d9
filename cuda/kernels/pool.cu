// Pooling, nearest upsampling and the small SRM-specific kernels (style
// pooling, channel-wise fully connected layer, option-A shortcut), float32,
// NCHW, for cuda/pool.go and cuda/pool_srm.go. They agree with the CPU
// engine (op/pool.go, srm/stylepool.go, srm/cfc.go, srm/shortcut.go) value
// for value: same windows, same tie rules, sums in double where the CPU sums
// in float64.
//
// Built-ins as in srm.cu, plus atomicAdd(float*, float). Helpers carry a
// pool_ prefix: the CPU emulator compiles every kernel file into one
// translation unit.
//
// Windows. A pooling window is a span [lo, hi) per output row and per output
// column with the divisor of the average (op/pool.go's span), read from
// tables of int triples {lo, hi, div} that the host uploads once and keeps.
// The forward passes are one thread per output where windows are small and
// one warp or one block per output where they are large (global pooling of
// 7x7 or 56x56 planes): a thread looping alone over a whole plane would
// leave the memory system idle. The average and nearest-upsampling
// backward passes are gathers, one thread per input value summing the
// outputs whose windows hold it, listed in inverse tables (for each input
// row or column, the output rows or columns that read it; CSR form: in+1
// offsets, then the lists): no atomics, the same bits on every run, and dx
// can be accumulated into. Max pooling's backward scatters with atomicAdd:
// the argmax buffer is all it is given, so it cannot tell which outputs may
// pick an input, and overlapping windows can pick the same one.

#define POOL_FULL_MASK 0xffffffffu
#define POOL_STD_EPS 1e-5

// pool_split divides a flat index e by size: the quotient (a plane index,
// below 2^31: the host checks) and the remainder. 64-bit division is a long
// software routine, so it is taken only for tensors of 2^31 values or more.
__device__ __forceinline__ int pool_split(long long e, int size, int& rem) {
  if (e <= 0x7fffffff) {
    const int q = (int)e / size;
    rem = (int)e - q * size;
    return q;
  }
  const long long q = e / size;
  rem = (int)(e - q * size);
  return (int)q;
}

// ---- teams: how the threads share one output or one plane ------------------

// PoolThread: one thread per item.
struct PoolThread {
  __device__ static long long item() { return (long long)blockIdx.x * blockDim.x + threadIdx.x; }
  __device__ static int rank() { return 0; }
  __device__ static int size() { return 1; }
  __device__ static double sum(double v, double*) { return v; }
  __device__ static bool leader() { return true; }
};

__device__ __forceinline__ double pool_warp_sum(double v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(POOL_FULL_MASK, v, o);
  return v;
}

// PoolWarp: one warp per item, eight items per block of 256.
struct PoolWarp {
  __device__ static long long item() { return (long long)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5); }
  __device__ static int rank() { return threadIdx.x & 31; }
  __device__ static int size() { return 32; }
  __device__ static double sum(double v, double*) { return pool_warp_sum(v); }
  __device__ static bool leader() { return (threadIdx.x & 31) == 0; }
};

// PoolBlock: one block per item. Its sum returns the total to every thread;
// each warp reduces the per-warp partials itself, in the same order, so all
// get the same bits; the first barrier keeps a previous call's readers
// ahead of this call's writers.
struct PoolBlock {
  __device__ static long long item() { return blockIdx.x; }
  __device__ static int rank() { return threadIdx.x; }
  __device__ static int size() { return blockDim.x; }
  __device__ static double sum(double v, double* sh) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    v = pool_warp_sum(v);
    __syncthreads();
    if (lane == 0) sh[warp] = v;
    __syncthreads();
    v = lane < (int)(blockDim.x >> 5) ? sh[lane] : 0.0;
    return pool_warp_sum(v);
  }
  __device__ static bool leader() { return threadIdx.x == 0; }
};

// ---- average pooling (and nearest upsampling's backward) --------------------

#define AVG_PARAMS                                                                                     \
  const float *__restrict__ x, float *__restrict__ y, const int *__restrict__ rows,                  \
      const int *__restrict__ cols, int h, int w, int oh, int ow, long long total
#define AVG_ARGS x, y, rows, cols, h, w, oh, ow, total

// The window's sum in double, as op/pool.go sums it, then one division by
// the product of the divisors.
extern "C" __global__ void __launch_bounds__(256) pool_avg_thread(AVG_PARAMS) {
  const long long o = PoolThread::item();
  if (o >= total) return;
  int k;
  const float* xp = x + (long long)pool_split(o, oh * ow, k) * h * w;
  const int i = k / ow, j = k - i * ow;
  const int rlo = rows[3 * i], rhi = rows[3 * i + 1], clo = cols[3 * j], chi = cols[3 * j + 1];
  double s = 0.0;
  for (int r = rlo; r < rhi; r++)
    for (int c = clo; c < chi; c++) s += xp[r * w + c];
  y[o] = (float)(s / ((double)rows[3 * i + 2] * cols[3 * j + 2]));
}

// The team shares the window's values in row-major order: a whole 7x7 plane
// is two loads per lane rather than seven rows of seven.
template <class Team>
__device__ __forceinline__ void avg_team(AVG_PARAMS) {
  __shared__ double sh[32];
  const long long o = Team::item();
  if (o >= total) return;  // the whole warp or block leaves together
  int q;
  const float* xp = x + (long long)pool_split(o, oh * ow, q) * h * w;
  const int i = q / ow, j = q - i * ow;
  const int rlo = rows[3 * i], clo = cols[3 * j];
  const int rw = cols[3 * j + 1] - clo, n = (rows[3 * i + 1] - rlo) * rw;
  double s = 0.0;
  if (rw == w) {  // whole rows (global pooling): one contiguous run
    const float* run = xp + rlo * w;
#pragma unroll 4
    for (int k = Team::rank(); k < n; k += Team::size()) s += run[k];
  } else {
#pragma unroll 4
    for (int k = Team::rank(); k < n; k += Team::size()) {
      const int r = k / rw;
      s += xp[(rlo + r) * w + clo + (k - r * rw)];
    }
  }
  s = Team::sum(s, sh);
  if (Team::leader()) y[o] = (float)(s / ((double)rows[3 * i + 2] * cols[3 * j + 2]));
}

extern "C" __global__ void __launch_bounds__(256) pool_avg_warp(AVG_PARAMS) { avg_team<PoolWarp>(AVG_ARGS); }
extern "C" __global__ void __launch_bounds__(256) pool_avg_block(AVG_PARAMS) { avg_team<PoolBlock>(AVG_ARGS); }

// dx[p, r, c] (+)= sum over the outputs (i, j) whose windows hold (r, c) of
// dy[p, i, j] / (div_i div_j), each term rounded as op/pool.go rounds it.
// rinv and cinv are the inverse tables of rows and cols.
extern "C" __global__ void __launch_bounds__(256)
    pool_avg_bwd(const float* __restrict__ dy, float* __restrict__ dx, const int* __restrict__ rows,
                 const int* __restrict__ cols, const int* __restrict__ rinv, const int* __restrict__ cinv, int h,
                 int w, int oh, int ow, long long total, int accumulate) {
  const long long e = PoolThread::item();
  if (e >= total) return;
  int k;
  const float* g = dy + (long long)pool_split(e, h * w, k) * oh * ow;
  const int r = k / w, c = k - r * w;
  const int* rl = rinv + h + 1;
  const int* cl = cinv + w + 1;
  float s = 0.f;
  for (int a = rinv[r]; a < rinv[r + 1]; a++) {
    const int i = rl[a], rd = rows[3 * i + 2];
    for (int b = cinv[c]; b < cinv[c + 1]; b++) {
      const int j = cl[b];
      s += g[i * ow + j] / (float)(rd * cols[3 * j + 2]);
    }
  }
  dx[e] = accumulate ? dx[e] + s : s;
}

// Global pooling's backward pass, where the one window is the whole plane:
// dx[p, k] (+)= dy[p] / div, with div the product of the divisors as a
// float (as op/pool.go rounds it). The gather above would spend most of its
// time decoding indices; here a thread takes four consecutive values,
// which may straddle planes, and stores them as one float4 (the buffers
// are 256-byte aligned and 4t is a multiple of 4).
extern "C" __global__ void __launch_bounds__(256)
    pool_avg_bwd_global(const float* __restrict__ dy, float* __restrict__ dx, float div, int L, long long total,
                        int accumulate) {
  const long long e = 4 * PoolThread::item();
  if (e >= total) return;
  int k;
  int p = pool_split(e, L, k);
  float g = dy[p] / div;
  float v[4];
#pragma unroll
  for (int j = 0; j < 4; j++) {
    if (k == L && e + j < total) {
      p++;
      k = 0;
      g = dy[p] / div;
    }
    v[j] = g;
    k++;
  }
  if (e + 4 <= total) {
    float4* d = (float4*)(dx + e);
    float4 o;
    if (accumulate) {
      o = *d;
    } else {
      o.x = o.y = o.z = o.w = 0.f;
    }
    o.x += v[0];
    o.y += v[1];
    o.z += v[2];
    o.w += v[3];
    *d = o;
  } else {
#pragma unroll
    for (int j = 0; j < 4; j++)
      if (e + j < total) dx[e + j] = accumulate ? dx[e + j] + v[j] : v[j];
  }
}

// Nearest upsampling: y[p, i, j] = x[p, rsrc[i], csrc[j]].
extern "C" __global__ void __launch_bounds__(256)
    pool_upsample(const float* __restrict__ x, float* __restrict__ y, const int* __restrict__ rsrc,
                  const int* __restrict__ csrc, int h, int w, int oh, int ow, long long total) {
  const long long o = PoolThread::item();
  if (o >= total) return;
  int k;
  const long long p = pool_split(o, oh * ow, k);
  const int i = k / ow, j = k - i * ow;
  y[o] = x[p * h * w + rsrc[i] * w + csrc[j]];
}

// ---- max pooling ------------------------------------------------------------

// One thread per output; windows are a few values. op/pool.go's rule: scan
// the window row by row, a value replaces the best if it is greater or NaN
// (the first of equal maxima wins, the last NaN wins). Starting from the
// window's first value is the same as starting from -inf. The host refuses
// empty windows.
extern "C" __global__ void __launch_bounds__(256)
    pool_max(const float* __restrict__ x, float* __restrict__ y, int* __restrict__ argmax,
             const int* __restrict__ rows, const int* __restrict__ cols, int h, int w, int oh, int ow,
             long long total) {
  const long long o = PoolThread::item();
  if (o >= total) return;
  int k;
  const float* xp = x + (long long)pool_split(o, oh * ow, k) * h * w;
  const int i = k / ow, j = k - i * ow;
  const int rlo = rows[3 * i], rhi = rows[3 * i + 1], clo = cols[3 * j], chi = cols[3 * j + 1];
  int at = rlo * w + clo;
  float best = xp[at];
  for (int r = rlo; r < rhi; r++) {
    for (int c = clo; c < chi; c++) {
      const float v = xp[r * w + c];
      if (v > best || v != v) {
        best = v;
        at = r * w + c;
      }
    }
  }
  y[o] = best;
  argmax[o] = at;
}

// dx[p, argmax[p, o]] += dy[p, o], by atomicAdd (see the top of the file).
// An index outside the plane is skipped rather than written out of bounds.
extern "C" __global__ void __launch_bounds__(256)
    pool_max_bwd(const float* __restrict__ dy, const int* __restrict__ argmax, float* dx, int plane, int outPlane,
                 long long total) {
  const long long o = PoolThread::item();
  if (o >= total) return;
  const int a = argmax[o];
  int k;
  if (a >= 0 && a < plane) atomicAdd(dx + (long long)pool_split(o, outPlane, k) * plane + a, dy[o]);
}

extern "C" __global__ void __launch_bounds__(256) pool_zero(float* __restrict__ dst, long long n) {
  const long long i = PoolThread::item();
  if (i < n) dst[i] = 0.f;
}

// ---- SRM style pooling ------------------------------------------------------
// srm/stylepool.go: per plane of L values, in the order avg, std, max of the
// statistics mask selects (1 avg, 2 std, 4 max), mean m = sum/L, std =
// sqrt(sum (x-m)^2 / den + 1e-5) in two passes (den = L biased, L-1
// unbiased), max the first of equal maxima (a NaN wins only as the plane's
// first value: v > best never holds for NaN).

// pool_argmax reduces this thread's candidate (index -1 for none) over the
// team. The order (larger value, then smaller index) is total, so every
// thread ends with the same winner. The index rides a double shuffle: exact
// for any index, and the shims already provide it.
__device__ __forceinline__ void pool_better(float v, int i, float& bv, int& bi) {
  if (i >= 0 && (bi < 0 || v > bv || (v == bv && i < bi))) {
    bv = v;
    bi = i;
  }
}

__device__ __forceinline__ void pool_warp_argmax(float& bv, int& bi) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const float v = __shfl_xor_sync(POOL_FULL_MASK, bv, o);
    const int i = (int)__shfl_xor_sync(POOL_FULL_MASK, (double)bi, o);
    pool_better(v, i, bv, bi);
  }
}

template <class Team>
__device__ __forceinline__ void team_argmax(float& bv, int& bi, float* shv, int* shi);

template <>
__device__ __forceinline__ void team_argmax<PoolWarp>(float& bv, int& bi, float*, int*) {
  pool_warp_argmax(bv, bi);
}

template <>
__device__ __forceinline__ void team_argmax<PoolBlock>(float& bv, int& bi, float* shv, int* shi) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  pool_warp_argmax(bv, bi);
  __syncthreads();
  if (lane == 0) {
    shv[warp] = bv;
    shi[warp] = bi;
  }
  __syncthreads();
  bi = -1;
  if (lane < (int)(blockDim.x >> 5)) {
    bv = shv[lane];
    bi = shi[lane];
  }
  pool_warp_argmax(bv, bi);
}

// PoolStats is a plane's statistics as the CPU computes them.
struct PoolStats {
  double mean, std;
  int argmax;
};

template <class Team>
__device__ __forceinline__ PoolStats plane_stats(const float* __restrict__ xp, int L, int mask, int den, double* sh,
                                                 float* shv, int* shi) {
  PoolStats st{0.0, 0.0, 0};
  double s = 0.0;
  float bv = 0.f;
  int bi = -1;
#pragma unroll 4
  for (int i = Team::rank(); i < L; i += Team::size()) {  // the sum and the max in one pass
    const float v = xp[i];
    s += v;
    if ((mask & 4) && v == v) pool_better(v, i, bv, bi);
  }
  st.mean = Team::sum(s, sh) / L;
  if (mask & 2) {
    double q = 0.0;
#pragma unroll 4
    for (int i = Team::rank(); i < L; i += Team::size()) {
      const double d = xp[i] - st.mean;
      q += d * d;
    }
    st.std = sqrt(Team::sum(q, sh) / den + POOL_STD_EPS);
  }
  if (mask & 4) {
    team_argmax<Team>(bv, bi, shv, shi);
    st.argmax = xp[0] != xp[0] ? 0 : bi;
  }
  return st;
}

__device__ __forceinline__ int pool_stat_count(int mask) { return (mask & 1) + (mask >> 1 & 1) + (mask >> 2 & 1); }

#define STYLE_PARAMS const float *__restrict__ x, float *__restrict__ t, int P, int L, int mask, int den
#define STYLE_ARGS x, t, P, L, mask, den

template <class Team>
__device__ __forceinline__ void style_team(STYLE_PARAMS) {
  __shared__ double sh[32];
  __shared__ float shv[32];
  __shared__ int shi[32];
  const long long p = Team::item();
  if (p >= P) return;
  const float* xp = x + p * L;
  const PoolStats st = plane_stats<Team>(xp, L, mask, den, sh, shv, shi);
  if (!Team::leader()) return;
  float* tp = t + p * pool_stat_count(mask);
  if (mask & 1) *tp++ = (float)st.mean;
  if (mask & 2) *tp++ = (float)st.std;
  if (mask & 4) *tp = xp[st.argmax];
}

// The backward pass recomputes the statistics (the forward saved none), then
// writes dx = (dx) + (float)(gA + gS (x - m)) with gA = g_avg / L and gS =
// g_std / (den std), plus g_max at the argmax, in the CPU's order.
#define STYLE_BWD_PARAMS                                                                                   \
  const float *__restrict__ x, const float *__restrict__ dt, float *dx, int P, int L, int mask, int den, \
      int accumulate
#define STYLE_BWD_ARGS x, dt, dx, P, L, mask, den, accumulate

template <class Team>
__device__ __forceinline__ void style_bwd_team(STYLE_BWD_PARAMS) {
  __shared__ double sh[32];
  __shared__ float shv[32];
  __shared__ int shi[32];
  const long long p = Team::item();
  if (p >= P) return;
  const float* xp = x + p * L;
  const PoolStats st = plane_stats<Team>(xp, L, mask, den, sh, shv, shi);
  const float* g = dt + p * pool_stat_count(mask);
  double ga = 0.0, gs = 0.0;
  float gm = 0.f;
  if (mask & 1) ga = (double)*g++ / L;
  if (mask & 2) gs = (double)*g++ / ((double)den * st.std);
  if (mask & 4) gm = *g;
  const bool lin = ga != 0.0 || gs != 0.0;
  float* dp = dx + p * L;
#pragma unroll 4
  for (int i = Team::rank(); i < L; i += Team::size()) {
    float v = accumulate ? dp[i] : 0.f;
    if (lin) v += (float)(ga + gs * ((double)xp[i] - st.mean));
    if ((mask & 4) && i == st.argmax) v += gm;
    dp[i] = v;
  }
}

extern "C" __global__ void __launch_bounds__(256) pool_style_warp(STYLE_PARAMS) { style_team<PoolWarp>(STYLE_ARGS); }
extern "C" __global__ void __launch_bounds__(256) pool_style_block(STYLE_PARAMS) { style_team<PoolBlock>(STYLE_ARGS); }
extern "C" __global__ void __launch_bounds__(256) pool_style_bwd_warp(STYLE_BWD_PARAMS) {
  style_bwd_team<PoolWarp>(STYLE_BWD_ARGS);
}
extern "C" __global__ void __launch_bounds__(256) pool_style_bwd_block(STYLE_BWD_PARAMS) {
  style_bwd_team<PoolBlock>(STYLE_BWD_ARGS);
}

// ---- SRM channel-wise fully connected layer ---------------------------------
// srm/cfc.go: z[n, c] = sum_j w[c, j] t[n, c, j] (+ b[c]), in double. A
// thread per (n, c) for SRM's K of 2 or 3, a warp for GE-theta's K = H*W.

#define CFC_PARAMS \
  const float *__restrict__ t, const float *__restrict__ w, const float *__restrict__ b, float *__restrict__ z, int C, int K, long long NC
#define CFC_ARGS t, w, b, z, C, K, NC

template <class Team>
__device__ __forceinline__ void cfc_team(CFC_PARAMS) {
  const long long p = Team::item();
  if (p >= NC) return;
  const int c = (int)p % C;  // p < N*C < 2^31: the host checks
  const float* tp = t + p * K;
  const float* wp = w + (long long)c * K;
  double s = 0.0;
#pragma unroll 4
  for (int j = Team::rank(); j < K; j += Team::size()) s += (double)wp[j] * tp[j];
  s = Team::sum(s, nullptr);
  if (!Team::leader()) return;
  if (b) s += b[c];
  z[p] = (float)s;
}

extern "C" __global__ void __launch_bounds__(256) pool_cfc_thread(CFC_PARAMS) { cfc_team<PoolThread>(CFC_ARGS); }
extern "C" __global__ void __launch_bounds__(256) pool_cfc_warp(CFC_PARAMS) { cfc_team<PoolWarp>(CFC_ARGS); }

// dt[n, c, j] (+)= dz[n, c] w[c, j], in float as the CPU.
extern "C" __global__ void __launch_bounds__(256)
    pool_cfc_bwd_t(const float* __restrict__ w, const float* __restrict__ dz, float* __restrict__ dt, int C, int K,
                   long long total, int accumulate) {
  const long long e = PoolThread::item();
  if (e >= total) return;
  int j;
  const int p = pool_split(e, K, j), c = p % C;
  const float v = dz[p] * w[(long long)c * K + j];
  dt[e] = accumulate ? dt[e] + v : v;
}

// Threads 0..C*K-1: dw[c, j] (+)= sum_n dz[n, c] t[n, c, j]; threads
// C*K..C*K+C-1: db[c] (+)= sum_n dz[n, c]. Sums in double over the batch,
// in order. dw or db may be null.
extern "C" __global__ void __launch_bounds__(256)
    pool_cfc_bwd_params(const float* __restrict__ t, const float* __restrict__ dz, float* __restrict__ dw,
                        float* __restrict__ db, int N, int C, int K, int accumulate) {
  const long long e = PoolThread::item(), CK = (long long)C * K;
  if (e < CK) {
    if (!dw) return;
    int j;
    const int c = pool_split(e, K, j);
    double s = 0.0;
    for (int n = 0; n < N; n++) {
      const long long p = (long long)n * C + c;
      s += (double)dz[p] * t[p * K + j];
    }
    dw[e] = accumulate ? dw[e] + (float)s : (float)s;
  } else if (e < CK + C) {
    if (!db) return;
    const int c = (int)(e - CK);
    double s = 0.0;
    for (int n = 0; n < N; n++) s += dz[(long long)n * C + c];
    db[c] = accumulate ? db[c] + (float)s : (float)s;
  }
}

// ---- option-A shortcut (srm/shortcut.go) ------------------------------------
// y[n, c, i, j] = c < Cin ? x[n, c, i s, j s] : 0, with y N x Cout x OH x OW;
// the backward pass is a gather over dx, one thread per input value.

extern "C" __global__ void __launch_bounds__(256)
    pool_subsample_pad(const float* __restrict__ x, float* __restrict__ y, int cin, int cout, int h, int w,
                       int oh, int ow, int stride, long long total) {
  const long long o = PoolThread::item();
  if (o >= total) return;
  int k;
  const int nc = pool_split(o, oh * ow, k), n = nc / cout, c = nc - n * cout;
  const int i = k / ow, j = k - i * ow;
  y[o] = c < cin ? x[(((long long)n * cin + c) * h + i * stride) * w + j * stride] : 0.f;
}

extern "C" __global__ void __launch_bounds__(256)
    pool_subsample_pad_bwd(const float* __restrict__ dy, float* __restrict__ dx, int cin, int cout, int h, int w,
                           int oh, int ow, int stride, long long total, int accumulate) {
  const long long e = PoolThread::item();
  if (e >= total) return;
  int k;
  const int nc = pool_split(e, h * w, k), n = nc / cin, ch = nc - n * cin;
  const int r = k / w, c = k - r * w;
  float v = 0.f;
  if (r % stride == 0 && c % stride == 0) v = dy[(((long long)n * cout + ch) * oh + r / stride) * ow + c / stride];
  dx[e] = accumulate ? dx[e] + v : v;
}
