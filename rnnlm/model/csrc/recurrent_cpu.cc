// Fused LSTM, GRU and RNN recurrences for the CPU, called from JAX through the XLA FFI.
//
// Only the sequential part of a layer lives here: for every time step, the
// recurrent matmul h_{t-1} W_h and the gate math (forward), and the per-step
// gradient through the carry (backward). The input projection x W_x and the
// input gradient are large matmuls that XLA does well; rnnlm/kernels.py does
// them around these calls. Weight gradients (dW_h = sum_t h_{t-1}^T dz_t, and
// x^T g of the projections) are contractions over all T*B rows, which XLA's dot
// runs well below its usual rate at these sizes; they are done here too
// (MatmulTN, below).
//
// Why a kernel: under XLA's while loop each time step is a handful of separate
// small ops (a [B, H] x [H, G*H] matmul, fusions, dynamic slices), each with its
// own dispatch cost, and at hidden 128 that overhead is about half the step.
// Here a step is one register-blocked matmul over a block of batch rows (each
// column block of W_h read once per step) followed by the gate math on the same
// rows while they are still in cache.
//
// Parallelism: rows of the batch are independent through the whole recurrence
// (row b of h_t depends only on row b of h_{t-1}), so the batch is cut into one
// contiguous block of rows per thread and each thread runs the entire sequence
// on its block: no synchronisation between time steps, and results that do not
// depend on the thread count.
//
// Vectors: the hot loops are written once over a vector type V (below) that is
// AVX-512's 16 floats or AVX2's 8 (with FMA); built for neither, they are plain
// loops left to the compiler.
//
// bfloat16: with the attribute bf16, the LSTM kernels run their matmuls (the
// recurrent one, its transpose, the weight gradient) on Intel AMX tiles with the
// operands rounded to bfloat16 and float32 sums; buffers stay float32 (MatmulAmx,
// MatmulTNAmx; built where the compiler targets AMX, used where the OS grants it).
//
// Layouts (row-major, float32), LSTM: xp, gates, dz [T, B, 4H]; hs, cs, d_hs
// [T, B, H]; W_h [H, 4H]; W_h^T [4H, H]; gate order i, f, g, o. GRU: xp, dxp, dhh
// [T, B, 3H]; acts [T, B, 4H] = (r, z, n, hh_n + b_hn); gate order r, z, n. RNN:
// xp, hs, dz [T, B, H].

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "xla/ffi/api/ffi.h"

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif
#if defined(__AMX_TILE__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace ffi = xla::ffi;
using F32R1 = ffi::BufferR1<ffi::F32>;
using F32R2 = ffi::BufferR2<ffi::F32>;
using F32R3 = ffi::BufferR3<ffi::F32>;
using S32R2 = ffi::BufferR2<ffi::S32>;

namespace {

// ---------------------------------------------------------------------------
// Vectorised nonlinearities.

// One SIMD vector type V of kLanes floats and the few operations the kernels use,
// for AVX-512 (16 lanes) or AVX2 with FMA (8 lanes); RNNLM_SIMD is defined when
// either is there. kTileVecs: the vectors of one register tile's row (four zmm
// or two ymm per row, so that a 6-row tile's accumulators, one row of W and the
// broadcast fit the 32 or 16 vector registers).

#if defined(__AVX512F__)
#define RNNLM_SIMD 1
using V = __m512;
constexpr int kLanes = 16;
constexpr int kTileVecs = 4;

inline V vload(const float* p) { return _mm512_loadu_ps(p); }
inline void vstore(float* p, V v) { _mm512_storeu_ps(p, v); }
inline void vstream(float* p, V v) { _mm512_stream_ps(p, v); }
inline V vset(float x) { return _mm512_set1_ps(x); }
inline V vzero() { return _mm512_setzero_ps(); }
inline V vadd(V a, V b) { return _mm512_add_ps(a, b); }
inline V vsub(V a, V b) { return _mm512_sub_ps(a, b); }
inline V vmul(V a, V b) { return _mm512_mul_ps(a, b); }
inline V vdiv(V a, V b) { return _mm512_div_ps(a, b); }
inline V vfmadd(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }    // a b + c
inline V vfnmadd(V a, V b, V c) { return _mm512_fnmadd_ps(a, b, c); }  // c - a b
inline V vmin(V a, V b) { return _mm512_min_ps(a, b); }
inline V vmax(V a, V b) { return _mm512_max_ps(a, b); }
inline V vround(V x) {
  return _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}
inline V vscale(V p, V n) { return _mm512_scalef_ps(p, n); }  // p 2^n, n integral
inline V vabs(V x) { return _mm512_abs_ps(x); }
inline V vcopysign(V mag, V sign) {  // mag (>= 0 here: tanh's |result|) with sign's sign
  const __m512i m = _mm512_set1_epi32(0x80000000);
  return _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(mag),
                                             _mm512_and_si512(m, _mm512_castps_si512(sign))));
}
inline V vselect_lt(V a, V b, V if_lt, V otherwise) {  // a < b ? if_lt : otherwise
  return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, b, _CMP_LT_OQ), otherwise, if_lt);
}
#elif defined(__AVX2__) && defined(__FMA__)
#define RNNLM_SIMD 1
using V = __m256;
constexpr int kLanes = 8;
constexpr int kTileVecs = 2;

inline V vload(const float* p) { return _mm256_loadu_ps(p); }
inline void vstore(float* p, V v) { _mm256_storeu_ps(p, v); }
inline void vstream(float* p, V v) { _mm256_stream_ps(p, v); }
inline V vset(float x) { return _mm256_set1_ps(x); }
inline V vzero() { return _mm256_setzero_ps(); }
inline V vadd(V a, V b) { return _mm256_add_ps(a, b); }
inline V vsub(V a, V b) { return _mm256_sub_ps(a, b); }
inline V vmul(V a, V b) { return _mm256_mul_ps(a, b); }
inline V vdiv(V a, V b) { return _mm256_div_ps(a, b); }
inline V vfmadd(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
inline V vfnmadd(V a, V b, V c) { return _mm256_fnmadd_ps(a, b, c); }
inline V vmin(V a, V b) { return _mm256_min_ps(a, b); }
inline V vmax(V a, V b) { return _mm256_max_ps(a, b); }
inline V vround(V x) { return _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
// p 2^n for integral n in [-126, 127] (vexp's clamp keeps it there): n + 127
// written into the exponent field.
inline V vscale(V p, V n) {
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n),
                                                       _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}
inline V vabs(V x) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x); }
inline V vcopysign(V mag, V sign) {
  const V m = _mm256_set1_ps(-0.0f);
  return _mm256_or_ps(_mm256_andnot_ps(m, mag), _mm256_and_ps(m, sign));
}
inline V vselect_lt(V a, V b, V if_lt, V otherwise) {
  return _mm256_blendv_ps(otherwise, if_lt, _mm256_cmp_ps(a, b, _CMP_LT_OQ));
}
#endif

#if defined(RNNLM_SIMD)
// exp(x) to about 2 ulp: x = n ln2 + r, |r| <= ln2 / 2, a degree-6 polynomial
// for exp(r), then a scale by 2^n.
inline V vexp(V x) {
  x = vmin(vmax(x, vset(-87.0f)), vset(88.0f));
  V n = vround(vmul(x, vset(1.44269504088896341f)));
  V r = vfnmadd(n, vset(0.693359375f), x);
  r = vfnmadd(n, vset(-2.12194440e-4f), r);
  V p = vset(1.9875691500e-4f);
  p = vfmadd(p, r, vset(1.3981999507e-3f));
  p = vfmadd(p, r, vset(8.3334519073e-3f));
  p = vfmadd(p, r, vset(4.1665795894e-2f));
  p = vfmadd(p, r, vset(1.6666665459e-1f));
  p = vfmadd(p, r, vset(5.0000001201e-1f));
  p = vfmadd(p, vmul(r, r), vadd(r, vset(1.0f)));
  return vscale(p, n);
}

inline V vsigmoid(V x) {
  V one = vset(1.0f);
  return vdiv(one, vadd(one, vexp(vsub(vzero(), x))));
}

// tanh(|x|) = (1 - e) / (1 + e) with e = exp(-2|x|); below |x| = 1/8, where that
// difference loses digits, its odd Taylor series to x^9 instead.
inline V vtanh(V x) {
  V a = vabs(x);
  V one = vset(1.0f);
  V e = vexp(vmul(a, vset(-2.0f)));
  V big = vdiv(vsub(one, e), vadd(one, e));
  V a2 = vmul(a, a);
  V s = vset(62.0f / 2835.0f);
  s = vfmadd(s, a2, vset(-17.0f / 315.0f));
  s = vfmadd(s, a2, vset(2.0f / 15.0f));
  s = vfmadd(s, a2, vset(-1.0f / 3.0f));
  s = vfmadd(s, a2, one);
  V small = vmul(s, a);
  return vcopysign(vselect_lt(a, vset(0.125f), small, big), x);
}
#endif

inline float ssigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

// ---------------------------------------------------------------------------
// C[m, :N] = Init[m, :N] + A[m, :K] W[:K, :N] for the m <= kMaxRows rows of one
// tile. Row strides in floats. Init may alias C. Columns in blocks of up to
// kTileVecs vectors held in registers with all rows of the tile.

constexpr int kMaxRows = 6;

