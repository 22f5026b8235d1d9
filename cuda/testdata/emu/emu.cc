// A CPU stand-in for one cuLaunchKernel of srmlab's kernels, for the Go
// tests' fake driver (cuda/fake_test.go). It runs every CUDA thread of a
// block as a fiber (ucontext) on one OS thread and switches fibers only at
// __syncthreads and warp shuffles, so barriers and shuffles behave as on
// the GPU and a barrier that some threads can never reach is reported as a
// deadlock instead of hanging. Blocks run one after another.
//
// Protocol, little-endian, on stdin: "EMU1", u32 name length, name, u32
// grid[3], u32 block[3], u32 argument count, u64 arguments (the 8-byte
// parameter slots of cuLaunchKernel), u32 buffer count, then per buffer
// u64 device address, u64 size, the bytes. An argument that falls inside a
// buffer is a device pointer and is translated to the buffer's copy here.
// On success the buffers' new contents go to stdout in the same order.
//
// Build: g++ -std=c++20 -O1 -o emu emu.cc
#include "emu.h"

#include <ucontext.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

uint3 threadIdx, blockIdx;
dim3 blockDim, gridDim;

#include "../../kernels/copy.cu"
#include "../../kernels/srm.cu"
#include "../../kernels/nn.cu"
#include "../../kernels/pool.cu"
#include "../../kernels/conv.cu"
#include "../../kernels/se.cu"
#include "../../kernels/ge.cu"

