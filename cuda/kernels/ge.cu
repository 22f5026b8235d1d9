// GE-θ's gate (Hu et al., Gather-Excite) in one kernel each way: BatchNorm
// of the gathered map z (N x C x HW; HW is 1 for the global extent) and
// the sigmoid, in place of BatchNorm's three launches and the sigmoid's
// one on a tiny tensor. One thread per channel over its M = N*HW values,
// in double:
//   training: mean, biased variance of z; running statistics updated with
//             the unbiased one (PyTorch's BatchNorm)
//   eval:     the running statistics
//   zh = (z - mean) r,  r = 1/sqrt(var + eps),  g = sigmoid(gamma zh + beta)
// Backward (training), given dg:
//   dy = dg g (1 - g),  dgamma = sum dy zh,  dbeta = sum dy
//   dz = gamma r (dy - sum dy / M - zh sum dy zh / M)
// Kept to the built-ins cuda/testdata/cudashim.h and emu.h define.

extern "C" __global__ void __launch_bounds__(256)
    ge_gate_fwd(const float* z, const float* gamma, const float* beta, float* rmean, float* rvar, float* gate,
                float* zhat, float* rstd, int N, int C, int HW, float momentum, float eps, int training) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C) return;
  const double m = (double)N * HW;
  double mean, var;
  if (training) {
    double s = 0.0;
    for (int n = 0; n < N; n++)
      for (int p = 0; p < HW; p++) s += z[((long long)n * C + c) * HW + p];
    mean = s / m;
    double q = 0.0;
    for (int n = 0; n < N; n++)
      for (int p = 0; p < HW; p++) {
        const double d = z[((long long)n * C + c) * HW + p] - mean;
        q += d * d;
      }
    var = q / m;
    rmean[c] = (float)((1.0 - momentum) * rmean[c] + momentum * mean);
    rvar[c] = (float)((1.0 - momentum) * rvar[c] + momentum * q / (m - 1.0));
  } else {
    mean = rmean[c];
    var = rvar[c];
  }
  const double r = 1.0 / sqrt(var + (double)eps);
  if (rstd) rstd[c] = (float)r;
  for (int n = 0; n < N; n++)
    for (int p = 0; p < HW; p++) {
      const long long i = ((long long)n * C + c) * HW + p;
      const double zh = (z[i] - mean) * r;
      if (zhat) zhat[i] = (float)zh;
      gate[i] = (float)(1.0 / (1.0 + exp(-(gamma[c] * zh + beta[c]))));
    }
}

extern "C" __global__ void __launch_bounds__(256)
    ge_gate_bwd(const float* gate, const float* zhat, const float* rstd, const float* gamma, const float* dgate,
                float* dz, float* dgamma, float* dbeta, int N, int C, int HW, int accZ, int accP) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C) return;
  const double m = (double)N * HW;
  double sdy = 0.0, sdyz = 0.0;
  for (int n = 0; n < N; n++)
    for (int p = 0; p < HW; p++) {
      const long long i = ((long long)n * C + c) * HW + p;
      const double g = gate[i], dy = dgate[i] * g * (1.0 - g);
      sdy += dy;
      sdyz += dy * zhat[i];
    }
  dgamma[c] = accP ? (float)(dgamma[c] + sdyz) : (float)sdyz;
  dbeta[c] = accP ? (float)(dbeta[c] + sdy) : (float)sdy;
  if (!dz) return;
  const double k = (double)gamma[c] * rstd[c];
  for (int n = 0; n < N; n++)
    for (int p = 0; p < HW; p++) {
      const long long i = ((long long)n * C + c) * HW + p;
      const double g = gate[i], dy = dgate[i] * g * (1.0 - g);
      const double v = k * (dy - sdy / m - zhat[i] * sdyz / m);
      dz[i] = accZ ? (float)(dz[i] + v) : (float)v;
    }
}