#if defined(RNNLM_SIMD)
// acc[r][j] = sum_kk A(r, kk) W[kk, kLanes j : kLanes (j + 1)] for one tile: R rows of A
// broadcast against NV vectors of each row of W, all in registers. A(r, kk) is
// a[r * a_row + kk * a_k]: (lda, 1) for A as stored, (1, lda) for A transposed.
template <int R, int NV>
__attribute__((always_inline)) inline void TileProducts(const float* a, int64_t a_row,
                                                        int64_t a_k, const float* w,
                                                        int64_t ldw, int64_t k,
                                                        V (&acc)[R][NV]) {
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < NV; ++j) acc[r][j] = vzero();
  for (int64_t kk = 0; kk < k; ++kk) {
    V wv[NV];
    for (int j = 0; j < NV; ++j) wv[j] = vload(w + kk * ldw + j * kLanes);
    for (int r = 0; r < R; ++r) {
      V av = vset(a[r * a_row + kk * a_k]);
      for (int j = 0; j < NV; ++j) acc[r][j] = vfmadd(av, wv[j], acc[r][j]);
    }
  }
}

template <int R, int NV>
inline void TileBlock(const float* a, int64_t lda, const float* w, int64_t ldw, int64_t k,
                      const float* init, const float* bias, int64_t ldi, const int32_t* idx,
                      float* c, int64_t ldc) {
  // Row r of Init: init + r * ldi, or init + idx[r] * ldi (a gather) when idx is given.
  const float* irow[R];
  for (int r = 0; r < R; ++r) irow[r] = init + (idx ? int64_t{idx[r]} : r) * ldi;
  // Init (in the recurrences, this step's rows of x W_x: not in cache) is read
  // only after the k loop; fetching it now hides that miss behind the loop.
  if (ldi != 0)
    for (int r = 0; r < R; ++r)
      for (int j = 0; j < NV; ++j)
        _mm_prefetch(reinterpret_cast<const char*>(irow[r] + j * kLanes), _MM_HINT_T0);
  // Accumulators start at zero (no loads to keep live across the loop); Init and
  // the bias are added on the way out.
  V acc[R][NV];
  TileProducts<R, NV>(a, lda, 1, w, ldw, k, acc);
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < NV; ++j) {
      V out = vadd(acc[r][j], vload(irow[r] + j * kLanes));
      if (bias) out = vadd(out, vload(bias + j * kLanes));
      vstore(c + r * ldc + j * kLanes, out);
    }
}

// The rows of A in tiles of at most kMaxRows (as even as possible) against one
// [k, kLanes NV] column block of W, which stays in cache across the tiles.
template <int NV>
inline void BlockColumns(int rows, const float* a, int64_t lda, const float* w, int64_t ldw,
                         int64_t k, const float* init, const float* bias, int64_t ldi,
                         const int32_t* idx, float* c, int64_t ldc) {
  const int tiles = (rows + kMaxRows - 1) / kMaxRows;
  int r = 0;
  for (int i = 0; i < tiles; ++i) {
    const int m = rows / tiles + (i < rows % tiles ? 1 : 0);
    const float* ai = a + r * lda;
    const float* ii = idx ? init : init + r * ldi;
    const int32_t* xi = idx ? idx + r : nullptr;
    float* ci = c + r * ldc;
    switch (m) {
      case 1: TileBlock<1, NV>(ai, lda, w, ldw, k, ii, bias, ldi, xi, ci, ldc); break;
      case 2: TileBlock<2, NV>(ai, lda, w, ldw, k, ii, bias, ldi, xi, ci, ldc); break;
      case 3: TileBlock<3, NV>(ai, lda, w, ldw, k, ii, bias, ldi, xi, ci, ldc); break;
      case 4: TileBlock<4, NV>(ai, lda, w, ldw, k, ii, bias, ldi, xi, ci, ldc); break;
      case 5: TileBlock<5, NV>(ai, lda, w, ldw, k, ii, bias, ldi, xi, ci, ldc); break;
      default: TileBlock<6, NV>(ai, lda, w, ldw, k, ii, bias, ldi, xi, ci, ldc); break;
    }
    r += m;
  }
}
#endif

// W [k, n] repacked as column blocks of kBlock (the last one narrower), each
// block [k, width] contiguous: the matmul then reads W sequentially, block by
// block, instead of short runs n floats apart. With SIMD a block is one register
// tile's columns (64 with AVX-512, 16 with AVX2: a few per cent faster for the
// 2 x 256 LSTM on AVX2 than 64-column blocks read 16 columns at a time).
#if defined(RNNLM_SIMD)
constexpr int64_t kBlock = kTileVecs * kLanes;
#else
constexpr int64_t kBlock = 64;
#endif

std::vector<float> PackColumns(const float* w, int64_t k, int64_t n) {
  std::vector<float> packed(static_cast<size_t>(k * n));
  for (int64_t j0 = 0; j0 < n; j0 += kBlock) {
    const int64_t width = std::min(kBlock, n - j0);
    float* dst = packed.data() + j0 * k;
    for (int64_t kk = 0; kk < k; ++kk)
      std::copy_n(w + kk * n + j0, width, dst + kk * width);
  }
  return packed;
}

// C[rows, :n] = Init + bias + A[rows, :k] W[:k, :n], W as packed by PackColumns;
// row strides in floats; row r of Init is init + r * ldi, or init + idx[r] * ldi
// when idx is given. On the SIMD paths n must be a multiple of kLanes (the caller
// checks).
inline void Matmul(int rows, const float* a, int64_t lda, const float* w_packed, int64_t k,
                   int64_t n, const float* init, const float* bias, int64_t ldi, float* c,
                   int64_t ldc, const int32_t* idx = nullptr) {
#if defined(RNNLM_SIMD)
  // Each packed block is one column tile (the last one narrower).
  for (int64_t j = 0; j < n; j += kBlock) {
    const int64_t width = std::min(kBlock, n - j);
    const float* wj = w_packed + j * k;
    const float* bj = bias ? bias + j : nullptr;
    switch (width / kLanes) {
      case 4: BlockColumns<4>(rows, a, lda, wj, width, k, init + j, bj, ldi, idx, c + j, ldc); break;
      case 3: BlockColumns<3>(rows, a, lda, wj, width, k, init + j, bj, ldi, idx, c + j, ldc); break;
      case 2: BlockColumns<2>(rows, a, lda, wj, width, k, init + j, bj, ldi, idx, c + j, ldc); break;
      case 1: BlockColumns<1>(rows, a, lda, wj, width, k, init + j, bj, ldi, idx, c + j, ldc); break;
      default: break;
    }
  }
#else
  for (int r = 0; r < rows; ++r) {
    float* cr = c + r * ldc;
    const float* ir = init + (idx ? int64_t{idx[r]} : r) * ldi;
    for (int64_t j = 0; j < n; ++j) cr[j] = ir[j] + (bias ? bias[j] : 0.0f);
    for (int64_t j0 = 0; j0 < n; j0 += kBlock) {
      const int64_t width = std::min(kBlock, n - j0);
      const float* wb = w_packed + j0 * k;
      for (int64_t kk = 0; kk < k; ++kk) {
        const float av = a[r * lda + kk];
        for (int64_t jj = 0; jj < width; ++jj) cr[j0 + jj] += av * wb[kk * width + jj];
      }
    }
  }
#endif
}

// Runs fn(r0, r1) over [0, batch) cut into contiguous blocks of at least
// min_rows rows (batch rows for the recurrences), one per
// thread of XLA's intra-op pool (where other ops' workers already wait for work;
// threads of our own would compete with them for the cores). The calling thread
// claims blocks too, and claims every block no pool task has started, so the
// call finishes even if the pool never runs our tasks. A late task finds
// nothing to claim and touches nothing of this call.
template <typename F>
void ParallelRows(ffi::ThreadPool& pool, int64_t batch, const F& fn, int64_t min_rows = 4) {
  int64_t n = pool.num_threads();
  if (n < 1) n = 1;
  if (const char* env = std::getenv("RNNLM_KERNEL_THREADS")) n = std::max(1, std::atoi(env));
  n = std::min<int64_t>(n, std::max<int64_t>(batch / min_rows, 1));
  if (n == 1) {
    fn(int64_t{0}, batch);
    return;
  }
  struct State {
    std::atomic<int64_t> next{0};
    std::atomic<int64_t> done{0};
  };
  auto state = std::make_shared<State>();
  auto run_blocks = [n, batch](State& st, const F& f) {
    for (int64_t i; (i = st.next.fetch_add(1)) < n;) {
      const int64_t r0 = i * (batch / n) + std::min(i, batch % n);
      const int64_t r1 = r0 + batch / n + (i < batch % n ? 1 : 0);
      f(r0, r1);
      st.done.fetch_add(1, std::memory_order_release);
    }
  };
  const F* fp = &fn;
  for (int64_t i = 1; i < n; ++i)
    pool.Schedule([state, fp, run_blocks] { run_blocks(*state, *fp); });
  run_blocks(*state, fn);
  for (int spins = 0; state->done.load(std::memory_order_acquire) < n; ++spins) {
    if (spins < 4096) {
#if defined(__x86_64__)
      __builtin_ia32_pause();
#endif
    } else {
      std::this_thread::yield();
    }
  }
}

