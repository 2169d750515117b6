#include "weir/runtime/crc32c.hpp"

#include <array>
#include <cstring>

#if defined(__x86_64__) && defined(__SSE4_2__)
#include <nmmintrin.h>
#define WEIR_CRC32C_HAVE_SSE42 1
#endif

namespace weir::crc32c {

namespace {

// The CRC is computed on the raw register; extend() applies the ~ on entry and
// exit so that a returned value can be fed back in (LevelDB semantics).

constexpr std::uint32_t reflected_poly = 0x82F63B78u;

using table = std::array<std::uint32_t, 256>;

// slicing[k][b]: the register contribution of byte b followed by k zero bytes.
constexpr std::array<table, 8> make_slicing_tables() {
  std::array<table, 8> t{};
  for (std::uint32_t b = 0; b < 256; ++b) {
    std::uint32_t r = b;
    for (int bit = 0; bit < 8; ++bit) r = (r >> 1) ^ (reflected_poly & (0u - (r & 1u)));
    t[0][b] = r;
  }
  for (std::size_t k = 1; k < 8; ++k)
    for (std::size_t b = 0; b < 256; ++b) t[k][b] = (t[k - 1][b] >> 8) ^ t[0][t[k - 1][b] & 0xFFu];
  return t;
}

constexpr auto slicing = make_slicing_tables();

// Assembled byte by byte so the result does not depend on host endianness;
// compilers turn this into a single load on little-endian targets.
inline std::uint32_t load_le32(const unsigned char* p) noexcept {
  return static_cast<std::uint32_t>(p[0]) | static_cast<std::uint32_t>(p[1]) << 8 |
         static_cast<std::uint32_t>(p[2]) << 16 | static_cast<std::uint32_t>(p[3]) << 24;
}

std::uint32_t update_portable(std::uint32_t r, const unsigned char* p, std::size_t n) noexcept {
  while (n >= 8) {
    const std::uint32_t lo = r ^ load_le32(p);
    const std::uint32_t hi = load_le32(p + 4);
    r = slicing[7][lo & 0xFFu] ^ slicing[6][(lo >> 8) & 0xFFu] ^ slicing[5][(lo >> 16) & 0xFFu] ^
        slicing[4][lo >> 24] ^ slicing[3][hi & 0xFFu] ^ slicing[2][(hi >> 8) & 0xFFu] ^
        slicing[1][(hi >> 16) & 0xFFu] ^ slicing[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  while (n-- > 0) r = (r >> 8) ^ slicing[0][(r ^ *p++) & 0xFFu];
  return r;
}

#ifdef WEIR_CRC32C_HAVE_SSE42

// The crc32 instruction has a latency of about three cycles but can start one
// per cycle, so long inputs are split into three interleaved streams whose
// registers are then merged. Merging needs "advance register r over `len` zero
// bytes", a linear map on 32 bits, precomputed as four byte-indexed tables.
struct shift_tables {
  std::array<table, 4> t;

  std::uint32_t apply(std::uint32_t r) const noexcept {
    return t[0][r & 0xFFu] ^ t[1][(r >> 8) & 0xFFu] ^ t[2][(r >> 16) & 0xFFu] ^ t[3][r >> 24];
  }
};

constexpr shift_tables make_shift_tables(std::size_t len) {
  std::array<std::uint32_t, 32> basis{};
  for (std::size_t i = 0; i < 32; ++i) {
    std::uint32_t r = 1u << i;
    for (std::size_t z = 0; z < len; ++z) r = (r >> 8) ^ slicing[0][r & 0xFFu];
    basis[i] = r;
  }
  shift_tables s{};
  for (std::size_t k = 0; k < 4; ++k)
    for (std::size_t b = 0; b < 256; ++b) {
      std::uint32_t r = 0;
      for (std::size_t bit = 0; bit < 8; ++bit)
        if (b & (std::size_t{1} << bit)) r ^= basis[8 * k + bit];
      s.t[k][b] = r;
    }
  return s;
}

// Two stripe lengths: the long one keeps merge overhead negligible on pages,
// the short one still pays off for inputs of a few hundred bytes.
constexpr std::size_t long_stripe = 1024;
constexpr std::size_t short_stripe = 128;
constexpr shift_tables long_shift = make_shift_tables(long_stripe);
constexpr shift_tables short_shift = make_shift_tables(short_stripe);

inline std::uint64_t load_u64(const unsigned char* p) noexcept {
  std::uint64_t v;
  std::memcpy(&v, p, sizeof v);  // unaligned loads are cheap on x86
  return v;
}

template <std::size_t Stripe>
inline std::uint32_t update_3way(std::uint32_t r, const unsigned char*& p, std::size_t& n,
                                 const shift_tables& shift) noexcept {
  while (n >= 3 * Stripe) {
    std::uint64_t a = r;
    std::uint64_t b = 0;
    std::uint64_t c = 0;
    for (std::size_t i = 0; i < Stripe; i += 8) {
      a = _mm_crc32_u64(a, load_u64(p + i));
      b = _mm_crc32_u64(b, load_u64(p + Stripe + i));
      c = _mm_crc32_u64(c, load_u64(p + 2 * Stripe + i));
    }
    // crc(r, A|B|C) = shift(shift(crc(r, A)) ^ crc(0, B)) ^ crc(0, C) by linearity.
    r = shift.apply(shift.apply(static_cast<std::uint32_t>(a)) ^ static_cast<std::uint32_t>(b)) ^
        static_cast<std::uint32_t>(c);
    p += 3 * Stripe;
    n -= 3 * Stripe;
  }
  return r;
}

std::uint32_t update_sse42(std::uint32_t r, const unsigned char* p, std::size_t n) noexcept {
  r = update_3way<long_stripe>(r, p, n, long_shift);
  r = update_3way<short_stripe>(r, p, n, short_shift);
  std::uint64_t r64 = r;
  while (n >= 8) {
    r64 = _mm_crc32_u64(r64, load_u64(p));
    p += 8;
    n -= 8;
  }
  r = static_cast<std::uint32_t>(r64);
  while (n-- > 0) r = _mm_crc32_u8(r, *p++);
  return r;
}

bool cpu_has_sse42() noexcept {
  __builtin_cpu_init();
  return __builtin_cpu_supports("sse4.2");
}

#endif  // WEIR_CRC32C_HAVE_SSE42

}  // namespace

std::uint32_t extend_portable(std::uint32_t crc, const void* data, std::size_t size) noexcept {
  return ~update_portable(~crc, static_cast<const unsigned char*>(data), size);
}

std::uint32_t extend(std::uint32_t crc, const void* data, std::size_t size) noexcept {
#ifdef WEIR_CRC32C_HAVE_SSE42
  static const bool fast = cpu_has_sse42();
  if (fast) return ~update_sse42(~crc, static_cast<const unsigned char*>(data), size);
#endif
  return extend_portable(crc, data, size);
}

}  // namespace weir::crc32c