namespace {

[[noreturn]] void die(const char* msg) {
  fprintf(stderr, "emu: %s\n", msg);
  exit(1);
}

struct Barrier {
  int n = 0, count = 0;
  unsigned gen = 0;
};

struct Fiber {
  ucontext_t ctx;
  std::vector<char> stack;
  bool done = false;
};

std::vector<Fiber> fibers;
ucontext_t mainCtx;
int cur;
bool progress;
Barrier blockBar;
std::vector<Barrier> warpBars;
std::vector<uint64_t> slots;
std::function<void()> body;

void wait(Barrier& b) {
  const unsigned g = b.gen;
  progress = true;
  if (++b.count == b.n) {
    b.count = 0;
    b.gen++;
    return;
  }
  while (b.gen == g) swapcontext(&fibers[cur].ctx, &mainCtx);
}

template <class T>
T shfl(T v, int m) {
  const int t = cur, w = t / 32, lane = t % 32;
  memcpy(&slots[t], &v, sizeof v);
  wait(warpBars[w]);
  T r;
  memcpy(&r, &slots[w * 32 + (lane ^ m)], sizeof r);
  wait(warpBars[w]);
  return r;
}

void entry() {
  body();
  fibers[cur].done = true;
}

void runBlock() {
  const int T = blockDim.x;
  blockBar = Barrier{T};
  for (auto& w : warpBars) w = Barrier{32};
  for (int i = 0; i < T; i++) {
    Fiber& f = fibers[i];
    f.done = false;
    getcontext(&f.ctx);
    f.ctx.uc_stack.ss_sp = f.stack.data();
    f.ctx.uc_stack.ss_size = f.stack.size();
    f.ctx.uc_link = &mainCtx;
    makecontext(&f.ctx, entry, 0);
  }
  int live = T;
  while (live > 0) {
    progress = false;
    for (int i = 0; i < T; i++) {
      if (fibers[i].done) continue;
      cur = i;
      threadIdx = uint3{(unsigned)i, 0, 0};
      swapcontext(&mainCtx, &fibers[i].ctx);
      if (fibers[i].done) {
        live--;
        progress = true;
      }
    }
    if (!progress) die("deadlock: threads wait at a barrier that others never reach");
  }
}

template <class... A, size_t... I>
void callWith(void (*f)(A...), void** p, std::index_sequence<I...>) {
  f(*static_cast<std::remove_cv_t<A>*>(p[I])...);
}

template <class... A>
std::pair<size_t, std::function<void(void**)>> wrap(void (*f)(A...)) {
  return {sizeof...(A), [f](void** p) { callWith(f, p, std::index_sequence_for<A...>{}); }};
}

#define K(name) {#name, wrap(&name)}
// srm.cu's plane kernels: one entry per layout of its SRM_LAYOUTS list.
#define PLANE(tag, Lay, R) K(srm_eval_##tag), K(srm_stats_##tag), K(srm_scale_##tag), K(srm_bwd_dot_##tag), \
    K(srm_bwd_dx_##tag), K(srm_tail_stats_##tag), K(srm_tail_apply_##tag), K(srm_tail_bwd_sums_##tag),    \
    K(srm_tail_dx_##tag),
const std::map<std::string, std::pair<size_t, std::function<void(void**)>>> kernels = {
    K(copy_f32x4),       K(srm_train_gate),     K(srm_bwd_gate),    SRM_LAYOUTS(PLANE)
    PLANE(loop, , )
    K(srm_tail_fwd),     K(srm_tail_bwd),
    // nn.cu kernels (cuda/nn.go)
    K(nn_fill), K(nn_copy), K(nn_add_into), K(nn_add), K(nn_relu), K(nn_sigmoid), K(nn_relu_bwd),
    K(nn_sigmoid_bwd), K(nn_scale_planes), K(nn_scale_planes_bwd), K(nn_add_bias), K(nn_chan_sum),
    K(nn_chan_dot), K(nn_bn_stats), K(nn_bn_bwd_sums), K(nn_chan_sum_final), K(nn_bn_stats_final),
    K(nn_bn_eval_coef), K(nn_bn_bwd_final), K(nn_bn_apply), K(nn_bn_bwd_dx), K(nn_ce_forward), K(nn_ce_mean),
    K(nn_ce_bwd), K(nn_sgd), K(nn_sgd_momentum), K(nn_nonfinite),
    // end nn.cu
    // pool.cu kernels (cuda/pool.go)
    K(pool_avg_thread), K(pool_avg_warp), K(pool_avg_block), K(pool_avg_bwd), K(pool_avg_bwd_global),
    K(pool_upsample), K(pool_max), K(pool_max_bwd), K(pool_zero), K(pool_style_warp), K(pool_style_block),
    K(pool_style_bwd_warp), K(pool_style_bwd_block), K(pool_cfc_thread), K(pool_cfc_warp), K(pool_cfc_bwd_t),
    K(pool_cfc_bwd_params), K(pool_subsample_pad), K(pool_subsample_pad_bwd),
    // end pool.cu
    // conv.cu kernels (cuda/conv.go)
    K(conv_im2col), K(conv_col2im),
    // end conv.cu
    // se.cu kernels (cuda/se.go)
    K(se_gate_fwd), K(se_gate_bwd), K(se_gate_bwd_params),
    // end se.cu
    // ge.cu kernels (cuda/ge.go)
    K(ge_gate_fwd), K(ge_gate_bwd),
    // end ge.cu
};

template <class T>
T get() {
  T v;
  if (fread(&v, sizeof v, 1, stdin) != 1) die("short input");
  return v;
}

}  // namespace

void __syncthreads() { wait(blockBar); }
float __shfl_xor_sync(unsigned, float v, int m) { return shfl(v, m); }
double __shfl_xor_sync(unsigned, double v, int m) { return shfl(v, m); }

// One launch after another until stdin ends: a process per launch cost
// more than most launches' emulation.
int main() {
  for (;;) {
  char magic[4];
  const size_t got = fread(magic, 1, 4, stdin);
  if (got == 0 && feof(stdin)) return 0;
  if (got != 4 || memcmp(magic, "EMU1", 4) != 0) die("bad magic");
  std::string name(get<uint32_t>(), '\0');
  if (!name.empty() && fread(name.data(), 1, name.size(), stdin) != name.size()) die("short name");
  const uint32_t gx = get<uint32_t>(), gy = get<uint32_t>(), gz = get<uint32_t>();
  const uint32_t bx = get<uint32_t>(), by = get<uint32_t>(), bz = get<uint32_t>();
  std::vector<uint64_t> args(get<uint32_t>());
  for (auto& a : args) a = get<uint64_t>();
  struct Buf {
    uint64_t base, size;
    std::vector<char> data;  // over-aligned by the allocator (operator new: 16 bytes)
  };
  std::vector<Buf> bufs(get<uint32_t>());
  for (auto& b : bufs) {
    b.base = get<uint64_t>();
    b.size = get<uint64_t>();
    b.data.resize(b.size);
    if (b.size && fread(b.data.data(), 1, b.size, stdin) != b.size) die("short buffer");
  }
  auto k = kernels.find(name);
  if (k == kernels.end()) die(("unknown kernel " + name).c_str());
  if (args.size() != k->second.first) die(("wrong argument count for " + name).c_str());
  if (gy != 1 || gz != 1 || by != 1 || bz != 1) die("only 1-D launches are emulated");
  if (bx == 0 || bx > 1024 || bx % 32 != 0) die("block size must be a multiple of 32 up to 1024");
  for (auto& a : args) {
    for (auto& b : bufs) {
      if (a >= b.base && a < b.base + b.size) {
        a = (uint64_t)(uintptr_t)(b.data.data() + (a - b.base));
        break;
      }
    }
  }
  std::vector<void*> params(args.size());
  for (size_t i = 0; i < args.size(); i++) params[i] = &args[i];
  blockDim = dim3{bx, 1, 1};
  gridDim = dim3{gx, 1, 1};
  fibers.resize(bx);
  for (auto& f : fibers) f.stack.resize(256 << 10);
  warpBars.resize(bx / 32);
  slots.resize(bx);
  body = [&] { k->second.second(params.data()); };
  for (uint32_t b = 0; b < gx; b++) {
    blockIdx = uint3{b, 0, 0};
    runBlock();
  }
  for (auto& b : bufs) fwrite(b.data.data(), 1, b.size, stdout);
  fflush(stdout);
  }
}