// ---------------------------------------------------------------------------
// bfloat16 matmuls on Intel AMX (Sapphire Rapids and later), for
// model.compute_dtype=bfloat16: A and W rounded to bfloat16 (to nearest even),
// products summed in float32 by the tile unit, everything else float32.

#if defined(__AMX_TILE__) && defined(__AMX_BF16__) && defined(__AVX512BF16__)
#define RNNLM_AMX 1

// Linux hands out the tile registers' state only on request, once per process.
bool AmxUsable() {
  static const bool ok = [] {
    constexpr long kReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
    return syscall(SYS_arch_prctl, kReqXcompPerm, kXfeatureXtiledata) == 0;
  }();
  return ok;
}

struct alignas(64) TileConfig {
  uint8_t palette, start_row, reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
};

// Tiles 0-3: C blocks of 16 x 16 float32; 4-5: A blocks of 16 rows x 32 bfloat16;
// 6-7: W blocks of 16 pairs of rows x 16 columns (32 bfloat16 per row). The
// configuration is per thread: each thread loads it before its matmuls.
void AmxConfigure() {
  TileConfig cfg{};
  cfg.palette = 1;
  for (int i = 0; i < 8; ++i) cfg.rows[i] = 16, cfg.colsb[i] = 64;
  _tile_loadconfig(&cfg);
}

inline uint16_t ToBf16(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  u += 0x7fff + ((u >> 16) & 1);  // Round to nearest even (no NaNs here).
  return static_cast<uint16_t>(u >> 16);
}

// 16 floats rounded to bfloat16 (to nearest even), as 16-bit lanes.
inline __m256i Bf16Bits(__m512 v) {
  const __m256bh b = _mm512_cvtneps_pbh(v);
  __m256i bits;
  std::memcpy(&bits, &b, sizeof(bits));
  return bits;
}

// W [k, n] (k even) as bfloat16 pairs along k, [k / 2][n][2]: the layout the tile
// unit multiplies against (each 32-bit element of a W tile row is two k's).
std::vector<uint16_t> PackPairs(const float* w, int64_t k, int64_t n) {
  std::vector<uint16_t> out(static_cast<size_t>(k * n));
  for (int64_t kk = 0; kk < k; ++kk)
    for (int64_t j = 0; j < n; ++j) out[((kk / 2) * n + j) * 2 + kk % 2] = ToBf16(w[kk * n + j]);
  return out;
}

// C[rows, :n] = Init + bias + bf16(A[rows, :k]) W[:k, :n], W as packed by
// PackPairs, with Matmul's conventions otherwise. k and n multiples of 32.
// The calling thread has run AmxConfigure.
void MatmulAmx(int rows, const float* a, int64_t lda, const uint16_t* w, int64_t k,
               int64_t n, const float* init, const float* bias, int64_t ldi, float* c,
               int64_t ldc, const int32_t* idx = nullptr) {
  const int padded = (rows + 15) / 16 * 16;
  thread_local std::vector<uint16_t> abuf;
  thread_local std::vector<float> cbuf;
  abuf.assign(static_cast<size_t>(padded) * k, 0);
  cbuf.resize(static_cast<size_t>(padded) * n);
  for (int r = 0; r < rows; ++r)
    for (int64_t kk = 0; kk < k; kk += 16) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(abuf.data() + r * k + kk),
                          Bf16Bits(vload(a + r * lda + kk)));
    }
  const int64_t a_stride = k * 2, w_stride = n * 4, c_stride = n * 4;
  for (int m0 = 0; m0 < padded; m0 += 32) {
    const bool two = m0 + 16 < padded;
    for (int64_t j0 = 0; j0 < n; j0 += 32) {
      _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
      for (int64_t k0 = 0; k0 < k; k0 += 32) {
        _tile_loadd(6, w + ((k0 / 2) * n + j0) * 2, w_stride);
        _tile_loadd(7, w + ((k0 / 2) * n + j0 + 16) * 2, w_stride);
        _tile_loadd(4, abuf.data() + m0 * k + k0, a_stride);
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        if (two) {
          _tile_loadd(5, abuf.data() + (m0 + 16) * k + k0, a_stride);
          _tile_dpbf16ps(2, 5, 6);
          _tile_dpbf16ps(3, 5, 7);
        }
      }
      float* cb = cbuf.data() + m0 * n + j0;
      _tile_stored(0, cb, c_stride);
      _tile_stored(1, cb + 16, c_stride);
      if (two) {
        _tile_stored(2, cb + 16 * n, c_stride);
        _tile_stored(3, cb + 16 * n + 16, c_stride);
      }
    }
  }
  for (int r = 0; r < rows; ++r) {
    const float* ir = init + (idx ? int64_t{idx[r]} : r) * ldi;
    const float* cr = cbuf.data() + r * n;
    float* out = c + r * ldc;
    for (int64_t j = 0; j < n; j += kLanes) {
      V v = vadd(vload(cr + j), vload(ir + j));
      if (bias) v = vadd(v, vload(bias + j));
      vstore(out + j, v);
    }
  }
}
#endif

// The recurrent weights as a matmul reads them: float32 packed by PackColumns,
// or, where bf16 is set, bfloat16 pairs for the tile unit.
struct RecurrentW {
  const float* f32 = nullptr;
  const uint16_t* bf16 = nullptr;
};

inline void RecurrentMatmul(const RecurrentW& w, int rows, const float* a, int64_t lda,
                            int64_t k, int64_t n, const float* init, const float* bias,
                            int64_t ldi, float* c, int64_t ldc, const int32_t* idx = nullptr) {
#if defined(RNNLM_AMX)
  if (w.bf16) {
    MatmulAmx(rows, a, lda, w.bf16, k, n, init, bias, ldi, c, ldc, idx);
    return;
  }
#endif
  Matmul(rows, a, lda, w.f32, k, n, init, bias, ldi, c, ldc, idx);
}

// ---------------------------------------------------------------------------
// Weight gradients: C[M, N] = sum over segments of A_s[K_s, M]^T B_s[K_s, N]
// (row-major, N a multiple of kLanes on the SIMD paths). XLA's dot runs this
// transposed-operand form at 55-75% of its plain matmul rate on small M; here
// the contraction index is the loop index of the same register-blocked tile,
// so both operands are read along their rows: for each k, a run of R
// consecutive floats of A's row k (broadcast) and NV vectors of B's row k.

// The column units threads split: vectors, or single columns without SIMD.
#if defined(RNNLM_SIMD)
constexpr int64_t kUnitTN = kLanes;
#else
constexpr int64_t kUnitTN = 1;
#endif

struct Segment {
  const float* a;  // [k, M], row stride M
  const float* b;  // [k, N], row stride N
  int64_t k;
};

#if defined(RNNLM_SIMD)
template <int R, int NV>
inline void TileT(const float* a, int64_t lda, const float* b, int64_t ldb, int64_t k,
                  bool accumulate, float* c, int64_t ldc) {
  V acc[R][NV];
  TileProducts<R, NV>(a, 1, lda, b, ldb, k, acc);
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < NV; ++j) {
      V out = acc[r][j];
      if (accumulate) out = vadd(out, vload(c + r * ldc + j * kLanes));
      vstore(c + r * ldc + j * kLanes, out);
    }
}

// All M rows of C (tiles of at most kMaxRows) for one column chunk of NV vectors.
template <int NV>
inline void ColumnChunkT(int64_t m, const float* a, int64_t lda, const float* b, int64_t ldb,
                         int64_t k, bool accumulate, float* c, int64_t ldc) {
  const int64_t tiles = (m + kMaxRows - 1) / kMaxRows;
  int64_t r = 0;
  for (int64_t i = 0; i < tiles; ++i) {
    const int64_t rows = m / tiles + (i < m % tiles ? 1 : 0);
    const float* ai = a + r;
    float* ci = c + r * ldc;
    switch (rows) {
      case 1: TileT<1, NV>(ai, lda, b, ldb, k, accumulate, ci, ldc); break;
      case 2: TileT<2, NV>(ai, lda, b, ldb, k, accumulate, ci, ldc); break;
      case 3: TileT<3, NV>(ai, lda, b, ldb, k, accumulate, ci, ldc); break;
      case 4: TileT<4, NV>(ai, lda, b, ldb, k, accumulate, ci, ldc); break;
      case 5: TileT<5, NV>(ai, lda, b, ldb, k, accumulate, ci, ldc); break;
      default: TileT<6, NV>(ai, lda, b, ldb, k, accumulate, ci, ldc); break;
    }
    r += rows;
  }
}
#endif

