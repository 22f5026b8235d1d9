// General neural-network kernels, float32, NCHW: elementwise maps,
// per-plane gating, biases, BatchNorm (training and evaluation, forward and
// backward), softmax cross-entropy, SGD and a scan for NaN and Inf. The host
// side is cuda/nn*.go, which launches blocks of 256 threads throughout.
//
// Built-ins as in srm.cu, plus log (double). Everything lives in namespace nnk
// because the emulator (cuda/testdata/emu) compiles every kernel file into
// one program; kernels are extern "C" and named nn_*, so the namespace
// does not change their symbols.
//
// Memory access. Elementwise kernels walk the tensor with grid-stride
// loops, as float4s where every pointer is 16-byte aligned (always, for
// buffers from the allocator; checked here rather than assumed) and the
// layout allows, with a scalar tail. Aliasing is allowed where the API says
// so (y may be x, dx may be dy): each value is read and written by the same
// thread, so nothing is declared __restrict__.
//
// Channel reductions. BatchNorm's statistics, its backward sums, the bias
// gradient and the gate gradient all sum, for each channel c, over the
// values x[(n*C + c)*HW + i] for n < N, i < HW (a plane reduction is N = 1,
// C = planes). Two shapes, chosen on the host (cuda/nn_reduce.go):
//   warp:  a warp per channel, eight per block, for channels of a few
//          thousand values or fewer (many channels: a block each would idle);
//   split: `splits` blocks per channel, each summing one contiguous chunk of
//          the channel's values, so that the SMs are busy even with few
//          channels (64 channels of 64x112x112 values).
// Either way every thread accumulates in double, and each warp or block
// writes a pair of partial sums (double) to a scratch array; a per-channel
// finalize kernel adds a channel's partials and does the channel's
// arithmetic. Partial sums in double add exactly enough for float32
// results; BatchNorm's statistics are also shifted by one of the channel's
// own values, so that the variance does not come from the difference of
// two large sums when the mean is large against the spread.

namespace nnk {

typedef long long i64;

#define NN_FULL_MASK 0xffffffffu
#define NN_MAX_FLOAT 3.402823466e+38f


// Vec<V> is a unit of V consecutive floats: a float4's worth, or one.
template <int V>
struct Vec {
  float v[V];
};

template <int V>
__device__ __forceinline__ Vec<V> ld(const float* p, i64 u);
template <>
__device__ __forceinline__ Vec<1> ld<1>(const float* p, i64 u) {
  Vec<1> r;
  r.v[0] = p[u];
  return r;
}
template <>
__device__ __forceinline__ Vec<4> ld<4>(const float* p, i64 u) {
  const float4 t = reinterpret_cast<const float4*>(p)[u];
  Vec<4> r;
  r.v[0] = t.x;
  r.v[1] = t.y;
  r.v[2] = t.z;
  r.v[3] = t.w;
  return r;
}

template <int V>
__device__ __forceinline__ void st(float* p, i64 u, const Vec<V>& r);
template <>
__device__ __forceinline__ void st<1>(float* p, i64 u, const Vec<1>& r) {
  p[u] = r.v[0];
}
template <>
__device__ __forceinline__ void st<4>(float* p, i64 u, const Vec<4>& r) {
  float4 t;
  t.x = r.v[0];
  t.y = r.v[1];
  t.z = r.v[2];
  t.w = r.v[3];
  reinterpret_cast<float4*>(p)[u] = t;
}

__device__ __forceinline__ bool aligned(const void* p) { return ((unsigned long long)p & 15) == 0; }
__device__ __forceinline__ bool aligned(const void* a, const void* b) { return aligned(a) && aligned(b); }
__device__ __forceinline__ bool aligned(const void* a, const void* b, const void* c) {
  return aligned(a) && aligned(b) && aligned(c);
}
__device__ __forceinline__ bool aligned(const void* a, const void* b, const void* c, const void* d) {
  return aligned(a, b) && aligned(c, d);
}

// relu is max(v, 0) as Go's max computes it, which the CPU engine uses:
// NaN passes through (a diverging run shows in the loss) and -0 becomes 0.
__device__ __forceinline__ float relu(float v) { return v <= 0.f ? 0.f : v; }

// mask is 1 where a ReLU passed its input (output y > 0), else 0; the
// gradient is multiplied by it, as in the CPU engine.
__device__ __forceinline__ float mask(float y) { return y > 0.f ? 1.f : 0.f; }

// sigmoid takes exp of a non-positive argument only, so that large |v|
// saturates to 0 or 1 instead of overflowing.
__device__ __forceinline__ float sigmoid(float v) {
  if (v >= 0.f) return 1.f / (1.f + expf(-v));
  const float e = expf(v);
  return e / (1.f + e);
}

// decayed is the SGD step's g + wd p as the CPU engine computes it: g alone
// when wd is 0, so that an infinite p does not become NaN through 0 * inf.
__device__ __forceinline__ float decayed(float g, float p, float wd) { return wd != 0.f ? g + wd * p : g; }

__device__ __forceinline__ bool finite(float v) { return v >= -NN_MAX_FLOAT && v <= NN_MAX_FLOAT; }

// nan_max is the larger of a and b, NaN if either is.
__device__ __forceinline__ float nan_max(float a, float b) { return (a > b || a != a) ? a : b; }

__device__ __forceinline__ double warp_sum(double v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(NN_FULL_MASK, v, o);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = nan_max(v, __shfl_xor_sync(NN_FULL_MASK, v, o));
  return v;
}

// block_sum2 sums a and b over the block, for thread 0 (blockDim.x is a
// multiple of 32). sh holds 64 doubles.
__device__ __forceinline__ void block_sum2(double& a, double& b, double* sh) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  a = warp_sum(a);
  b = warp_sum(b);
  if (lane == 0) {
    sh[warp] = a;
    sh[32 + warp] = b;
  }
  __syncthreads();
  if (warp == 0) {
    const bool in = lane < (int)(blockDim.x >> 5);
    a = warp_sum(in ? sh[lane] : 0.0);
    b = warp_sum(in ? sh[32 + lane] : 0.0);
  }
}

