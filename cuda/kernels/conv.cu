// Kernels of the im2col + cuBLAS convolution path (cuda/conv.go), taken
// where cuDNN is not available. Built-ins as in srm.cu; both kernels loop
// over their items grid-stride, one item per thread per pass.
//
// Layout. One image x is C x H x W, row-major. Its column matrix col has
// C*R*S rows and P = OH*OW columns, row-major:
//   col[(c*R + r)*S + s][oh*OW + ow] = x[c][oh*sh - ph + r][ow*sw - pw + s]
// and 0 where that falls in the padding. The rows of channel group g are
// contiguous, so that group's forward convolution is one GEMM,
// y_g = W_g col_g, with W_g its filters as a Kg x (Cg*R*S) matrix.
//
// col2im is the adjoint of im2col, for the gradient with respect to x:
//   dx[c][h][w] = sum of col[(c*R + r)*S + s][oh*OW + ow]
//                 over the (r, s, oh, ow) with oh*sh - ph + r = h and ow*sw - pw + s = w.
// It gathers, one thread per dx value, rather than scattering col into dx:
// no atomics, and the sum is the same in every run. With stride sh only
// every sh-th r can hit h, so r starts at (h + ph) mod sh and steps by sh.
// The sum is kept in double; accumulate adds it to what dx holds.
//
// Sizes are ints: the host checks that col has fewer than 2^31 values.

extern "C" __global__ void __launch_bounds__(256)
    conv_im2col(const float* __restrict__ x, float* __restrict__ col, int C, int H, int W, int R, int S, int OH, int OW,
                int sh, int sw, int ph, int pw) {
  const int P = OH * OW;
  const long long total = (long long)C * R * S * P;
  const long long stride = (long long)gridDim.x * blockDim.x;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
    const int row = (int)(i / P), p = (int)(i - (long long)row * P);
    const int oh = p / OW, ow = p - oh * OW;
    const int s = row % S, r = row / S % R, c = row / (S * R);
    const int h = oh * sh - ph + r, w = ow * sw - pw + s;
    col[i] = (h >= 0 && h < H && w >= 0 && w < W) ? x[(c * H + h) * W + w] : 0.0f;
  }
}

extern "C" __global__ void __launch_bounds__(256)
    conv_col2im(const float* __restrict__ col, float* __restrict__ dx, int C, int H, int W, int R, int S, int OH, int OW,
                int sh, int sw, int ph, int pw, int accumulate) {
  const int P = OH * OW;
  const long long total = (long long)C * H * W;
  const long long stride = (long long)gridDim.x * blockDim.x;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
    const int chw = (int)i;
    const int w = chw % W, h = chw / W % H, c = chw / (W * H);
    double sum = 0;
    for (int r = (h + ph) % sh; r < R && r <= h + ph; r += sh) {
      const int oh = (h + ph - r) / sh;
      if (oh >= OH) continue;
      for (int s = (w + pw) % sw; s < S && s <= w + pw; s += sw) {
        const int ow = (w + pw - s) / sw;
        if (ow >= OW) continue;
        sum += col[(long long)((c * R + r) * S + s) * P + oh * OW + ow];
      }
    }
    dx[i] = (float)(accumulate ? (double)dx[i] + sum : sum);
  }
}