// Columns [v0 * kLanes, v1 * kLanes) of C (the scalar path: columns [v0, v1)). The
// contraction runs in panels of kc rows so that a panel of A ([kc, M]) and a
// chunk of B ([kc, 64]) stay in L2 while every tile reads them.
void MatmulTNColumns(const std::vector<Segment>& segs, int64_t M, int64_t N, float* c,
                     float* colsum, int64_t v0, int64_t v1) {
  // colsum (if given): the column sums of B, i.e. 1^T B, taken from each panel
  // while it is in cache (the bias gradient, beside the weight gradient).
  if (colsum) std::fill(colsum + v0 * kUnitTN, colsum + v1 * kUnitTN, 0.0f);
  const int64_t kc = std::max<int64_t>(32, std::min<int64_t>(512, 65536 / std::max<int64_t>(M, 1)));
  bool accumulate = false;
  for (const Segment& s : segs) {
    for (int64_t k0 = 0; k0 < s.k; k0 += kc) {
      const int64_t k = std::min(kc, s.k - k0);
      const float* a = s.a + k0 * M;
      const float* b = s.b + k0 * N;
#if defined(RNNLM_SIMD)
      int64_t v = v0;
      for (; v + kTileVecs <= v1; v += kTileVecs)
        ColumnChunkT<kTileVecs>(M, a, M, b + v * kLanes, N, k, accumulate, c + v * kLanes, N);
      switch (v1 - v) {
        case 3: ColumnChunkT<3>(M, a, M, b + v * kLanes, N, k, accumulate, c + v * kLanes, N); break;
        case 2: ColumnChunkT<2>(M, a, M, b + v * kLanes, N, k, accumulate, c + v * kLanes, N); break;
        case 1: ColumnChunkT<1>(M, a, M, b + v * kLanes, N, k, accumulate, c + v * kLanes, N); break;
        default: break;
      }
#else
      for (int64_t i = 0; i < M; ++i) {
        float* ci = c + i * N;
        if (!accumulate) std::fill(ci + v0, ci + v1, 0.0f);
        for (int64_t kk = 0; kk < k; ++kk) {
          const float av = a[kk * M + i];
          for (int64_t j = v0; j < v1; ++j) ci[j] += av * b[kk * N + j];
        }
      }
#endif
      if (colsum)
        for (int64_t kk = 0; kk < k; ++kk) {
          const float* __restrict bk = b + kk * N;
          float* __restrict cs = colsum;
          for (int64_t j = v0 * kUnitTN; j < v1 * kUnitTN; ++j) cs[j] += bk[j];
        }
      accumulate = true;
    }
  }
  if (!accumulate)  // Every segment empty: C = 0.
    for (int64_t i = 0; i < M; ++i)
      std::fill(c + i * N + v0 * kUnitTN, c + i * N + v1 * kUnitTN, 0.0f);
}

void MatmulTN(ffi::ThreadPool& pool, const std::vector<Segment>& segs, int64_t M, int64_t N,
              float* c, float* colsum = nullptr) {
  ParallelRows(pool, N / kUnitTN, [&](int64_t v0, int64_t v1) {
    MatmulTNColumns(segs, M, N, c, colsum, v0, v1);
  }, /*min_rows=*/2);
}

#if defined(RNNLM_AMX)
// MatmulTN on the tile unit: C[M, N] = sum over segments of A_s^T B_s with A and B
// rounded to bfloat16 and the products summed in float32; M and N multiples of 32.
// A^T is packed into rows of all K (the segments end to end, zero-padded to a
// multiple of 32) and B into pairs of rows, then each thread takes 32 x 32 blocks
// of C. colsum (if given): the float32 column sums of B.
void MatmulTNAmx(ffi::ThreadPool& pool, const std::vector<Segment>& segs, int64_t M,
                 int64_t N, float* c, float* colsum = nullptr) {
  std::vector<const float*> a_rows, b_rows;
  for (const Segment& s : segs)
    for (int64_t k = 0; k < s.k; ++k) a_rows.push_back(s.a + k * M), b_rows.push_back(s.b + k * N);
  const int64_t K = static_cast<int64_t>(a_rows.size()), Kp = (K + 31) / 32 * 32;
  std::vector<uint16_t> at(static_cast<size_t>(M * Kp), 0), bp(static_cast<size_t>(Kp * N), 0);
  // A^T, one range of A's columns per thread, 32 rows of A at a time (in cache).
  ParallelRows(pool, M / 16, [&](int64_t m0, int64_t m1) {
    for (int64_t k0 = 0; k0 < K; k0 += 32) {
      const int64_t k1 = std::min(K, k0 + 32);
      for (int64_t m = m0 * 16; m < m1 * 16; ++m) {
        uint16_t* out = at.data() + m * Kp;
        for (int64_t k = k0; k < k1; ++k) out[k] = ToBf16(a_rows[k][m]);
      }
    }
  }, 1);
  // B in pairs of rows: [k / 2][n][2], one range of pairs per thread.
  const int64_t pairs = K / 2 + K % 2;
  if (colsum) std::fill(colsum, colsum + N, 0.0f);
  std::mutex colsum_mutex;
  ParallelRows(pool, pairs, [&](int64_t p0, int64_t p1) {
    std::vector<float> partial(colsum ? static_cast<size_t>(N) : 0, 0.0f);
    float* sums = colsum ? partial.data() : nullptr;
    for (int64_t p = p0; p < p1; ++p) {
      const float* r0 = b_rows[2 * p];
      const float* r1 = 2 * p + 1 < K ? b_rows[2 * p + 1] : nullptr;
      uint16_t* out = bp.data() + p * N * 2;
      for (int64_t n = 0; n < N; n += 16) {
        const V v0 = vload(r0 + n), v1 = r1 ? vload(r1 + n) : vzero();
        if (sums) vstore(sums + n, vadd(vload(sums + n), vadd(v0, v1)));
        const __m256i lo = Bf16Bits(v0), hi = Bf16Bits(v1);
        __m256i ul = _mm256_unpacklo_epi16(lo, hi), uh = _mm256_unpackhi_epi16(lo, hi);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + n * 2),
                            _mm256_permute2x128_si256(ul, uh, 0x20));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + n * 2 + 16),
                            _mm256_permute2x128_si256(ul, uh, 0x31));
      }
    }
    if (sums) {
      std::lock_guard<std::mutex> lock(colsum_mutex);
      for (int64_t n = 0; n < N; n += kLanes)
        vstore(colsum + n, vadd(vload(colsum + n), vload(sums + n)));
    }
  }, 64);
  const int64_t col_blocks = N / 32;
  ParallelRows(pool, (M / 32) * col_blocks, [&](int64_t i0, int64_t i1) {
    AmxConfigure();
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t m0 = (i / col_blocks) * 32, n0 = (i % col_blocks) * 32;
      _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
      for (int64_t k0 = 0; k0 < Kp; k0 += 32) {
        _tile_loadd(4, at.data() + m0 * Kp + k0, Kp * 2);
        _tile_loadd(5, at.data() + (m0 + 16) * Kp + k0, Kp * 2);
        _tile_loadd(6, bp.data() + ((k0 / 2) * N + n0) * 2, N * 4);
        _tile_loadd(7, bp.data() + ((k0 / 2) * N + n0 + 16) * 2, N * 4);
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
      }
      float* cb = c + m0 * N + n0;
      _tile_stored(0, cb, N * 4);
      _tile_stored(1, cb + 16, N * 4);
      _tile_stored(2, cb + 16 * N, N * 4);
      _tile_stored(3, cb + 16 * N + 16, N * 4);
    }
    _tile_release();
  }, 1);
}
#endif

// Asks for n floats from p in L2 (one request per cache line).
inline void PrefetchL2(const float* p, int64_t n) {
  for (int64_t i = 0; i < n; i += 16)
    __builtin_prefetch(p + i, /*rw=*/0, /*locality=*/2);
}

// ---------------------------------------------------------------------------
// Where a layer's projected inputs x_t W_x come from: xp [T, B, G], or, for a
// first layer fed token ids, rows of a table [V, G] (W_x for one-hot inputs, or
// the embedding times W_x), read in place instead of gathered into an xp first.

struct Inputs {
  const float* x;         // xp [T, B, G], or the table [V, G]
  const int32_t* tokens;  // null, or [T, B] ids, already clamped to [0, V)
  int64_t G;

  // Row (t, b) at flat index i = t * B + b.
  const float* row(int64_t i) const { return x + (tokens ? int64_t{tokens[i]} : i) * G; }
  // Matmul's Init for the rows from flat index i on, and its row indices.
  const float* init(int64_t i) const { return tokens ? x : x + i * G; }
  const int32_t* idx(int64_t i) const { return tokens ? tokens + i : nullptr; }
};

// ---------------------------------------------------------------------------
// Forward: rows [r0, r1) of the batch through all T steps.