// map calls f.at<V>(u) for every unit u of n values: float4s (V = 4) when
// vec, then single floats for the n % 4 left over. (Functors, not lambdas:
// NVRTC compiles lambdas only with flags this project does not pass.)
template <class F>
__device__ __forceinline__ void map(i64 n, bool vec, F&& f) {
  const i64 step = (i64)gridDim.x * blockDim.x;
  const i64 t = (i64)blockIdx.x * blockDim.x + threadIdx.x;
  i64 i = t;
  if (vec) {
    const i64 n4 = n >> 2;
    for (i64 u = t; u < n4; u += step) f.template at<4>(u);
    i += n4 << 2;
  }
  for (; i < n; i += step) f.template at<1>(i);
}

// map_planes calls f.at<V>(u, p) for every unit u of n values laid out
// as planes of L values, p being the unit's plane; float4s when vec and L
// is a multiple of 4 (a float4 then never straddles two planes). The host
// keeps n below 2^31, so that the division is 32-bit.
template <class F>
__device__ __forceinline__ void map_planes(unsigned n, unsigned L, bool vec, F&& f) {
  const unsigned step = gridDim.x * blockDim.x, t = blockIdx.x * blockDim.x + threadIdx.x;
  if (vec && L % 4 == 0) {
    const unsigned l4 = L >> 2, n4 = n >> 2;
    for (unsigned u = t; u < n4; u += step) f.template at<4>((i64)u, u / l4);
  } else {
    for (unsigned u = t; u < n; u += step) f.template at<1>((i64)u, u / L);
  }
}

// chan_walk calls f.add<V>(u, a, b) for the units of chunk s (of splits)
// of channel c, this thread taking every G-th from lane.
template <int V, class F>
__device__ __forceinline__ void chan_walk(const F& f, int N, int C, int HW, int c, int s, int splits, int lane,
                                          int G, double& a, double& b) {
  const unsigned hw = (unsigned)HW / V, M = (unsigned)N * hw;
  const unsigned chunk = (M + splits - 1) / splits, lo = (unsigned)s * chunk;
  const unsigned hi = lo >= M ? lo : (M - lo < chunk ? M : lo + chunk);
#pragma unroll 4
  for (unsigned u = lo + lane; u < hi; u += G) {
    const unsigned n = u / hw, i = u - n * hw;
    f.template add<V>(((i64)n * C + c) * hw + i, a, b);
  }
}

