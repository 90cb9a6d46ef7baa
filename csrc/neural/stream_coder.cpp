// The model codecs' arithmetic coder: torchac 0.9.3's multi-symbol coder
// (encode_int16_normalized_cdf / decode_int16_normalized_cdf), stream for stream, so that
// the neural and mixed codecs need neither torchac nor its backend, which torch's JIT
// compiles on import. tests/test_stream_coder.py holds the streams equal to torchac's.
//
// The coder is csrc/arithmetic_coder.h (cm codes bits with the same one). A CDF row holds
// Lp = L + 1 uint16 values (stored in int16: 2^16 wraps to 0) for symbols 0..L-1; the top
// of the last symbol is always 2^16, so a row's last entry is never read.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

#include "arithmetic_coder.h"
#include "array_support.h"

namespace py = pybind11;

namespace {

using vortex::kAny;

// The bounds of `symbol` in a row of `lp` entries: the top of the last symbol is 2^16.
inline void bounds(const uint16_t* row, int64_t symbol, int64_t lp, uint32_t& c_low,
                   uint32_t& c_high) {
  c_low = row[symbol];
  c_high = symbol == lp - 2 ? 0x10000u : row[symbol + 1];
}

// torchac's binary search: the symbol whose entry equals `target` if the search meets one,
// else the last one it left below target; entries 0..lp-2 only.
inline int64_t find(const uint16_t* row, uint16_t target, int64_t lp) {
  uint32_t left = 0, right = static_cast<uint32_t>(lp - 1);
  while (left + 1 < right) {
    const uint32_t middle = (left + right) / 2;
    const uint16_t v = row[middle];
    if (v < target) {
      left = middle;
    } else if (v > target) {
      right = middle;
    } else {
      return middle;
    }
  }
  return left;
}

void encode_rows(const uint16_t* cdf, const int16_t* symbols, int64_t n, int64_t lp,
                 std::string& out) {
  vortex::ArithmeticEncoder coder;
  coder.reserve(out.capacity());
  for (int64_t i = 0; i < n; ++i) {
    uint32_t c_low, c_high;
    bounds(cdf + i * lp, symbols[i], lp, c_low, c_high);
    coder.encode(c_low, c_high);
  }
  out = coder.finish();
}

void decode_rows(const uint16_t* cdf, const uint8_t* data, size_t size, int64_t n,
                 int64_t lp, int16_t* out) {
  vortex::ArithmeticDecoder coder(data, size);
  for (int64_t i = 0; i < n; ++i) {
    const uint16_t* row = cdf + i * lp;
    // torchac's arithmetic, wrapping included (value < low only in a corrupt stream), and
    // its truncation of the quotient to 16 bits.
    const uint16_t count = static_cast<uint16_t>((coder.offset() * 0x10000u - 1) / coder.span());
    const int64_t symbol = find(row, count, lp);
    out[i] = static_cast<int16_t>(symbol);
    if (i == n - 1) break;  // torchac stops updating after the last symbol
    uint32_t c_low, c_high;
    bounds(row, symbol, lp, c_low, c_high);
    coder.consume(c_low, c_high);
  }
}

// Lp of a (n, Lp) int16 CDF array: 2 (one symbol) to 2^16 (what torchac's 16-bit search
// handles).
int64_t row_length(const vortex::Input<int16_t>& cdf, const char* what) {
  const int64_t lp = cdf.shape(1);
  if (lp < 2 || lp > 0x10000)
    throw py::value_error(std::string(what) + ": a CDF row must have 2 to 65536 entries, not " +
                          std::to_string(lp));
  return lp;
}

}  // namespace

// The stream of symbols (n,) int16, each coded with its row of cdf (n, Lp) int16.
py::bytes encode(const py::array& cdf_in, const py::array& symbols_in) {
  const auto cdf = vortex::input<int16_t>(cdf_in, "encode: cdf", {kAny, kAny});
  const int64_t n = cdf.shape(0);
  const int64_t lp = row_length(cdf, "encode");
  const auto symbols = vortex::input<int16_t>(symbols_in, "encode: symbols", {n});
  const int16_t* s = symbols.data();
  for (int64_t i = 0; i < n; ++i)
    if (s[i] < 0 || s[i] > lp - 2)
      throw py::value_error("encode: symbol " + std::to_string(s[i]) + " at " +
                            std::to_string(i) + " is outside 0.." + std::to_string(lp - 2));
  std::string out;
  {
    py::gil_scoped_release release;
    out.reserve(static_cast<size_t>(n / 2 + 8));
    encode_rows(reinterpret_cast<const uint16_t*>(cdf.data()), s, n, lp, out);
  }
  return py::bytes(out);
}

// The n symbols (n,) int16 of `stream`, coded with the rows of cdf (n, Lp) int16. A corrupt
// or short stream gives some symbols (each within 0..Lp-2), never an error or a read past
// the stream or the array.
py::array_t<int16_t> decode(const py::array& cdf_in, const py::bytes& stream) {
  const auto cdf = vortex::input<int16_t>(cdf_in, "decode: cdf", {kAny, kAny});
  const int64_t n = cdf.shape(0);
  const int64_t lp = row_length(cdf, "decode");
  char* data = nullptr;
  Py_ssize_t size = 0;
  if (PyBytes_AsStringAndSize(stream.ptr(), &data, &size) != 0) throw py::error_already_set();
  py::array_t<int16_t> symbols({n});
  int16_t* out = symbols.mutable_data();
  {
    py::gil_scoped_release release;  // `stream` stays referenced by the caller
    decode_rows(reinterpret_cast<const uint16_t*>(cdf.data()),
                reinterpret_cast<const uint8_t*>(data), static_cast<size_t>(size), n, lp, out);
  }
  return symbols;
}

PYBIND11_MODULE(_stream_coder, m) {
  m.doc() = "torchac's multi-symbol arithmetic coder (int16 CDFs), without torch";
  m.def("encode", &encode, py::arg("cdf"), py::arg("symbols"),
        "the stream of symbols (n,) int16 coded with the CDF rows cdf (n, Lp) int16");
  m.def("decode", &decode, py::arg("cdf"), py::arg("stream"),
        "the symbols (n,) int16 of a stream, decoded with the CDF rows cdf (n, Lp) int16");
}