void ForwardRows(int64_t T, int64_t B, int64_t H, const Inputs& xp, const RecurrentW& w_h,
                 const float* b, const float* h0, const float* c0, float* hs, float* cs,
                 float* gates, int64_t r0, int64_t r1) {
  const int64_t G = 4 * H;
  const int rows = static_cast<int>(r1 - r0);
  // Pre-activations of the block's rows (in cache); the activated gates go to
  // `gates` with streaming stores where aligned, since only the backward pass
  // reads them again.
  std::vector<float> zbuf(static_cast<size_t>(rows) * G);
#if defined(RNNLM_SIMD)
  const bool stream = reinterpret_cast<uintptr_t>(gates) % 64 == 0;
#endif
  for (int64_t t = 0; t < T; ++t) {
    const float* h_prev = t == 0 ? h0 : hs + (t - 1) * B * H;
    const float* c_prev = t == 0 ? c0 : cs + (t - 1) * B * H;
    // All rows of the block at once: W is streamed once per step.
    RecurrentMatmul(w_h, rows, h_prev + r0 * H, H, H, G, xp.init(t * B + r0), b, G,
                    zbuf.data(), G, xp.idx(t * B + r0));
    for (int r = 0; r < rows; ++r) {
      const float* zr = zbuf.data() + r * G;
      float* gr = gates + (t * B + r0 + r) * G;
      const float* cp = c_prev + (r0 + r) * H;
      float* cr = cs + (t * B + r0 + r) * H;
      float* hr = hs + (t * B + r0 + r) * H;
      int64_t j = 0;
#if defined(RNNLM_SIMD)
      for (; j + kLanes <= H; j += kLanes) {
        V i = vsigmoid(vload(zr + j));
        V f = vsigmoid(vload(zr + H + j));
        V g = vtanh(vload(zr + 2 * H + j));
        V o = vsigmoid(vload(zr + 3 * H + j));
        V c = vfmadd(f, vload(cp + j), vmul(i, g));
        if (stream) {
          vstream(gr + j, i);
          vstream(gr + H + j, f);
          vstream(gr + 2 * H + j, g);
          vstream(gr + 3 * H + j, o);
        } else {
          vstore(gr + j, i);
          vstore(gr + H + j, f);
          vstore(gr + 2 * H + j, g);
          vstore(gr + 3 * H + j, o);
        }
        vstore(cr + j, c);
        vstore(hr + j, vmul(o, vtanh(c)));
      }
#endif
      for (; j < H; ++j) {
        const float i = ssigmoid(zr[j]), f = ssigmoid(zr[H + j]);
        const float g = std::tanh(zr[2 * H + j]), o = ssigmoid(zr[3 * H + j]);
        const float c = f * cp[j] + i * g;
        gr[j] = i, gr[H + j] = f, gr[2 * H + j] = g, gr[3 * H + j] = o;
        cr[j] = c;
        hr[j] = o * std::tanh(c);
      }
    }
  }
#if defined(RNNLM_SIMD)
  _mm_sfence();  // Streaming stores visible before the block is reported done.
#endif
}

// Backward: rows [r0, r1), steps T-1 .. 0. dh, dc: [B, H] running carry
// gradients (hold dh_T, dc_T on entry and dh_0, dc_0 on exit).

void BackwardRows(int64_t T, int64_t B, int64_t H, const float* d_hs, const float* gates,
                  const float* cs, const float* c0, const RecurrentW& w_h_t, float* dz_all,
                  float* dh, float* dc, int64_t r0, int64_t r1) {
  const int64_t G = 4 * H;
  std::vector<float> zeros(H, 0.0f);
  for (int64_t t = T - 1; t >= 0; --t) {
    const float* c_prev = t == 0 ? c0 : cs + (t - 1) * B * H;
    int64_t row = r0;
    {  // All rows of the block at once: W is streamed once per step.
      const int tile = static_cast<int>(r1 - r0);
      float* dz = dz_all + (t * B + row) * G;
      for (int r = 0; r < tile; ++r) {
        const int64_t br = row + r;
        const float* gr = gates + (t * B + br) * G;
        const float* ct = cs + (t * B + br) * H;
        const float* cp = c_prev + br * H;
        const float* dht = d_hs + (t * B + br) * H;
        float* dhr = dh + br * H;
        float* dcr = dc + br * H;
        float* dzr = dz + r * G;
        int64_t j = 0;
#if defined(RNNLM_SIMD)
        const V one = vset(1.0f);
        for (; j + kLanes <= H; j += kLanes) {
          V i = vload(gr + j), f = vload(gr + H + j), g = vload(gr + 2 * H + j),
            o = vload(gr + 3 * H + j);
          V d_h = vadd(vload(dht + j), vload(dhr + j));
          V tc = vtanh(vload(ct + j));
          V dho = vmul(d_h, o);
          V d_c = vfmadd(dho, vfnmadd(tc, tc, one), vload(dcr + j));
          vstore(dzr + j, vmul(vmul(d_c, g),
                                        vmul(i, vsub(one, i))));
          vstore(dzr + H + j, vmul(vmul(d_c, vload(cp + j)),
                                            vmul(f, vsub(one, f))));
          vstore(dzr + 2 * H + j, vmul(vmul(d_c, i),
                                                vfnmadd(g, g, one)));
          vstore(dzr + 3 * H + j, vmul(vmul(dho, tc),
                                                vsub(one, o)));
          vstore(dcr + j, vmul(d_c, f));
        }
#endif
        for (; j < H; ++j) {
          const float i = gr[j], f = gr[H + j], g = gr[2 * H + j], o = gr[3 * H + j];
          const float d_h = dht[j] + dhr[j];
          const float tc = std::tanh(ct[j]);
          const float d_c = dcr[j] + d_h * o * (1.0f - tc * tc);
          dzr[j] = d_c * g * i * (1.0f - i);
          dzr[H + j] = d_c * cp[j] * f * (1.0f - f);
          dzr[2 * H + j] = d_c * i * (1.0f - g * g);
          dzr[3 * H + j] = d_h * tc * o * (1.0f - o);
          dcr[j] = d_c * f;
        }
      }
      // The next step's gates into L2 while the matmul runs.
      if (t > 0)
        PrefetchL2(gates + ((t - 1) * B + row) * G, tile * G);
      // dh_{t-1} = dz_t W_h^T for the block's rows (overwrites them in dh).
      RecurrentMatmul(w_h_t, tile, dz, G, G, H, zeros.data(), nullptr, 0, dh + row * H, H);
      row += tile;
    }
  }
}

// ---------------------------------------------------------------------------
// GRU (the PyTorch / cuDNN form, gates r, z, n):
//   hh = h_{t-1} W_h;  r, z = sigmoid(xp + b + hh) on their slices;
//   hn = hh_n + b_hn;  n = tanh(xp_n + b_n + r * hn);  h_t = (1 - z) n + z h_{t-1}.
// Forward saves acts [T, B, 4H] = (r, z, n, hn) for the backward pass.

void GruForwardRows(int64_t T, int64_t B, int64_t H, const Inputs& xp, const float* w_h,
                    const float* b, const float* b_hn, const float* h0, float* hs,
                    float* acts, int64_t r0, int64_t r1) {
  const int64_t G = 3 * H, A = 4 * H;
  const int rows = static_cast<int>(r1 - r0);
  std::vector<float> hh(static_cast<size_t>(rows) * G);
  std::vector<float> zeros(G, 0.0f);
  for (int64_t t = 0; t < T; ++t) {
    const float* h_prev = t == 0 ? h0 : hs + (t - 1) * B * H;
    Matmul(rows, h_prev + r0 * H, H, w_h, H, G, zeros.data(), nullptr, 0, hh.data(), G);
    for (int r = 0; r < rows; ++r) {
      const int64_t br = r0 + r;
      const float* x = xp.row(t * B + br);
      const float* q = hh.data() + r * G;
      const float* hp = h_prev + br * H;
      float* ar = acts + (t * B + br) * A;
      float* hr = hs + (t * B + br) * H;
      int64_t j = 0;
#if defined(RNNLM_SIMD)
      for (; j + kLanes <= H; j += kLanes) {
        V rg = vsigmoid(vadd(vadd(vload(x + j), vload(b + j)), vload(q + j)));
        V zg = vsigmoid(vadd(vadd(vload(x + H + j), vload(b + H + j)),
                                      vload(q + H + j)));
        V hn = vadd(vload(q + 2 * H + j), vload(b_hn + j));
        V n = vtanh(vfmadd(rg, hn, vadd(vload(x + 2 * H + j),
                                                          vload(b + 2 * H + j))));
        vstore(ar + j, rg);
        vstore(ar + H + j, zg);
        vstore(ar + 2 * H + j, n);
        vstore(ar + 3 * H + j, hn);
        // (1 - z) n + z h = n + z (h - n)
        vstore(hr + j, vfmadd(zg, vsub(vload(hp + j), n), n));
      }
#endif
      for (; j < H; ++j) {
        const float rg = ssigmoid(x[j] + b[j] + q[j]);
        const float zg = ssigmoid(x[H + j] + b[H + j] + q[H + j]);
        const float hn = q[2 * H + j] + b_hn[j];
        const float n = std::tanh(x[2 * H + j] + b[2 * H + j] + rg * hn);
        ar[j] = rg, ar[H + j] = zg, ar[2 * H + j] = n, ar[3 * H + j] = hn;
        hr[j] = n + zg * (hp[j] - n);
      }
    }
  }
}