// reduce writes the pair of sums f accumulates over channel c (warp shape)
// or over chunk s of it (split shape) to part[2*(c*splits + s)]. f.begin(c)
// loads whatever f needs of the channel; f.vec() says whether its pointers
// allow float4s.
template <class F>
__device__ __forceinline__ void reduce(F f, int N, int C, int HW, int splits, int warp, double* part) {
  __shared__ double sh[64];
  int c, s, lane, G;
  if (warp) {
    c = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (c >= C) return;  // the whole warp leaves; no block barrier follows
    s = 0;
    lane = threadIdx.x & 31;
    G = 32;
  } else {
    c = blockIdx.x / splits;
    s = blockIdx.x - c * splits;
    lane = threadIdx.x;
    G = blockDim.x;
  }
  f.begin(c);
  double a = 0.0, b = 0.0;
  if (f.vec() && HW % 4 == 0) {
    chan_walk<4>(f, N, C, HW, c, s, splits, lane, G, a, b);
  } else {
    chan_walk<1>(f, N, C, HW, c, s, splits, lane, G, a, b);
  }
  if (warp) {
    a = warp_sum(a);
    b = warp_sum(b);
    if (lane == 0) {
      part[2 * c] = a;
      part[2 * c + 1] = b;
    }
    return;
  }
  block_sum2(a, b, sh);
  if (threadIdx.x == 0) {
    part[2 * blockIdx.x] = a;
    part[2 * blockIdx.x + 1] = b;
  }
}

// channel_partials adds up channel c's partial pairs.
__device__ __forceinline__ void channel_partials(const double* part, int c, int splits, double& a, double& b) {
  a = 0.0;
  b = 0.0;
  for (int s = 0; s < splits; s++) {
    a += part[2 * (c * splits + s)];
    b += part[2 * (c * splits + s) + 1];
  }
}

// ---- reduction functors: what each reduction sums -----------------------

// Sum: (sum of x, 0).
struct Sum {
  const float* x;
  __device__ void begin(int) {}
  __device__ bool vec() const { return aligned(x); }
  template <int V>
  __device__ void add(i64 u, double& a, double&) const {
    const Vec<V> v = ld<V>(x, u);
#pragma unroll
    for (int j = 0; j < V; j++) a += v.v[j];
  }
};

// Dot: (sum of x*y, 0).
struct Dot {
  const float *x, *y;
  __device__ void begin(int) {}
  __device__ bool vec() const { return aligned(x, y); }
  template <int V>
  __device__ void add(i64 u, double& a, double&) const {
    const Vec<V> p = ld<V>(x, u), q = ld<V>(y, u);
#pragma unroll
    for (int j = 0; j < V; j++) a += (double)p.v[j] * q.v[j];
  }
};

// BNStats: (sum of x-k, sum of (x-k)^2), k being the channel's first value.
struct BNStats {
  const float* x;
  int C, HW;
  double k;
  __device__ void begin(int c) { k = x[(i64)c * HW]; }
  __device__ bool vec() const { return aligned(x); }
  template <int V>
  __device__ void add(i64 u, double& a, double& b) const {
    const Vec<V> v = ld<V>(x, u);
#pragma unroll
    for (int j = 0; j < V; j++) {
      const double d = v.v[j] - k;
      a += d;
      b += d * d;
    }
  }
};

// BNGrad: (sum of g, sum of g*(x-mean)), g being dy, masked by y > 0 when
// the forward pass ended in a ReLU.
struct BNGrad {
  const float *x, *y, *dy, *mean;
  int relu;
  double mu;
  __device__ void begin(int c) { mu = (double)mean[2 * c] + (double)mean[2 * c + 1]; }
  __device__ bool vec() const { return aligned(x, y, dy); }
  template <int V>
  __device__ void add(i64 u, double& a, double& b) const {
    const Vec<V> xv = ld<V>(x, u), gv = ld<V>(dy, u);
    Vec<V> m;
    if (relu) {
      const Vec<V> yv = ld<V>(y, u);
#pragma unroll
      for (int j = 0; j < V; j++) m.v[j] = mask(yv.v[j]);
    } else {
#pragma unroll
      for (int j = 0; j < V; j++) m.v[j] = 1.f;
    }
#pragma unroll
    for (int j = 0; j < V; j++) {
      const double g = gv.v[j] * m.v[j];
      a += g;
      b += g * (xv.v[j] - mu);
    }
  }
};

// ---- elementwise ---------------------------------------------------------

struct FillF {
  float* y;
  float v;
  template <int V>
  __device__ void at(i64 u) const {
    Vec<V> r;
#pragma unroll
    for (int j = 0; j < V; j++) r.v[j] = v;
    st<V>(y, u, r);
  }
};

// y = Op::f(x)
template <class Op>
struct UnaryF {
  const float* x;
  float* y;
  template <int V>
  __device__ void at(i64 u) const {
    Vec<V> r = ld<V>(x, u);
#pragma unroll
    for (int j = 0; j < V; j++) r.v[j] = Op::f(r.v[j]);
    st<V>(y, u, r);
  }
};
struct CopyOp {
  __device__ static float f(float v) { return v; }
};
struct ReluOp {
  __device__ static float f(float v) { return relu(v); }
};
struct SigmoidOp {
  __device__ static float f(float v) { return sigmoid(v); }
};

// y = a + b, then ReLU when relu is set.
struct AddF {
  const float *a, *b;
  float* y;
  int relu;
  template <int V>
  __device__ void at(i64 u) const {
    Vec<V> r = ld<V>(a, u);
    const Vec<V> q = ld<V>(b, u);
#pragma unroll
    for (int j = 0; j < V; j++) r.v[j] = relu ? nnk::relu(r.v[j] + q.v[j]) : r.v[j] + q.v[j];
    st<V>(y, u, r);
  }
};

// dx (+)= Op::grad(y, dy), from the forward output y.
template <class Op>
struct ActBwdF {
  const float *y, *dy;
  float* dx;
  int acc;
  template <int V>
  __device__ void at(i64 u) const {
    const Vec<V> yv = ld<V>(y, u);
    Vec<V> r = ld<V>(dy, u);
#pragma unroll
    for (int j = 0; j < V; j++) r.v[j] = Op::grad(yv.v[j], r.v[j]);
    if (acc) {
      const Vec<V> o = ld<V>(dx, u);
#pragma unroll
      for (int j = 0; j < V; j++) r.v[j] += o.v[j];
    }
    st<V>(dx, u, r);
  }
};
struct ReluGrad {
  __device__ static float grad(float y, float g) { return g * mask(y); }
};
struct SigmoidGrad {
  __device__ static float grad(float y, float g) { return g * y * (1.f - y); }
};

extern "C" __global__ void __launch_bounds__(256) nn_fill(float* y, float v, long long n) {
  map(n, aligned(y), FillF{y, v});
}

extern "C" __global__ void __launch_bounds__(256) nn_copy(const float* x, float* y, long long n) {
  map(n, aligned(x, y), UnaryF<CopyOp>{x, y});
}

// y += x
extern "C" __global__ void __launch_bounds__(256) nn_add_into(float* y, const float* x, long long n) {
  map(n, aligned(x, y), AddF{y, x, y, 0});
}

extern "C" __global__ void __launch_bounds__(256)
    nn_add(const float* a, const float* b, float* y, long long n, int relu) {
  map(n, aligned(a, b, y), AddF{a, b, y, relu});
}

extern "C" __global__ void __launch_bounds__(256) nn_relu(const float* x, float* y, long long n) {
  map(n, aligned(x, y), UnaryF<ReluOp>{x, y});
}

extern "C" __global__ void __launch_bounds__(256) nn_sigmoid(const float* x, float* y, long long n) {
  map(n, aligned(x, y), UnaryF<SigmoidOp>{x, y});
}

extern "C" __global__ void __launch_bounds__(256)
    nn_relu_bwd(const float* y, const float* dy, float* dx, long long n, int acc) {
  map(n, aligned(y, dy, dx), ActBwdF<ReluGrad>{y, dy, dx, acc});
}

extern "C" __global__ void __launch_bounds__(256)
    nn_sigmoid_bwd(const float* y, const float* dy, float* dx, long long n, int acc) {
  map(n, aligned(y, dy, dx), ActBwdF<SigmoidGrad>{y, dy, dx, acc});
}

// ---- per-plane gating and per-channel bias ----------------------------------