// Backward: dxp, dhh [T, B, 3H] (gradients of the pre-activations on the input
// and recurrent sides; they differ in the n slice, where r scales hh_n); dh the
// running carry gradient ([B, H]: dh_T on entry, dh_0 on exit).
void GruBackwardRows(int64_t T, int64_t B, int64_t H, const float* d_hs, const float* acts,
                     const float* hs, const float* h0, const float* w_h_t, float* dxp,
                     float* dhh, float* dh, int64_t r0, int64_t r1) {
  const int64_t G = 3 * H, A = 4 * H;
  const int rows = static_cast<int>(r1 - r0);
  for (int64_t t = T - 1; t >= 0; --t) {
    const float* h_prev = t == 0 ? h0 : hs + (t - 1) * B * H;
    for (int r = 0; r < rows; ++r) {
      const int64_t br = r0 + r;
      const float* ar = acts + (t * B + br) * A;
      const float* hp = h_prev + br * H;
      const float* dht = d_hs + (t * B + br) * H;
      float* dhr = dh + br * H;
      float* dx = dxp + (t * B + br) * G;
      float* dq = dhh + (t * B + br) * G;
      int64_t j = 0;
#if defined(RNNLM_SIMD)
      const V one = vset(1.0f);
      for (; j + kLanes <= H; j += kLanes) {
        V rg = vload(ar + j), zg = vload(ar + H + j), n = vload(ar + 2 * H + j),
          hn = vload(ar + 3 * H + j);
        V d_h = vadd(vload(dht + j), vload(dhr + j));
        V dan = vmul(vmul(d_h, vsub(one, zg)),
                              vfnmadd(n, n, one));
        V dar = vmul(vmul(dan, hn), vmul(rg, vsub(one, rg)));
        V daz = vmul(vmul(d_h, vsub(vload(hp + j), n)),
                              vmul(zg, vsub(one, zg)));
        vstore(dx + j, dar);
        vstore(dx + H + j, daz);
        vstore(dx + 2 * H + j, dan);
        vstore(dq + j, dar);
        vstore(dq + H + j, daz);
        vstore(dq + 2 * H + j, vmul(dan, rg));
        vstore(dhr + j, vmul(d_h, zg));  // The direct path; dhh W_h^T added below.
      }
#endif
      for (; j < H; ++j) {
        const float rg = ar[j], zg = ar[H + j], n = ar[2 * H + j], hn = ar[3 * H + j];
        const float d_h = dht[j] + dhr[j];
        const float dan = d_h * (1.0f - zg) * (1.0f - n * n);
        const float dar = dan * hn * rg * (1.0f - rg);
        const float daz = d_h * (hp[j] - n) * zg * (1.0f - zg);
        dx[j] = dar, dx[H + j] = daz, dx[2 * H + j] = dan;
        dq[j] = dar, dq[H + j] = daz, dq[2 * H + j] = dan * rg;
        dhr[j] = d_h * zg;
      }
    }
    // dh_{t-1} = dh z + dhh_t W_h^T (in place: each tile reads its rows of dh first).
    float* dq0 = dhh + (t * B + r0) * G;
    if (t > 0) PrefetchL2(acts + ((t - 1) * B + r0) * A, rows * A);  // Next step's.
    Matmul(rows, dq0, G, w_h_t, G, H, dh + r0 * H, nullptr, H, dh + r0 * H, H);
  }
}

// ---------------------------------------------------------------------------
// Elman RNN: h_t = tanh(xp_t + b + h_{t-1} W_h). The outputs are all the
// backward pass needs (dz = dh (1 - h^2)).

void RnnForwardRows(int64_t T, int64_t B, int64_t H, const Inputs& xp, const float* w_h,
                    const float* b, const float* h0, float* hs, int64_t r0, int64_t r1) {
  const int rows = static_cast<int>(r1 - r0);
  for (int64_t t = 0; t < T; ++t) {
    const float* h_prev = t == 0 ? h0 : hs + (t - 1) * B * H;
    float* out = hs + (t * B + r0) * H;
    Matmul(rows, h_prev + r0 * H, H, w_h, H, H, xp.init(t * B + r0), b, H, out, H,
           xp.idx(t * B + r0));
    for (int r = 0; r < rows; ++r) {
      float* hr = out + r * H;
      int64_t j = 0;
#if defined(RNNLM_SIMD)
      for (; j + kLanes <= H; j += kLanes) vstore(hr + j, vtanh(vload(hr + j)));
#endif
      for (; j < H; ++j) hr[j] = std::tanh(hr[j]);
    }
  }
}

void RnnBackwardRows(int64_t T, int64_t B, int64_t H, const float* d_hs, const float* hs,
                     const float* w_h_t, float* dz_all, float* dh, int64_t r0, int64_t r1) {
  const int rows = static_cast<int>(r1 - r0);
  std::vector<float> zeros(H, 0.0f);
  for (int64_t t = T - 1; t >= 0; --t) {
    float* dz = dz_all + (t * B + r0) * H;
    for (int r = 0; r < rows; ++r) {
      const int64_t br = r0 + r;
      const float* hr = hs + (t * B + br) * H;
      const float* dht = d_hs + (t * B + br) * H;
      const float* dhr = dh + br * H;
      float* dzr = dz + r * H;
      int64_t j = 0;
#if defined(RNNLM_SIMD)
      const V one = vset(1.0f);
      for (; j + kLanes <= H; j += kLanes) {
        V h = vload(hr + j);
        vstore(dzr + j, vmul(vadd(vload(dht + j), vload(dhr + j)),
                                      vfnmadd(h, h, one)));
      }
#endif
      for (; j < H; ++j) dzr[j] = (dht[j] + dhr[j]) * (1.0f - hr[j] * hr[j]);
    }
    Matmul(rows, dz, H, w_h_t, H, H, zeros.data(), nullptr, 0, dh + r0 * H, H);
  }
}

// Whether a buffer has exactly these dimensions: every operand is checked before
// a kernel reads it, so a wrong shape is an error, never a read past a buffer.
template <typename Buffer>
bool HasDims(const Buffer& buffer, std::initializer_list<int64_t> want) {
  const auto dims = buffer.dimensions();
  if (dims.size() != want.size()) return false;
  size_t i = 0;
  for (int64_t w : want)
    if (dims[i++] != w) return false;
  return true;
}

ffi::Error Inconsistent() {
  return ffi::Error::InvalidArgument("rnnlm kernel: inconsistent shapes");
}

ffi::Error CheckShapes(int64_t T, int64_t B, int64_t H) {
  if (T < 1 || B < 1 || H < 1)
    return ffi::Error::InvalidArgument("rnnlm kernel: empty time, batch or hidden size");
#if defined(RNNLM_SIMD)
  if (H % kLanes != 0)
    return ffi::Error::InvalidArgument("rnnlm kernel: hidden size must be a multiple of the"
                                       " vector width (16 floats with AVX-512, 8 with AVX2)");
#endif
  return ffi::Error::Success();
}

// The recurrent weights w [k, n] packed for `bf16` or float32 matmuls, and fn(r0,
// r1) run over the batch with the tile unit configured in each thread where bf16.
struct PackedW {
  std::vector<float> f32;
  std::vector<uint16_t> bf16;
  RecurrentW view() const {
    return bf16.empty() ? RecurrentW{f32.data(), nullptr} : RecurrentW{nullptr, bf16.data()};
  }
};

ffi::Error PackRecurrent(const float* w, int64_t k, int64_t n, bool bf16, PackedW& out) {
  if (!bf16) {
    out.f32 = PackColumns(w, k, n);
    return ffi::Error::Success();
  }
#if defined(RNNLM_AMX)
  if (!AmxUsable())
    return ffi::Error::InvalidArgument("rnnlm kernel: the OS refused the AMX tile state");
  if (k % 32 != 0 || n % 32 != 0)
    return ffi::Error::InvalidArgument("rnnlm kernel: bfloat16 needs a hidden size that is a"
                                       " multiple of 32");
  out.bf16 = PackPairs(w, k, n);
  return ffi::Error::Success();
#else
  return ffi::Error::InvalidArgument("rnnlm kernel: built without AMX bfloat16 support");
#endif
}

template <typename F>
void ParallelRowsFor(ffi::ThreadPool& pool, int64_t batch, bool bf16, const F& fn) {
  ParallelRows(pool, batch, [&](int64_t r0, int64_t r1) {
#if defined(RNNLM_AMX)
    if (bf16) AmxConfigure();
#endif
    fn(r0, r1);
#if defined(RNNLM_AMX)
    if (bf16) _tile_release();
#endif
  });
}

ffi::Error LstmForward(ffi::ThreadPool& pool, const Inputs& xp, int64_t T, int64_t B,
                       F32R2 w_h, F32R1 b, F32R2 h0, F32R2 c0, ffi::Result<F32R3>& hs,
                       ffi::Result<F32R3>& cs, ffi::Result<F32R3>& gates, bool bf16) {
  const int64_t H = xp.G / 4;
  if (auto err = CheckShapes(T, B, H); err.failure()) return err;
  if (xp.G != 4 * H || !HasDims(w_h, {H, 4 * H}) || !HasDims(b, {4 * H}) ||
      !HasDims(h0, {B, H}) || !HasDims(c0, {B, H}) || !HasDims(*hs, {T, B, H}) ||
      !HasDims(*cs, {T, B, H}) || !HasDims(*gates, {T, B, 4 * H}))
    return Inconsistent();
  PackedW w;
  if (auto err = PackRecurrent(w_h.typed_data(), H, 4 * H, bf16, w); err.failure()) return err;
  ParallelRowsFor(pool, B, bf16, [&](int64_t r0, int64_t r1) {
    ForwardRows(T, B, H, xp, w.view(), b.typed_data(), h0.typed_data(), c0.typed_data(),
                hs->typed_data(), cs->typed_data(), gates->typed_data(), r0, r1);
  });
  return ffi::Error::Success();
}

// Token ids clamped to [0, vocab), as jnp.take(..., mode='clip') does.
std::vector<int32_t> ClampedTokens(S32R2 tokens, int64_t vocab) {
  const int64_t n = tokens.element_count();
  std::vector<int32_t> out(static_cast<size_t>(n));
  const int32_t hi = static_cast<int32_t>(std::max<int64_t>(vocab - 1, 0));
  for (int64_t i = 0; i < n; ++i) out[i] = std::clamp(tokens.typed_data()[i], 0, hi);
  return out;
}

ffi::Error LstmForwardImpl(ffi::ThreadPool pool, F32R3 xp, F32R2 w_h, F32R1 b, F32R2 h0,
                           F32R2 c0, ffi::Result<F32R3> hs, ffi::Result<F32R3> cs,
                           ffi::Result<F32R3> gates, bool bf16) {
  const auto dims = xp.dimensions();
  return LstmForward(pool, Inputs{xp.typed_data(), nullptr, dims[2]}, dims[0], dims[1], w_h, b,
                     h0, c0, hs, cs, gates, bf16);
}

ffi::Error LstmForwardTokensImpl(ffi::ThreadPool pool, F32R2 table, S32R2 tokens, F32R2 w_h,
                                 F32R1 b, F32R2 h0, F32R2 c0, ffi::Result<F32R3> hs,
                                 ffi::Result<F32R3> cs, ffi::Result<F32R3> gates, bool bf16) {
  const std::vector<int32_t> ids = ClampedTokens(tokens, table.dimensions()[0]);
  return LstmForward(pool, Inputs{table.typed_data(), ids.data(), table.dimensions()[1]},
                     tokens.dimensions()[0], tokens.dimensions()[1], w_h, b, h0, c0, hs, cs,
                     gates, bf16);
}

ffi::Error LstmBackwardImpl(ffi::ThreadPool pool, F32R3 d_hs, F32R3 gates,
                            F32R3 cs, F32R2 c0,
                            F32R2 w_h_t, F32R2 dh_last,
                            F32R2 dc_last, ffi::Result<F32R3> dz,
                            ffi::Result<F32R2> dh0,
                            ffi::Result<F32R2> dc0, bool bf16) {
  const auto dims = d_hs.dimensions();
  const int64_t T = dims[0], B = dims[1], H = dims[2];
  if (auto err = CheckShapes(T, B, H); err.failure()) return err;
  if (!HasDims(w_h_t, {4 * H, H}) || !HasDims(gates, {T, B, 4 * H}) ||
      !HasDims(cs, {T, B, H}) || !HasDims(c0, {B, H}) || !HasDims(dh_last, {B, H}) ||
      !HasDims(dc_last, {B, H}) || !HasDims(*dz, {T, B, 4 * H}) ||
      !HasDims(*dh0, {B, H}) || !HasDims(*dc0, {B, H}))
    return Inconsistent();
  float* dh = dh0->typed_data();
  float* dc = dc0->typed_data();
  std::copy_n(dh_last.typed_data(), B * H, dh);
  std::copy_n(dc_last.typed_data(), B * H, dc);
  PackedW w;
  if (auto err = PackRecurrent(w_h_t.typed_data(), 4 * H, H, bf16, w); err.failure()) return err;
  ParallelRowsFor(pool, B, bf16, [&](int64_t r0, int64_t r1) {
    BackwardRows(T, B, H, d_hs.typed_data(), gates.typed_data(), cs.typed_data(),
                 c0.typed_data(), w.view(), dz->typed_data(), dh, dc, r0, r1);
  });
  return ffi::Error::Success();
}

ffi::Error GruForward(ffi::ThreadPool& pool, const Inputs& xp, int64_t T, int64_t B,
                      F32R2 w_h, F32R1 b, F32R1 b_hn, F32R2 h0, ffi::Result<F32R3>& hs,
                      ffi::Result<F32R3>& acts) {
  const int64_t H = xp.G / 3;
  if (auto err = CheckShapes(T, B, H); err.failure()) return err;
  if (xp.G != 3 * H || !HasDims(w_h, {H, 3 * H}) || !HasDims(b, {3 * H}) ||
      !HasDims(b_hn, {H}) || !HasDims(h0, {B, H}) || !HasDims(*hs, {T, B, H}) ||
      !HasDims(*acts, {T, B, 4 * H}))
    return Inconsistent();
  const std::vector<float> w = PackColumns(w_h.typed_data(), H, 3 * H);
  ParallelRows(pool, B, [&](int64_t r0, int64_t r1) {
    GruForwardRows(T, B, H, xp, w.data(), b.typed_data(), b_hn.typed_data(), h0.typed_data(),
                   hs->typed_data(), acts->typed_data(), r0, r1);
  });
  return ffi::Error::Success();
}

ffi::Error GruForwardImpl(ffi::ThreadPool pool, F32R3 xp, F32R2 w_h, F32R1 b, F32R1 b_hn,
                          F32R2 h0, ffi::Result<F32R3> hs, ffi::Result<F32R3> acts) {
  const auto dims = xp.dimensions();
  return GruForward(pool, Inputs{xp.typed_data(), nullptr, dims[2]}, dims[0], dims[1], w_h, b,
                    b_hn, h0, hs, acts);
}

ffi::Error GruForwardTokensImpl(ffi::ThreadPool pool, F32R2 table, S32R2 tokens, F32R2 w_h,
                                F32R1 b, F32R1 b_hn, F32R2 h0, ffi::Result<F32R3> hs,
                                ffi::Result<F32R3> acts) {
  const std::vector<int32_t> ids = ClampedTokens(tokens, table.dimensions()[0]);
  return GruForward(pool, Inputs{table.typed_data(), ids.data(), table.dimensions()[1]},
                    tokens.dimensions()[0], tokens.dimensions()[1], w_h, b, b_hn, h0, hs, acts);
}

ffi::Error GruBackwardImpl(ffi::ThreadPool pool, F32R3 d_hs, F32R3 acts, F32R3 hs, F32R2 h0,
                           F32R2 w_h_t, F32R2 dh_last, ffi::Result<F32R3> dxp,
                           ffi::Result<F32R3> dhh, ffi::Result<F32R2> dh0) {
  const auto dims = d_hs.dimensions();
  const int64_t T = dims[0], B = dims[1], H = dims[2];
  if (auto err = CheckShapes(T, B, H); err.failure()) return err;
  if (!HasDims(w_h_t, {3 * H, H}) || !HasDims(acts, {T, B, 4 * H}) ||
      !HasDims(hs, {T, B, H}) || !HasDims(h0, {B, H}) || !HasDims(dh_last, {B, H}) ||
      !HasDims(*dxp, {T, B, 3 * H}) || !HasDims(*dhh, {T, B, 3 * H}) ||
      !HasDims(*dh0, {B, H}))
    return Inconsistent();
  float* dh = dh0->typed_data();
  std::copy_n(dh_last.typed_data(), B * H, dh);
  const std::vector<float> w = PackColumns(w_h_t.typed_data(), 3 * H, H);
  ParallelRows(pool, B, [&](int64_t r0, int64_t r1) {
    GruBackwardRows(T, B, H, d_hs.typed_data(), acts.typed_data(), hs.typed_data(),
                    h0.typed_data(), w.data(), dxp->typed_data(), dhh->typed_data(),
                    dh, r0, r1);
  });
  return ffi::Error::Success();
}

ffi::Error RnnForward(ffi::ThreadPool& pool, const Inputs& xp, int64_t T, int64_t B,
                      F32R2 w_h, F32R1 b, F32R2 h0, ffi::Result<F32R3>& hs) {
  const int64_t H = xp.G;
  if (auto err = CheckShapes(T, B, H); err.failure()) return err;
  if (xp.G != H || !HasDims(w_h, {H, H}) || !HasDims(b, {H}) || !HasDims(h0, {B, H}) ||
      !HasDims(*hs, {T, B, H}))
    return Inconsistent();
  const std::vector<float> w = PackColumns(w_h.typed_data(), H, H);
  ParallelRows(pool, B, [&](int64_t r0, int64_t r1) {
    RnnForwardRows(T, B, H, xp, w.data(), b.typed_data(), h0.typed_data(), hs->typed_data(),
                   r0, r1);
  });
  return ffi::Error::Success();
}

ffi::Error RnnForwardImpl(ffi::ThreadPool pool, F32R3 xp, F32R2 w_h, F32R1 b, F32R2 h0,
                          ffi::Result<F32R3> hs) {
  const auto dims = xp.dimensions();
  return RnnForward(pool, Inputs{xp.typed_data(), nullptr, dims[2]}, dims[0], dims[1], w_h, b,
                    h0, hs);
}

ffi::Error RnnForwardTokensImpl(ffi::ThreadPool pool, F32R2 table, S32R2 tokens, F32R2 w_h,
                                F32R1 b, F32R2 h0, ffi::Result<F32R3> hs) {
  const std::vector<int32_t> ids = ClampedTokens(tokens, table.dimensions()[0]);
  return RnnForward(pool, Inputs{table.typed_data(), ids.data(), table.dimensions()[1]},
                    tokens.dimensions()[0], tokens.dimensions()[1], w_h, b, h0, hs);
}