// dst[p, i] (+)= src[p, i] * g[p].
struct ScalePlanesF {
  const float *src, *g;
  float* dst;
  int acc;
  template <int V>
  __device__ void at(i64 u, unsigned p) const {
    Vec<V> r = ld<V>(src, u);
    const float s = g[p];
#pragma unroll
    for (int j = 0; j < V; j++) r.v[j] *= s;
    if (acc) {
      const Vec<V> o = ld<V>(dst, u);
#pragma unroll
      for (int j = 0; j < V; j++) r.v[j] += o.v[j];
    }
    st<V>(dst, u, r);
  }
};

// y[o, c, i] += b[c]: plane p is (o, c).
struct AddBiasF {
  float* y;
  const float* b;
  unsigned C;
  template <int V>
  __device__ void at(i64 u, unsigned p) const {
    Vec<V> r = ld<V>(y, u);
    const float s = b[p % C];
#pragma unroll
    for (int j = 0; j < V; j++) r.v[j] += s;
    st<V>(y, u, r);
  }
};

// y[p, i] = x[p, i] * g[p] for planes of L values.
extern "C" __global__ void __launch_bounds__(256)
    nn_scale_planes(const float* x, const float* g, float* y, int n, int L) {
  map_planes(n, L, aligned(x, y), ScalePlanesF{x, g, y, 0});
}

// dx[p, i] (+)= dy[p, i] * g[p].
extern "C" __global__ void __launch_bounds__(256)
    nn_scale_planes_bwd(const float* dy, const float* g, float* dx, int n, int L, int acc) {
  map_planes(n, L, aligned(dy, dx), ScalePlanesF{dy, g, dx, acc});
}

// y[o, c, i] += b[c], planes of `inner` values, C channels.
extern "C" __global__ void __launch_bounds__(256) nn_add_bias(float* y, const float* b, int n, int C, int inner) {
  map_planes(n, inner, aligned(y), AddBiasF{y, b, (unsigned)C});
}

// ---- channel reductions, first stage (see the top of the file) ------------

#define NN_REDUCE_PARAMS int N, int C, int HW, int splits, int warp, double* part

// Partial sums of x per channel.
extern "C" __global__ void __launch_bounds__(256) nn_chan_sum(const float* x, NN_REDUCE_PARAMS) {
  reduce(Sum{x}, N, C, HW, splits, warp, part);
}

// Partial sums of x*y per channel.
extern "C" __global__ void __launch_bounds__(256) nn_chan_dot(const float* x, const float* y, NN_REDUCE_PARAMS) {
  reduce(Dot{x, y}, N, C, HW, splits, warp, part);
}

// Partial shifted sums of x and x^2 per channel, for the batch statistics.
extern "C" __global__ void __launch_bounds__(256) nn_bn_stats(const float* x, NN_REDUCE_PARAMS) {
  reduce(BNStats{x, C, HW, 0.0}, N, C, HW, splits, warp, part);
}

// Partial sums of g and g*(x - mean) per channel, for the backward pass.
extern "C" __global__ void __launch_bounds__(256) nn_bn_bwd_sums(const float* x, const float* y, const float* dy,
                                                                 const float* mean, int relu, NN_REDUCE_PARAMS) {
  reduce(BNGrad{x, y, dy, mean, relu, 0.0}, N, C, HW, splits, warp, part);
}

// ---- channel reductions, second stage: one thread per channel --------------

// out[c] (+)= the channel's first sum.
extern "C" __global__ void __launch_bounds__(256)
    nn_chan_sum_final(const double* part, float* out, int C, int splits, int acc) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C) return;
  double a, b;
  channel_partials(part, c, splits, a, b);
  out[c] = acc ? (float)(out[c] + a) : (float)a;
}

// affine stores the map y = (x - mean) a + beta for nn_bn_apply as
// coef[4c..4c+3] = (a, b, hi, 0), y = (x - hi) a + b: hi is the mean
// rounded to float and b = beta - (mean - hi) a takes the rest. x - hi is
// exact for x near the mean, so y keeps its precision when the mean is
// large against the spread; x a + (beta - mean a) would lose it to
// cancellation.
__device__ __forceinline__ void affine(float* coef, int c, double a, double beta, double mean) {
  const float hi = (float)mean;
  coef[4 * c] = (float)a;
  coef[4 * c + 1] = (float)(beta - (mean - hi) * a);
  coef[4 * c + 2] = hi;
  coef[4 * c + 3] = 0.f;
}