// d_table[v] = sum of d rows whose token is v (ids clamped as in the forward):
// the gradient of the gathered first-layer input. Threads split the columns.
ffi::Error ScatterRowsImpl(ffi::ThreadPool pool, S32R2 tokens, F32R3 d,
                           ffi::Result<F32R2> d_table) {
  const int64_t V = d_table->dimensions()[0], G = d_table->dimensions()[1];
  const int64_t n = tokens.element_count();
  if (d.dimensions()[0] * d.dimensions()[1] != n || d.dimensions()[2] != G || V < 1)
    return ffi::Error::InvalidArgument("rnnlm scatter_rows: inconsistent shapes");
  const std::vector<int32_t> ids = ClampedTokens(tokens, V);
  const float* src = d.typed_data();
  float* out = d_table->typed_data();
  const int64_t units = (G + 15) / 16;
  ParallelRows(pool, units, [&](int64_t u0, int64_t u1) {
    const int64_t c0 = u0 * 16, c1 = std::min(G, u1 * 16);
    for (int64_t v = 0; v < V; ++v) std::fill(out + v * G + c0, out + v * G + c1, 0.0f);
    for (int64_t i = 0; i < n; ++i) {
      const float* s = src + i * G;
      float* o = out + int64_t{ids[i]} * G;
      for (int64_t c = c0; c < c1; ++c) o[c] += s[c];
    }
  }, /*min_rows=*/2);
  return ffi::Error::Success();
}

ffi::Error RnnBackwardImpl(ffi::ThreadPool pool, F32R3 d_hs, F32R3 hs, F32R2 w_h_t,
                           F32R2 dh_last, ffi::Result<F32R3> dz, ffi::Result<F32R2> dh0) {
  const auto dims = d_hs.dimensions();
  const int64_t T = dims[0], B = dims[1], H = dims[2];
  if (auto err = CheckShapes(T, B, H); err.failure()) return err;
  if (!HasDims(w_h_t, {H, H}) || !HasDims(hs, {T, B, H}) || !HasDims(dh_last, {B, H}) ||
      !HasDims(*dz, {T, B, H}) || !HasDims(*dh0, {B, H}))
    return Inconsistent();
  float* dh = dh0->typed_data();
  std::copy_n(dh_last.typed_data(), B * H, dh);
  const std::vector<float> w = PackColumns(w_h_t.typed_data(), H, H);
  ParallelRows(pool, B, [&](int64_t r0, int64_t r1) {
    RnnBackwardRows(T, B, H, d_hs.typed_data(), hs.typed_data(), w.data(), dz->typed_data(),
                    dh, r0, r1);
  });
  return ffi::Error::Success();
}

ffi::Error MatmulTNImpl(ffi::ThreadPool pool, F32R2 a, F32R2 b, ffi::Result<F32R2> c) {
  const int64_t K = a.dimensions()[0], M = a.dimensions()[1], N = b.dimensions()[1];
  if (b.dimensions()[0] != K || c->dimensions()[0] != M || c->dimensions()[1] != N)
    return ffi::Error::InvalidArgument("rnnlm matmul_tn: inconsistent shapes");
  if (N % kUnitTN != 0)
    return ffi::Error::InvalidArgument("rnnlm matmul_tn: columns must be a multiple of 16");
  MatmulTN(pool, {Segment{a.typed_data(), b.typed_data(), K}}, M, N, c->typed_data());
  return ffi::Error::Success();
}

// dW_h = sum_t h_{t-1}^T d_t with h_{-1} = h0: [B, H]^T d_0 + hs[:T-1]^T d[1:]
// (both read in place, no shifted copy of hs), and d_sum = sum over t, b of d.
ffi::Error WeightGradImpl(ffi::ThreadPool pool, F32R2 h0, F32R3 hs, F32R3 d,
                          ffi::Result<F32R2> dw, ffi::Result<F32R1> d_sum, bool bf16) {
  const auto dims = d.dimensions();
  const int64_t T = dims[0], B = dims[1], G = dims[2], H = hs.dimensions()[2];
  if (hs.dimensions()[0] != T || hs.dimensions()[1] != B || h0.dimensions()[0] != B ||
      h0.dimensions()[1] != H || dw->dimensions()[0] != H || dw->dimensions()[1] != G ||
      d_sum->dimensions()[0] != G)
    return ffi::Error::InvalidArgument("rnnlm weight_grad: inconsistent shapes");
  if (G % kUnitTN != 0)
    return ffi::Error::InvalidArgument("rnnlm weight_grad: columns must be a multiple of 16");
  const std::vector<Segment> segs = {
      Segment{h0.typed_data(), d.typed_data(), B},
      Segment{hs.typed_data(), d.typed_data() + B * G, (T - 1) * B}};
  if (bf16) {
#if defined(RNNLM_AMX)
    if (!AmxUsable() || H % 32 != 0 || G % 32 != 0)
      return ffi::Error::InvalidArgument("rnnlm weight_grad: bfloat16 needs AMX and sizes"
                                         " that are multiples of 32");
    MatmulTNAmx(pool, segs, H, G, dw->typed_data(), d_sum->typed_data());
    return ffi::Error::Success();
#else
    return ffi::Error::InvalidArgument("rnnlm kernel: built without AMX bfloat16 support");
#endif
  }
  MatmulTN(pool, segs, H, G, dw->typed_data(), d_sum->typed_data());
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(RnnlmLstmForward, LstmForwardImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<F32R3>()
                                  .Arg<F32R2>()
                                  .Arg<F32R1>()
                                  .Arg<F32R2>()
                                  .Arg<F32R2>()
                                  .Ret<F32R3>()
                                  .Ret<F32R3>()
                                  .Ret<F32R3>()
                                  .Attr<bool>("bf16"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(RnnlmLstmBackward, LstmBackwardImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<F32R3>()
                                  .Arg<F32R3>()
                                  .Arg<F32R3>()
                                  .Arg<F32R2>()
                                  .Arg<F32R2>()
                                  .Arg<F32R2>()
                                  .Arg<F32R2>()
                                  .Ret<F32R3>()
                                  .Ret<F32R2>()
                                  .Ret<F32R2>()
                                  .Attr<bool>("bf16"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(RnnlmGruForward, GruForwardImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<F32R3>()
                                  .Arg<F32R2>()
                                  .Arg<F32R1>()
                                  .Arg<F32R1>()
                                  .Arg<F32R2>()
                                  .Ret<F32R3>()
                                  .Ret<F32R3>());

XLA_FFI_DEFINE_HANDLER_SYMBOL(RnnlmGruBackward, GruBackwardImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<F32R3>()
                                  .Arg<F32R3>()
                                  .Arg<F32R3>()
                                  .Arg<F32R2>()
                                  .Arg<F32R2>()
                                  .Arg<F32R2>()
                                  .Ret<F32R3>()
                                  .Ret<F32R3>()
                                  .Ret<F32R2>());

XLA_FFI_DEFINE_HANDLER_SYMBOL(RnnlmRnnForward, RnnForwardImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<F32R3>()
                                  .Arg<F32R2>()
                                  .Arg<F32R1>()
                                  .Arg<F32R2>()
                                  .Ret<F32R3>());

XLA_FFI_DEFINE_HANDLER_SYMBOL(RnnlmRnnBackward, RnnBackwardImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<F32R3>()
                                  .Arg<F32R3>()
                                  .Arg<F32R2>()
                                  .Arg<F32R2>()
                                  .Ret<F32R3>()
                                  .Ret<F32R2>());

XLA_FFI_DEFINE_HANDLER_SYMBOL(RnnlmMatmulTN, MatmulTNImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<F32R2>()
                                  .Arg<F32R2>()
                                  .Ret<F32R2>());

XLA_FFI_DEFINE_HANDLER_SYMBOL(RnnlmWeightGrad, WeightGradImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<F32R2>()
                                  .Arg<F32R3>()
                                  .Arg<F32R3>()
                                  .Ret<F32R2>()
                                  .Ret<F32R1>()
                                  .Attr<bool>("bf16"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(RnnlmLstmForwardTokens, LstmForwardTokensImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<F32R2>()
                                  .Arg<S32R2>()
                                  .Arg<F32R2>()
                                  .Arg<F32R1>()
                                  .Arg<F32R2>()
                                  .Arg<F32R2>()
                                  .Ret<F32R3>()
                                  .Ret<F32R3>()
                                  .Ret<F32R3>()
                                  .Attr<bool>("bf16"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(RnnlmGruForwardTokens, GruForwardTokensImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<F32R2>()
                                  .Arg<S32R2>()
                                  .Arg<F32R2>()
                                  .Arg<F32R1>()
                                  .Arg<F32R1>()
                                  .Arg<F32R2>()
                                  .Ret<F32R3>()
                                  .Ret<F32R3>());

XLA_FFI_DEFINE_HANDLER_SYMBOL(RnnlmRnnForwardTokens, RnnForwardTokensImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<F32R2>()
                                  .Arg<S32R2>()
                                  .Arg<F32R2>()
                                  .Arg<F32R1>()
                                  .Arg<F32R2>()
                                  .Ret<F32R3>());

XLA_FFI_DEFINE_HANDLER_SYMBOL(RnnlmScatterRows, ScatterRowsImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<S32R2>()
                                  .Arg<F32R3>()
                                  .Ret<F32R2>());

// Whether bfloat16 matmuls can run on AMX tiles here: built for them, and the OS
// grants this process the tile state.
extern "C" int RnnlmAmx() {
#if defined(RNNLM_AMX)
  return AmxUsable() ? 1 : 0;
#else
  return 0;
#endif
}

// The instruction set this library was compiled for: rnnlm's 'auto' recurrence
// uses the kernels only where they were measured faster than the lax.scan path.
extern "C" const char* RnnlmInstructionSet() {
#if defined(__AVX512F__)
  return "avx512";
#elif defined(__AVX2__) && defined(__FMA__)
  return "avx2";
#else
  return "scalar";
#endif
}