// From the shifted sums over the M = N*HW values of channel c: the batch
// mean and biased variance normalise, the unbiased variance goes into the
// running estimate, as in PyTorch.
extern "C" __global__ void __launch_bounds__(256)
    nn_bn_stats_final(const double* part, const float* x, const float* gamma, const float* beta, float* rmean,
                      float* rvar, float* save_mean, float* save_rstd, float* coef, int N, int C, int HW,
                      int splits, float momentum, float eps) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C) return;
  double s1, s2;
  channel_partials(part, c, splits, s1, s2);
  const double m = (double)N * HW, k = x[(long long)c * HW];
  const double d = s1 / m, mean = k + d;
  double sq = s2 - s1 * d;  // sum of (x - mean)^2; rounding may dip below 0
  if (sq < 0.0) sq = 0.0;
  const double rstd = 1.0 / sqrt(sq / m + (double)eps), mo = momentum;
  rmean[c] = (float)((1.0 - mo) * rmean[c] + mo * mean);
  rvar[c] = (float)((1.0 - mo) * rvar[c] + mo * sq / (m - 1.0));
  // The mean as a float and the float of what that leaves: x - mean stays
  // exact in the backward pass when the mean is large against the spread,
  // as the (N, C) maps of the modules' BatchNorm can have it.
  const float hi = (float)mean;
  save_mean[2 * c] = hi;
  save_mean[2 * c + 1] = (float)(mean - hi);
  save_rstd[c] = (float)rstd;
  affine(coef, c, (double)gamma[c] * rstd, beta[c], mean);
}

// Evaluation mode: the affine map from the running statistics.
extern "C" __global__ void __launch_bounds__(256) nn_bn_eval_coef(const float* gamma, const float* beta,
                                                                  const float* rmean, const float* rvar,
                                                                  float* coef, int C, float eps) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C) return;
  affine(coef, c, (double)gamma[c] / sqrt((double)rvar[c] + (double)eps), beta[c], rmean[c]);
}

// From sum g and sum g*(x - mean): the parameter gradients, and for the dx
// pass coef[4c..4c+3] = (mean g - lo k, k, gamma*rstd, hi) with mean = hi + lo
// (save_mean's pair) and
//   dx = (g - mean g - (x - mean) k) gamma rstd,  k = rstd^2 sum g (x - mean) / M,
// computed as (g - (mean g - lo k) - (x - hi) k) gamma rstd: x - hi is
// exact near the mean, so the terms of dx that cancel keep their bits.
extern "C" __global__ void __launch_bounds__(256)
    nn_bn_bwd_final(const double* part, const float* gamma, const float* save_mean, const float* save_rstd,
                    float* dgamma, float* dbeta, float* coef, int N, int C, int HW, int splits, int acc) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C) return;
  double sg, dot;
  channel_partials(part, c, splits, sg, dot);
  const double m = (double)N * HW, r = save_rstd[c], k = dot * r * r / m;
  dgamma[c] = acc ? (float)(dgamma[c] + dot * r) : (float)(dot * r);
  dbeta[c] = acc ? (float)(dbeta[c] + sg) : (float)sg;
  coef[4 * c] = (float)(sg / m - (double)save_mean[2 * c + 1] * k);
  coef[4 * c + 1] = (float)k;
  coef[4 * c + 2] = (float)(gamma[c] * r);
  coef[4 * c + 3] = save_mean[2 * c];
}

// ---- BatchNorm elementwise passes --------------------------------------------

// y = (x - hi_c) a_c + b_c (see affine), then ReLU when relu is set.
struct BNApplyF {
  const float* x;
  float* y;
  const float4* coef;
  unsigned C;
  int relu;
  template <int V>
  __device__ void at(i64 u, unsigned p) const {
    const float4 k = coef[p % C];
    Vec<V> r = ld<V>(x, u);
#pragma unroll
    for (int j = 0; j < V; j++) {
      const float v = (r.v[j] - k.z) * k.x + k.y;
      r.v[j] = relu ? nnk::relu(v) : v;
    }
    st<V>(y, u, r);
  }
};

// dx (+)= (g - mean g - (x - mean) k) gamma rstd, g = dy masked by y > 0
// when relu is set (y is not read otherwise); coef from nn_bn_bwd_final.
struct BNDxF {
  const float *x, *y, *dy;
  const float4* coef;
  float* dx;
  unsigned C;
  int relu, acc;
  template <int V>
  __device__ void at(i64 u, unsigned p) const {
    const float4 k = coef[p % C];
    const Vec<V> xv = ld<V>(x, u);
    Vec<V> g = ld<V>(dy, u);
    if (relu) {
      const Vec<V> yv = ld<V>(y, u);
#pragma unroll
      for (int j = 0; j < V; j++) g.v[j] *= mask(yv.v[j]);
    }
    Vec<V> r;
#pragma unroll
    for (int j = 0; j < V; j++) r.v[j] = (g.v[j] - k.x - (xv.v[j] - k.w) * k.y) * k.z;
    if (acc) {
      const Vec<V> o = ld<V>(dx, u);
#pragma unroll
      for (int j = 0; j < V; j++) r.v[j] += o.v[j];
    }
    st<V>(dx, u, r);
  }
};

extern "C" __global__ void __launch_bounds__(256)
    nn_bn_apply(const float* x, float* y, const float* coef, int n, int C, int HW, int relu) {
  map_planes(n, HW, aligned(x, y), BNApplyF{x, y, reinterpret_cast<const float4*>(coef), (unsigned)C, relu});
}

extern "C" __global__ void __launch_bounds__(256)
    nn_bn_bwd_dx(const float* x, const float* y, const float* dy, const float* coef, float* dx, int n, int C, int HW,
                 int relu, int acc) {
  map_planes(n, HW, aligned(x, y, dy, dx),
             BNDxF{x, y, dy, reinterpret_cast<const float4*>(coef), dx, (unsigned)C, relu, acc});
}

// ---- softmax cross-entropy ---------------------------------------------------

// One warp per row of k logits, eight rows per block, in double: the loss
// of a well-trained row is a small difference of log-sum-exp and the
// label's logit. probs gets the row's softmax, rowloss its loss.
extern "C" __global__ void __launch_bounds__(256)
    nn_ce_forward(const float* logits, const int* labels, float* probs, double* rowloss, int n, int k) {
  const int r = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5), lane = threadIdx.x & 31;
  if (r >= n) return;
  const float* x = logits + (i64)r * k;
  float mx = x[0];
  for (int j = lane; j < k; j += 32) mx = nan_max(mx, x[j]);
  mx = warp_max(mx);
  double s = 0.0;
  for (int j = lane; j < k; j += 32) s += exp((double)x[j] - mx);
  const double lse = mx + log(warp_sum(s));
  float* p = probs + (i64)r * k;
  for (int j = lane; j < k; j += 32) p[j] = (float)exp((double)x[j] - lse);
  if (lane == 0) rowloss[r] = lse - x[labels[r]];
}

// loss[0] = mean of the n row losses; one block.
extern "C" __global__ void __launch_bounds__(256) nn_ce_mean(const double* rowloss, float* loss, int n) {
  __shared__ double sh[64];
  double a = 0.0, b = 0.0;
  for (int i = threadIdx.x; i < n; i += blockDim.x) a += rowloss[i];
  block_sum2(a, b, sh);
  if (threadIdx.x == 0) loss[0] = (float)(a / n);
}

// dlogits (+)= (probs - onehot(label)) * scale: plane p is row p.
struct CEBwdF {
  const float* probs;
  const int* labels;
  float* dlogits;
  unsigned k;
  float scale;
  int acc;
  template <int V>
  __device__ void at(i64 u, unsigned row) const {
    Vec<V> r = ld<V>(probs, u);
    const unsigned first = (unsigned)u * V - row * k, label = (unsigned)labels[row];
#pragma unroll
    for (int j = 0; j < V; j++) r.v[j] = (r.v[j] - (first + j == label ? 1.f : 0.f)) * scale;
    if (acc) {
      const Vec<V> o = ld<V>(dlogits, u);
#pragma unroll
      for (int j = 0; j < V; j++) r.v[j] += o.v[j];
    }
    st<V>(dlogits, u, r);
  }
};

// dlogits (+)= (probs - onehot(label)) * dloss[0] / n.
extern "C" __global__ void __launch_bounds__(256)
    nn_ce_bwd(const float* probs, const int* labels, const float* dloss, float* dlogits, int n, int k, int acc) {
  const float scale = (float)((double)dloss[0] / n);
  map_planes((unsigned)n * k, k, aligned(probs, dlogits), CEBwdF{probs, labels, dlogits, (unsigned)k, scale, acc});
}

// ---- SGD -------------------------------------------------------------------

// PyTorch's SGD without momentum: p -= lr (g + wd p).
struct SGDF {
  float* p;
  const float* g;
  float lr, wd;
  template <int V>
  __device__ void at(i64 u) const {
    Vec<V> pv = ld<V>(p, u);
    const Vec<V> gv = ld<V>(g, u);
#pragma unroll
    for (int j = 0; j < V; j++) pv.v[j] -= lr * decayed(gv.v[j], pv.v[j], wd);
    st<V>(p, u, pv);
  }
};

// With momentum: d = g + wd p; buf = d on the first step, else
// momentum buf + d; p -= lr (d + momentum buf) with Nesterov, lr buf without.
struct SGDMomentumF {
  float* p;
  const float* g;
  float* buf;
  float lr, wd, momentum;
  int nesterov, first;
  template <int V>
  __device__ void at(i64 u) const {
    Vec<V> pv = ld<V>(p, u), bv;
    const Vec<V> gv = ld<V>(g, u);
    if (!first) bv = ld<V>(buf, u);
#pragma unroll
    for (int j = 0; j < V; j++) {
      const float d = decayed(gv.v[j], pv.v[j], wd);
      bv.v[j] = first ? d : momentum * bv.v[j] + d;
      pv.v[j] -= lr * (nesterov ? d + momentum * bv.v[j] : bv.v[j]);
    }
    st<V>(buf, u, bv);
    st<V>(p, u, pv);
  }
};

extern "C" __global__ void __launch_bounds__(256) nn_sgd(float* p, const float* g, long long n, float lr, float wd) {
  map(n, aligned(p, g), SGDF{p, g, lr, wd});
}

extern "C" __global__ void __launch_bounds__(256) nn_sgd_momentum(float* p, const float* g, float* buf, long long n,
                                                                  float lr, float wd, float momentum, int nesterov,
                                                                  int first) {
  map(n, aligned(p, g, buf), SGDMomentumF{p, g, buf, lr, wd, momentum, nesterov, first});
}

// ---- NaN and Inf -----------------------------------------------------------

// bad becomes true at the first NaN or infinity this thread sees.
struct NonFiniteF {
  const float* x;
  bool bad;
  template <int V>
  __device__ void at(i64 u) {
    const Vec<V> v = ld<V>(x, u);
#pragma unroll
    for (int j = 0; j < V; j++) bad |= !finite(v.v[j]);
  }
};

// flags[idx] = 1 if any of the n values of x is NaN or infinite (flags[idx]
// was zeroed; every writer writes the same value).
extern "C" __global__ void __launch_bounds__(256) nn_nonfinite(const float* x, long long n, float* flags, int idx) {
  NonFiniteF f{x, false};
  map(n, aligned(x), f);
  if (f.bad) flags[idx] = 1.f;
}

}  // namespace nnk

// The kernels under their plain names, for the emulator's table (NVRTC
// needs only their symbols, which the namespace does not change).
#ifndef __CUDACC_RTC__
using nnk::nn_fill, nnk::nn_copy, nnk::nn_add_into, nnk::nn_add, nnk::nn_relu, nnk::nn_sigmoid, nnk::nn_scale_planes,
    nnk::nn_scale_planes_bwd, nnk::nn_add_bias, nnk::nn_chan_sum, nnk::nn_chan_dot, nnk::nn_bn_stats,
    nnk::nn_bn_bwd_sums, nnk::nn_chan_sum_final, nnk::nn_bn_stats_final, nnk::nn_bn_eval_coef, nnk::nn_bn_bwd_final,
    nnk::nn_bn_apply, nnk::nn_bn_bwd_dx, nnk::nn_ce_forward, nnk::nn_ce_mean, nnk::nn_ce_bwd, nnk::nn_sgd,
    nnk::nn_sgd_momentum, nnk::nn_nonfinite, nnk::nn_relu_bwd, nnk::nn_sigmoid_bwd;
#endif
